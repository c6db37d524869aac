package postgres_test

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
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

// open opens a driver on a fresh schema, dropped at cleanup.
func open(tb testing.TB) *postgres.Driver {
	tb.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dsn(tb))
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
	cfg.MaxConns = 8
	d, err := postgres.OpenConfig(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func newDriver(tb testing.TB) storage.Driver { return open(tb) }

func TestConformance(t *testing.T) {
	dsn(t)
	storagetest.Run(t, func(t *testing.T) storage.Driver { return newDriver(t) })
}

func TestOpenDSN(t *testing.T) {
	// Open with a DSN string, twice on the same schema: the second Open
	// finds the schema migrated.
	d0 := open(t)
	var schema string
	if err := d0.Pool().QueryRow(t.Context(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	u := dsn(t)
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	if !strings.Contains(u, "://") {
		u, sep = u+" search_path="+schema, ""
	} else {
		u += sep + "search_path=" + schema
	}
	for range 2 {
		d, err := postgres.Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := d.Pool().QueryRow(t.Context(), "SELECT count(*) FROM schema_version").Scan(&n); err != nil || n != 1 {
			t.Errorf("schema_version rows: %d, %v", n, err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkArchiveAppend(b *testing.B) { storagetest.BenchArchiveAppend(b, newDriver) }

func BenchmarkArchiveAppendParallel(b *testing.B) {
	storagetest.BenchArchiveAppendParallel(b, newDriver)
}

// BenchmarkArchiveFind covers Find of the newest 50 of 100,000 items, a
// middle page by After and Before ids, and more (see storagetest).
func BenchmarkArchiveFind(b *testing.B) { storagetest.BenchArchiveFind(b, newDriver, 100_000) }
