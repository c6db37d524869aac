package postgres_test

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/postgres"
	"github.com/metronome-xmpp/metronome/storage/storagetest"
)

// dsn returns the test database DSN from METRONOME_TEST_PG, skipping the
// test when it is unset unless METRONOME_REQUIRE_ALL=1.
func dsn(tb testing.TB) string {
	tb.Helper()
	d := os.Getenv("METRONOME_TEST_PG")
	if d == "" {
		if os.Getenv("METRONOME_REQUIRE_ALL") == "1" {
			tb.Fatal("METRONOME_TEST_PG is not set and METRONOME_REQUIRE_ALL=1: set it to a PostgreSQL DSN, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
		}
		tb.Skip("PostgreSQL tests skipped: set METRONOME_TEST_PG to a DSN, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	return d
}

// drivers bounds how many test drivers exist at once, so that parallel
// tests on a many-core machine stay under max_connections (each driver
// holds up to 4 pool connections and 1 admin connection).
var drivers = make(chan struct{}, 8)

// open opens a driver on a fresh schema, dropped at cleanup.
func open(tb testing.TB) *postgres.Driver {
	tb.Helper()
	ctx := context.Background()
	d := dsn(tb)
	drivers <- struct{}{}
	tb.Cleanup(func() { <-drivers })
	cfg, err := pgxpool.ParseConfig(d)
	if err != nil {
		tb.Fatal(err)
	}
	schema := "metronome_test_" + strings.ToLower(rand.Text())
	admin, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close(ctx)
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("dropping %s: %v", schema, err)
		}
		admin.Close(ctx)
	})
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 4
	drv, err := postgres.OpenConfig(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { drv.Close() })
	return drv
}

func newDriver(tb testing.TB) storage.Driver { return open(tb) }

func TestConformance(t *testing.T) {
	dsn(t)
	storagetest.Run(t, func(t *testing.T) storage.Driver { return newDriver(t) })
}

func TestOpenDSNConcurrentMigrations(t *testing.T) {
	// Several Opens with a DSN string at once on a fresh schema: the
	// advisory lock makes exactly one of them migrate.
	d0 := open(t) // creates the schema and migrates it; drop its tables
	var schema string
	if err := d0.Pool().QueryRow(t.Context(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if _, err := d0.Pool().Exec(t.Context(), "DROP TABLE kv, archive, schema_version"); err != nil {
		t.Fatal(err)
	}
	u := dsn(t)
	if strings.Contains(u, "://") {
		if strings.Contains(u, "?") {
			u += "&search_path=" + schema
		} else {
			u += "?search_path=" + schema
		}
	} else {
		u += " search_path=" + schema
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := postgres.Open(t.Context(), u)
			if err != nil {
				errs <- err
				return
			}
			err = d.KeyVal("example.org", "accounts").Set(t.Context(), "alice", []byte("x"))
			d.Close()
			d.Close() // twice is fine
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var n int
	if err := d0.Pool().QueryRow(t.Context(), "SELECT count(*) FROM schema_version").Scan(&n); err != nil || n != 1 {
		t.Errorf("schema_version rows: %d, %v", n, err)
	}

	// A schema newer than the binary is refused.
	if _, err := d0.Pool().Exec(t.Context(), "INSERT INTO schema_version (version, name) VALUES (9999, 'future')"); err != nil {
		t.Fatal(err)
	}
	if d, err := postgres.Open(t.Context(), u); err == nil || !strings.Contains(err.Error(), "newer") {
		if err == nil {
			d.Close()
		}
		t.Errorf("Open of a newer schema: %v", err)
	}
}

func BenchmarkArchiveAppend(b *testing.B) { storagetest.BenchArchiveAppend(b, newDriver) }

func BenchmarkArchiveAppendParallel(b *testing.B) {
	storagetest.BenchArchiveAppendParallel(b, newDriver)
}

// BenchmarkArchiveFind covers Find of the newest 50 of 100,000 items, a
// middle page by After and Before ids, and more (see storagetest).
func BenchmarkArchiveFind(b *testing.B) { storagetest.BenchArchiveFind(b, newDriver, 100_000) }

func BenchmarkKeyValSetMany(b *testing.B) { storagetest.BenchKeyValSetMany(b, newDriver) }
