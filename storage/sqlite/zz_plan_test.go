package sqlite

import (
	"database/sql"
	"fmt"
	"time"
	"github.com/metronome-xmpp/metronome/storage"
	"context"
	"path/filepath"
	"testing"
)

var dbPath string

func TestZZPlan(t *testing.T) {
	dbPath = filepath.Join(t.TempDir(), "x.db")
	d, err := Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	var items []storage.Item
	for i := range 100000 {
		items = append(items, storage.Item{ID: fmt.Sprint(i), When: time.UnixMilli(int64(i) * 1000), With: fmt.Sprint(i % 10), Value: []byte("x")})
	}
	a := d.Archive("h", "s").(archive)
	a.LoadForBench(ctx, "u", items)
	a.LoadForBench(ctx, "v", items[:10000])
	d.w.ExecContext(ctx, "ANALYZE")
	d.r.Close()
	d.r = newDB(mustOpen(d))
	for _, q := range []string{
		`SELECT "key" FROM archive WHERE host = ? AND "user" = ? AND store = ? ORDER BY sort_id DESC LIMIT ?`,
		`SELECT count(*) FROM archive WHERE host = ? AND "user" = ? AND store = ?`,
		`SELECT "key" FROM archive WHERE host = ? AND "user" = ? AND store = ? AND sort_id > ? ORDER BY sort_id LIMIT ?`,
		`SELECT "key" FROM archive WHERE host = ? AND "user" = ? AND store = ? AND "with" = ? ORDER BY sort_id DESC LIMIT ?`,
		`SELECT "key" FROM archive WHERE host = ? AND "user" = ? AND store = ? AND "with" = ? AND "when" >= ? ORDER BY sort_id DESC LIMIT ?`,
		`SELECT "key" FROM archive WHERE host = ? AND "user" = ? AND store = ? AND "when" >= ? AND "when" <= ? ORDER BY sort_id DESC LIMIT ?`,
		`SELECT "key" FROM archive WHERE host = ? AND "user" = ? AND store = ? AND "when" >= ? AND sort_id > ? ORDER BY sort_id LIMIT ?`,
		`SELECT "key" FROM archive WHERE host = ? AND "user" = ? AND store = ? AND "when" >= ? ORDER BY sort_id LIMIT ?`,
		`SELECT "key" FROM archive WHERE sort_id IN (SELECT sort_id FROM archive WHERE host = ? AND "user" = ? AND store = ? AND "when" >= ? ORDER BY sort_id LIMIT ?) ORDER BY sort_id`,
		`SELECT "key" FROM archive WHERE host = ? AND "user" = ? AND store = ? AND "key" IN (SELECT value FROM json_each(?)) ORDER BY sort_id`,
		`SELECT "user" FROM kv WHERE host = ? AND store = ? AND "key" = '' AND "user" > ? ORDER BY "user" LIMIT ?`,
	} {
		rows, err := d.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, "h", "u", "s", "x", 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(q)
		for rows.Next() {
			var a, b, c int
			var s string
			rows.Scan(&a, &b, &c, &s)
			t.Log("   ", s)
		}
		rows.Close()
	}
	for _, q := range []string{
		`SELECT "key" FROM archive WHERE host = ? AND "user" = ? AND store = ? AND "when" >= ? ORDER BY sort_id LIMIT ?`,
		`SELECT "key" FROM archive WHERE sort_id IN (SELECT sort_id FROM archive WHERE host = ? AND "user" = ? AND store = ? AND "when" >= ? ORDER BY sort_id LIMIT ?) ORDER BY sort_id`,
		`SELECT count(*) FROM archive WHERE host = ? AND "user" = ? AND store = ?`,
	} {
		t0 := time.Now()
		rows, err := d.r.QueryContext(ctx, q, "h", "u", "s", 1000, 50)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		t.Log(q, n, time.Since(t0))
	}
	rows, _ := d.r.QueryContext(ctx, "PRAGMA compile_options")
	for rows.Next() {
		var o string
		rows.Scan(&o)
		t.Log(o)
	}
	rows.Close()
	var v string
	d.r.QueryRowContext(ctx, "select sqlite_version()").Scan(&v)
	t.Log(v)
}

func mustOpen(d *Driver) *sql.DB { db, _ := sql.Open("sqlite", dbPath); return db }
