package mam

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/postgres"
	"github.com/metronome-xmpp/metronome/storage/sqlite"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// benchHost is the part of module.Host the query path uses.
type benchHost struct{ module.Host }

func (benchHost) Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// BenchmarkQuery measures one archive query as the module answers it
// (storage query, parsing the stored stanzas, building the result
// messages and the fin) on an archive of 100,000 messages, with SQLite and
// PostgreSQL (METRONOME_TEST_PG; skipped without it unless
// METRONOME_REQUIRE_ALL=1):
//
//   - Newest50: the last page, <before/> with max 50 (a client's catch-up).
//   - MiddleAfter50: 50 messages after the id in the middle.
//   - MiddleBefore50: 50 messages before the id in the middle.
//   - WithNewest50: the last page with one of 10 contacts.
//   - ID: one message by id (the ids field).
//
// Each runs without and with the RSM count (include_count).
func BenchmarkQuery(b *testing.B) {
	b.Run("SQLite", func(b *testing.B) {
		d, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.Close() })
		benchQueries(b, d)
	})
	b.Run("PostgreSQL", func(b *testing.B) {
		benchQueries(b, openPostgres(b))
	})
}

// openPostgres opens a driver on a fresh schema of METRONOME_TEST_PG,
// dropped at the end.
func openPostgres(b *testing.B) storage.Driver {
	dsn := os.Getenv("METRONOME_TEST_PG")
	if dsn == "" {
		if os.Getenv("METRONOME_REQUIRE_ALL") == "1" {
			b.Fatal("METRONOME_TEST_PG is not set and METRONOME_REQUIRE_ALL=1")
		}
		b.Skip("PostgreSQL benchmark skipped: set METRONOME_TEST_PG to a DSN, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	schema := "metronome_bench_" + strings.ToLower(rand.Text())
	admin, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close(ctx)
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_, _ = admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		admin.Close(ctx)
	})
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	d, err := postgres.OpenConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() }) // runs before the schema is dropped
	return d
}

const benchMessages = 100_000

func benchQueries(b *testing.B, d storage.Driver) {
	ctx := b.Context()
	m := &MAM{MaxPage: DefaultMaxPage, h: benchHost{}, archive: d.Archive("example.org", archiveStore)}
	bulk, ok := m.archive.(storage.BulkAppender)
	if !ok {
		b.Fatal("the driver has no BulkAppender")
	}
	t0 := time.Now()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := 0; i < benchMessages; i += 10_000 {
		items := make([]storage.Item, 10_000)
		for j := range items {
			n := i + j
			peer := fmt.Sprintf("contact%d@example.net", n%10)
			from, to := peer+"/phone", "alice@example.org"
			if n%2 == 1 {
				from, to = "alice@example.org/laptop", peer
			}
			items[j] = storage.Item{When: base.Add(time.Duration(n) * time.Second), With: peer, Type: itemType,
				Value: fmt.Appendf(nil, `<message from="%s" to="%s" type="chat" id="%08d"><body>Message number %d, long enough to look like a real chat line.</body><origin-id xmlns="urn:xmpp:sid:0" id="%08d"/></message>`, from, to, n, n, n)}
		}
		got, err := bulk.AppendMany(ctx, "alice", items)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, got...)
	}
	// Another user's archive beside, as in a real database.
	other := make([]storage.Item, benchMessages/10)
	for i := range other {
		other[i] = storage.Item{When: base.Add(time.Duration(i) * time.Second), With: "x@example.net", Type: itemType, Value: []byte(`<message type="chat"><body>x</body></message>`)}
	}
	if _, err := bulk.AppendMany(ctx, "bob", other); err != nil {
		b.Fatal(err)
	}
	if p, ok := d.(interface{ Pool() *pgxpool.Pool }); ok {
		if _, err := p.Pool().Exec(ctx, "VACUUM ANALYZE archive"); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("loaded %d messages in %v", benchMessages+len(other), time.Since(t0).Round(time.Millisecond))
	alice := jid.MustParse("alice@example.org")
	mid := ids[benchMessages/2]
	cases := []struct {
		name string
		r    request
		want int
	}{
		{"Newest50", request{max: 50, hasBefore: true}, 50},
		{"MiddleAfter50", request{max: 50, after: mid}, 50},
		{"MiddleBefore50", request{max: 50, before: mid, hasBefore: true}, 50},
		{"WithNewest50", request{max: 50, hasBefore: true, with: jid.MustParse("contact3@example.net")}, 50},
		{"ID", request{max: -1, ids: []string{mid}}, 1},
	}
	for _, c := range cases {
		for _, count := range []bool{false, true} {
			name := c.name
			if count {
				name += "Count"
			}
			b.Run(name, func(b *testing.B) {
				m.count = count
				b.ReportAllocs()
				for b.Loop() {
					msgs, fin, serr := m.answer(ctx, alice, c.r)
					if serr != nil {
						b.Fatal(serr)
					}
					if len(msgs) != c.want || fin == nil {
						b.Fatalf("%d results, want %d", len(msgs), c.want)
					}
					// What the session writes: the results serialized.
					var buf []byte
					for _, msg := range msgs {
						buf = msg.Append(buf[:0], stanza.NSClient)
					}
				}
			})
		}
	}
}
