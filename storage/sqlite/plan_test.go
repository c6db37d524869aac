package sqlite

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/storage"
)

// TestQueryPlans checks that the queries Find runs read the indexes meant
// for them (see migrations/0001_init.sql): archive pages are read in
// order and stop at Limit instead of sorting the archive, and nothing
// scans the whole table.
func TestQueryPlans(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "plans.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := t.Context()
	a := d.Archive("example.org", "archive").(archive)
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	var items []storage.Item
	for i := range 20_000 {
		items = append(items, storage.Item{ID: fmt.Sprint("id", i), When: base.Add(time.Duration(i) * time.Second), With: fmt.Sprint("peer", i%10), Value: []byte("x")})
	}
	if err := a.LoadForBench(ctx, "alice", items); err != nil {
		t.Fatal(err)
	}
	if err := a.LoadForBench(ctx, "bob", items[:2000]); err != nil {
		t.Fatal(err)
	}
	mid := items[10_000].ID
	old := base.Add(time.Second)
	cases := []struct {
		name string
		q    storage.Query
		want string // an index the plan must use; "" for any
		sort bool   // whether sorting is allowed
	}{
		{"newest", storage.Query{Limit: 50, Reverse: true}, "archive_sort", false},
		{"oldest", storage.Query{Limit: 50}, "archive_sort", false},
		{"after", storage.Query{After: mid, Limit: 50}, "archive_sort", false},
		{"before reverse", storage.Query{Before: mid, Limit: 50, Reverse: true}, "archive_sort", false},
		{"with newest", storage.Query{With: "peer3", Limit: 50, Reverse: true}, "archive_with", false},
		{"with after", storage.Query{With: "peer3", After: mid, Limit: 50}, "archive_with", false},
		{"with and time", storage.Query{With: "peer3", Start: old, Limit: 50}, "archive_with", false},
		{"start after", storage.Query{Start: old, After: mid, Limit: 50}, "archive_sort", false},
		{"end before reverse", storage.Query{End: base.Add(15_000 * time.Second), Before: mid, Limit: 50, Reverse: true}, "archive_sort", false},
		{"start", storage.Query{Start: old, Limit: 50}, "", true},
		{"time window", storage.Query{Start: base.Add(100 * time.Second), End: base.Add(200 * time.Second)}, "", true},
		{"ids", storage.Query{IDs: []string{"id1", "id2"}}, "archive_key", true},
		{"range newest", storage.Query{RangeAfter: "id100", RangeBefore: mid, Limit: 50, Reverse: true}, "archive_sort", false},
		{"range after", storage.Query{RangeAfter: "id100", After: mid, Limit: 50}, "archive_sort", false},
	}
	explain := func(t *testing.T, query string, args []any) string {
		t.Helper()
		rows, err := d.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, detail)
		}
		return strings.Join(lines, "; ")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := c.q
			q.Total = true
			f, err := a.findSQL("alice", q)
			if err != nil {
				t.Fatal(err)
			}
			for _, cur := range f.cursors {
				f.args[cur.idx] = int64(10_000)
			}
			for _, cur := range f.countCursors {
				f.countArgs[cur.idx] = int64(10_000)
			}
			plan := explain(t, f.query, f.args)
			if strings.Contains(plan, "SCAN archive") {
				t.Errorf("full scan: %s", plan)
			}
			if c.want != "" && !strings.Contains(plan, c.want) {
				t.Errorf("plan does not use %s: %s", c.want, plan)
			}
			if !c.sort && strings.Contains(plan, "TEMP B-TREE") {
				t.Errorf("plan sorts: %s", plan)
			}
			count := explain(t, f.countQuery, f.countArgs)
			if strings.Contains(count, "SCAN archive") {
				t.Errorf("count scans: %s", count)
			}
			// No index holds both "with" and "when".
			if (q.With == "" || q.Start.IsZero() && q.End.IsZero()) && !strings.Contains(count, "COVERING INDEX") {
				t.Errorf("count does not use a covering index: %s", count)
			}
		})
	}
	plan := explain(t, kvUsersNext, []any{"example.org", "accounts", "x", 10})
	if !strings.Contains(plan, "COVERING INDEX kv_store_key") {
		t.Errorf("Users does not use kv_store_key: %s", plan)
	}
}
