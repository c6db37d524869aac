package storagetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/storage"
)

var archiveCases = []testCase{
	{"AppendGeneratedIDs", testArchAppendGenerated},
	{"AppendExplicitID", testArchAppendExplicit},
	{"WhenPrecisionUTC", testArchWhen},
	{"Values", testArchValues},
	{"OrderIsAppendOrder", testArchOrder},
	{"FindStartEnd", testArchFindStartEnd},
	{"FindWith", testArchFindWith},
	{"FindIDs", testArchFindIDs},
	{"FindBeforeAfter", testArchFindBeforeAfter},
	{"FindUnknownCursor", testArchFindUnknownCursor},
	{"FindLimitReverse", testArchFindLimitReverse},
	{"FindTotal", testArchFindTotal},
	{"FindCombined", testArchFindCombined},
	{"FindRange", testArchFindRange},
	{"AppendMany", testArchAppendMany},
	{"Paging", testArchPaging},
	{"GetSet", testArchGetSet},
	{"Delete", testArchDelete},
	{"DeleteTruncate", testArchDeleteTruncate},
	{"DeleteAll", testArchDeleteAll},
	{"InvalidQuery", testArchInvalid},
	{"ConcurrentAppend", testArchConcurrent},
	{"Isolation", testArchIsolation},
}

// fill appends n items for user: When = base + i s, With = peer(i), Type
// "message", Value "msg i"; it returns their ids.
func fill(t testing.TB, a storage.Archive, user string, n int, peer func(i int) string) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		it := storage.Item{
			When:  base.Add(time.Duration(i) * time.Second),
			Type:  "message",
			Value: []byte(fmt.Sprintf("msg %d", i)),
		}
		if peer != nil {
			it.With = peer(i)
		}
		id, err := a.Append(t.Context(), user, it)
		mustNil(t, err)
		ids[i] = id
	}
	return ids
}

func find(t testing.TB, a storage.Archive, user string, q storage.Query) ([]storage.Item, int) {
	t.Helper()
	items, total, err := a.Find(t.Context(), user, q)
	if err != nil {
		t.Fatalf("Find(%+v): %v", q, err)
	}
	return items, total
}

func wantFind(t testing.TB, a storage.Archive, user string, q storage.Query, want []string) {
	t.Helper()
	items, total := find(t, a, user, q)
	g := itemIDs(items)
	if !slices.Equal(g, want) && !(len(g) == 0 && len(want) == 0) {
		t.Errorf("Find(%+v):\n got  %v\n want %v", q, g, want)
	}
	if !q.Total && total != -1 {
		t.Errorf("Find(%+v) without Total returned total %d, want -1", q, total)
	}
}

func rev(s []string) []string {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s
}

// pick returns ids[i] for each i.
func pick(ids []string, is ...int) []string {
	out := make([]string, len(is))
	for j, i := range is {
		out[j] = ids[i]
	}
	return out
}

func span(ids []string, from, to int) []string { return slices.Clone(ids[from:to]) }

func testArchAppendGenerated(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	a := d.Archive("example.org", "archive")
	ids := fill(t, a, "alice", 300, func(i int) string { return "bob@example.net" })
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" {
			t.Fatal("Append returned an empty id")
		}
		if seen[id] {
			t.Fatalf("Append returned id %q twice", id)
		}
		seen[id] = true
	}
	wantFind(t, a, "alice", storage.Query{}, ids)
	it, err := a.Get(ctx, "alice", ids[7])
	mustNil(t, err)
	want := storage.Item{ID: ids[7], When: base.Add(7 * time.Second), With: "bob@example.net", Type: "message", Value: []byte("msg 7")}
	if err := sameItem(it, want); err != nil {
		t.Errorf("Get: %v", err)
	}
	items, _ := find(t, a, "alice", storage.Query{IDs: []string{ids[7]}})
	if len(items) != 1 {
		t.Fatalf("Find by id: %d items", len(items))
	}
	if err := sameItem(items[0], want); err != nil {
		t.Errorf("Find: %v", err)
	}
}

func testArchAppendExplicit(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	a := d.Archive("example.org", "archive")
	id, err := a.Append(ctx, "alice", storage.Item{ID: "stanza-1", When: base, With: "bob", Type: "message", Value: []byte("first")})
	mustNil(t, err)
	if id != "stanza-1" {
		t.Fatalf("Append with explicit id returned %q", id)
	}
	mid, err := a.Append(ctx, "alice", storage.Item{When: base.Add(time.Second), Value: []byte("middle")})
	mustNil(t, err)
	// The same id for other users, stores and hosts is a different item.
	for _, other := range []struct {
		a    storage.Archive
		user string
	}{{a, "bob"}, {d.Archive("example.org", "other"), "alice"}, {d.Archive("example.net", "archive"), "alice"}} {
		_, err := other.a.Append(ctx, other.user, storage.Item{ID: "stanza-1", When: base, Value: []byte("elsewhere")})
		mustNil(t, err)
	}
	wantFind(t, a, "alice", storage.Query{}, []string{"stanza-1", mid})

	// A duplicate explicit id replaces the older item, which moves to the end.
	id, err = a.Append(ctx, "alice", storage.Item{ID: "stanza-1", When: base.Add(2 * time.Second), With: "carol", Type: "edit", Value: []byte("second")})
	mustNil(t, err)
	if id != "stanza-1" {
		t.Fatalf("replacing Append returned %q", id)
	}
	wantFind(t, a, "alice", storage.Query{}, []string{mid, "stanza-1"})
	it, err := a.Get(ctx, "alice", "stanza-1")
	mustNil(t, err)
	if err := sameItem(it, storage.Item{ID: "stanza-1", When: base.Add(2 * time.Second), With: "carol", Type: "edit", Value: []byte("second")}); err != nil {
		t.Errorf("replaced item: %v", err)
	}
	if _, total := find(t, a, "alice", storage.Query{Total: true}); total != 2 {
		t.Errorf("total after replacing Append = %d, want 2", total)
	}
	it, err = a.Get(ctx, "bob", "stanza-1")
	mustNil(t, err)
	wantValue(t, "bob's item with the same id", it.Value, "elsewhere")
}

func testArchWhen(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	a := d.Archive("example.org", "archive")
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	cases := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"sub-millisecond truncated", time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC), time.Date(2024, 5, 6, 7, 8, 9, 123000000, time.UTC)},
		{"other zone becomes UTC", time.Date(2024, 5, 6, 9, 8, 9, 999999999, paris), time.Date(2024, 5, 6, 7, 8, 9, 999000000, time.UTC)},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 500600000, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC)},
		{"far future", time.Date(2999, 1, 2, 3, 4, 5, 6000000, time.UTC), time.Date(2999, 1, 2, 3, 4, 5, 6000000, time.UTC)},
	}
	for _, c := range cases {
		id, err := a.Append(ctx, "alice", storage.Item{When: c.in, Value: []byte(c.name)})
		mustNil(t, err)
		it, err := a.Get(ctx, "alice", id)
		mustNil(t, err)
		if !it.When.Equal(c.want) || it.When.Location() != time.UTC {
			t.Errorf("%s: When %v stored as %v (%v), want %v UTC", c.name, c.in, it.When, it.When.Location(), c.want)
		}
		items, _ := find(t, a, "alice", storage.Query{IDs: []string{id}})
		if len(items) != 1 || !items[0].When.Equal(c.want) || items[0].When.Location() != time.UTC {
			t.Errorf("%s: Find returned %v", c.name, items)
		}
	}
	// Zero When means now.
	before := time.Now().Truncate(time.Millisecond)
	id, err := a.Append(ctx, "alice", storage.Item{Value: []byte("now")})
	mustNil(t, err)
	after := time.Now()
	it, err := a.Get(ctx, "alice", id)
	mustNil(t, err)
	if it.When.Before(before) || it.When.After(after) || it.When.Location() != time.UTC {
		t.Errorf("zero When stored as %v, want between %v and %v, UTC", it.When, before, after)
	}
	if it.When.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("zero When stored with sub-millisecond precision: %v", it.When)
	}
}

func testArchValues(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	a := d.Archive("example.org", "archive")
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	items := []storage.Item{
		{When: base, Value: nil},
		{When: base, Value: []byte{}},
		{When: base, With: "bob@example.net/résource", Type: "groupchat", Value: allBytes},
		{When: base, With: "quote'\"%_", Type: "ty'pe", Value: bytes.Repeat([]byte("<message/>"), 30000)},
	}
	for i := range items {
		id, err := a.Append(ctx, "alice", items[i])
		mustNil(t, err)
		items[i].ID = id
	}
	found, _ := find(t, a, "alice", storage.Query{})
	if len(found) != len(items) {
		t.Fatalf("Find returned %d items, want %d", len(found), len(items))
	}
	for i, want := range items {
		if err := sameItem(found[i], want); err != nil {
			t.Errorf("item %d: %v", i, err)
		}
	}
	// Copies in and out.
	in := []byte("original")
	id, err := a.Append(ctx, "alice", storage.Item{When: base, Value: in})
	mustNil(t, err)
	copy(in, "MODIFIED")
	it, err := a.Get(ctx, "alice", id)
	mustNil(t, err)
	wantValue(t, "value after caller modified its slice", it.Value, "original")
	copy(it.Value, "MODIFIED")
	it, err = a.Get(ctx, "alice", id)
	mustNil(t, err)
	wantValue(t, "value after caller modified a returned slice", it.Value, "original")
}

func testArchOrder(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	a := d.Archive("example.org", "archive")
	// When goes backwards and forwards: order stays append order.
	offsets := []int{5, 1, 9, 1, 0, 7}
	var ids []string
	for _, o := range offsets {
		id, err := a.Append(ctx, "alice", storage.Item{When: base.Add(time.Duration(o) * time.Hour), Value: []byte("x")})
		mustNil(t, err)
		ids = append(ids, id)
	}
	wantFind(t, a, "alice", storage.Query{}, ids)
	wantFind(t, a, "alice", storage.Query{Reverse: true}, rev(ids))
	wantFind(t, a, "alice", storage.Query{Limit: 2, Reverse: true}, pick(ids, 5, 4))
	// Start/End filter by When but keep append order.
	wantFind(t, a, "alice", storage.Query{Start: base.Add(time.Hour), End: base.Add(7 * time.Hour)}, pick(ids, 0, 1, 3, 5))
}

func testArchFindStartEnd(t *testing.T, d storage.Driver) {
	a := d.Archive("example.org", "archive")
	ids := fill(t, a, "alice", 10, nil) // When = base + i s
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	cases := []struct {
		name string
		q    storage.Query
		want []string
	}{
		{"inclusive both ends", storage.Query{Start: at(3), End: at(6)}, span(ids, 3, 7)},
		{"start only", storage.Query{Start: at(7)}, span(ids, 7, 10)},
		{"end only", storage.Query{End: at(2)}, span(ids, 0, 3)},
		{"single instant", storage.Query{Start: at(4), End: at(4)}, pick(ids, 4)},
		{"between items", storage.Query{Start: at(4).Add(time.Millisecond), End: at(5).Add(-time.Millisecond)}, nil},
		{"start after end", storage.Query{Start: at(6), End: at(3)}, nil},
		{"before everything", storage.Query{End: base.Add(-time.Millisecond)}, nil},
		{"after everything", storage.Query{Start: at(9).Add(time.Millisecond)}, nil},
		{"sub-millisecond bounds compare at ms precision", storage.Query{Start: at(3).Add(500 * time.Microsecond), End: at(6).Add(999 * time.Microsecond)}, span(ids, 3, 7)},
		{"bounds in another zone", storage.Query{Start: at(3).In(time.FixedZone("X", -5*3600)), End: at(3).In(time.FixedZone("Y", 9*3600))}, pick(ids, 3)},
		{"reverse with bounds", storage.Query{Start: at(3), End: at(6), Reverse: true}, rev(span(ids, 3, 7))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantFind(t, a, "alice", c.q, c.want) })
	}
}

func testArchFindWith(t *testing.T, d storage.Driver) {
	peers := []string{"bob@example.net", "carol@example.net", "Bob@example.net", "bob@example.net/phone", ""}
	a := d.Archive("example.org", "archive")
	ids := fill(t, a, "alice", 20, func(i int) string { return peers[i%len(peers)] })
	for p, peer := range peers {
		if peer == "" {
			continue
		}
		var want []string
		for i := p; i < 20; i += len(peers) {
			want = append(want, ids[i])
		}
		wantFind(t, a, "alice", storage.Query{With: peer}, want)
		wantFind(t, a, "alice", storage.Query{With: peer, Reverse: true}, rev(want))
	}
	wantFind(t, a, "alice", storage.Query{With: ""}, ids) // no filter
	wantFind(t, a, "alice", storage.Query{With: "nobody@example.net"}, nil)
	wantFind(t, a, "alice", storage.Query{With: "bob@"}, nil) // no prefix matching
}

func testArchFindIDs(t *testing.T, d storage.Driver) {
	a := d.Archive("example.org", "archive")
	ids := fill(t, a, "alice", 10, nil)
	wantFind(t, a, "alice", storage.Query{IDs: pick(ids, 7, 2, 5)}, pick(ids, 2, 5, 7)) // archive order
	wantFind(t, a, "alice", storage.Query{IDs: pick(ids, 7, 2, 5), Reverse: true}, pick(ids, 7, 5, 2))
	wantFind(t, a, "alice", storage.Query{IDs: []string{ids[3], "unknown", ids[3]}}, pick(ids, 3))
	wantFind(t, a, "alice", storage.Query{IDs: []string{"unknown"}}, nil)
	wantFind(t, a, "alice", storage.Query{IDs: []string{}}, nil) // non-nil empty: nothing
	wantFind(t, a, "alice", storage.Query{IDs: nil}, ids)        // nil: no filter
	// Many ids.
	wantFind(t, a, "alice", storage.Query{IDs: append(slices.Clone(ids), manyUnknown(2000)...)}, ids)
	// Ids are per user.
	wantFind(t, a, "bob", storage.Query{IDs: ids}, nil)
	items, total := find(t, a, "alice", storage.Query{IDs: pick(ids, 1, 8), Total: true, Limit: 1})
	wantIDs(t, "IDs with Limit", items, pick(ids, 1))
	if total != 2 {
		t.Errorf("total with IDs = %d, want 2", total)
	}
}

func manyUnknown(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("unknown-%d", i)
	}
	return s
}

func testArchFindBeforeAfter(t *testing.T, d storage.Driver) {
	a := d.Archive("example.org", "archive")
	ids := fill(t, a, "alice", 10, func(i int) string {
		if i%2 == 0 {
			return "even"
		}
		return "odd"
	})
	cases := []struct {
		name string
		q    storage.Query
		want []string
	}{
		{"after", storage.Query{After: ids[6]}, span(ids, 7, 10)},
		{"before", storage.Query{Before: ids[3]}, span(ids, 0, 3)},
		{"after and before", storage.Query{After: ids[2], Before: ids[6]}, span(ids, 3, 6)},
		{"adjacent", storage.Query{After: ids[4], Before: ids[5]}, nil},
		{"same id", storage.Query{After: ids[4], Before: ids[4]}, nil},
		{"crossed", storage.Query{After: ids[7], Before: ids[2]}, nil},
		{"after the last", storage.Query{After: ids[9]}, nil},
		{"before the first", storage.Query{Before: ids[0]}, nil},
		{"after, reverse", storage.Query{After: ids[6], Reverse: true}, rev(span(ids, 7, 10))},
		{"before, reverse", storage.Query{Before: ids[3], Reverse: true}, rev(span(ids, 0, 3))},
		// A cursor need not match the other filters: it is a position.
		{"cursor filtered out by With", storage.Query{With: "even", After: ids[3]}, pick(ids, 4, 6, 8)},
		{"cursor filtered out by With, before", storage.Query{With: "odd", Before: ids[6], Reverse: true}, pick(ids, 5, 3, 1)},
		{"cursor outside time bounds", storage.Query{Start: base.Add(5 * time.Second), After: ids[1], Limit: 2}, pick(ids, 5, 6)},
		{"cursor not among IDs", storage.Query{IDs: pick(ids, 1, 5, 8), After: ids[2]}, pick(ids, 5, 8)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantFind(t, a, "alice", c.q, c.want) })
	}
}

func testArchFindUnknownCursor(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	a := d.Archive("example.org", "archive")
	ids := fill(t, a, "alice", 5, nil)
	bobID, err := a.Append(ctx, "bob", storage.Item{Value: []byte("bob's")})
	mustNil(t, err)
	otherStore, err := d.Archive("example.org", "other").Append(ctx, "alice", storage.Item{Value: []byte("x")})
	mustNil(t, err)
	for _, q := range []storage.Query{
		{Before: "unknown"},
		{After: "unknown"},
		{After: ids[1], Before: "unknown"},
		{After: "unknown", Before: ids[3]},
		{Before: "unknown", Total: true},
		{After: "unknown", Reverse: true, Limit: 5},
		{Before: bobID},     // another user's item
		{After: otherStore}, // another store's item
	} {
		_, _, err := a.Find(ctx, "alice", q)
		wantNotFound(t, fmt.Sprintf("Find(%+v)", q), err)
		n, err := a.Delete(ctx, "alice", q)
		wantNotFound(t, fmt.Sprintf("Delete(%+v)", q), err)
		if n != 0 {
			t.Errorf("Delete(%+v) with an unknown cursor deleted %d", q, n)
		}
	}
	_, _, err = a.Find(ctx, "nobody", storage.Query{After: "unknown"})
	wantNotFound(t, "Find with a cursor in an empty archive", err)
	wantFind(t, a, "alice", storage.Query{}, ids) // nothing was deleted
}

func testArchFindLimitReverse(t *testing.T, d storage.Driver) {
	a := d.Archive("example.org", "archive")
	ids := fill(t, a, "alice", 10, nil)
	cases := []struct {
		name string
		q    storage.Query
		want []string
	}{
		{"limit keeps the oldest", storage.Query{Limit: 3}, span(ids, 0, 3)},
		{"reverse", storage.Query{Reverse: true}, rev(ids)},
		{"reverse limit keeps the newest", storage.Query{Reverse: true, Limit: 3}, pick(ids, 9, 8, 7)},
		{"limit above count", storage.Query{Limit: 50}, ids},
		{"limit equal to count", storage.Query{Limit: 10, Reverse: true}, rev(ids)},
		{"limit 1", storage.Query{Limit: 1}, pick(ids, 0)},
		{"reverse limit 1", storage.Query{Limit: 1, Reverse: true}, pick(ids, 9)},
		{"limit with after", storage.Query{After: ids[3], Limit: 2}, pick(ids, 4, 5)},
		{"limit with before", storage.Query{Before: ids[6], Limit: 2}, pick(ids, 0, 1)},
		{"reverse limit with before", storage.Query{Before: ids[6], Limit: 2, Reverse: true}, pick(ids, 5, 4)},
		{"reverse limit with after", storage.Query{After: ids[3], Limit: 2, Reverse: true}, pick(ids, 9, 8)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantFind(t, a, "alice", c.q, c.want) })
	}
	wantFind(t, a, "nobody", storage.Query{Limit: 5, Reverse: true}, nil)
}

func testArchFindTotal(t *testing.T, d storage.Driver) {
	a := d.Archive("example.org", "archive")
	ids := fill(t, a, "alice", 20, func(i int) string { return []string{"bob", "carol"}[i%2] })
	cases := []struct {
		name  string
		q     storage.Query
		want  []string
		total int
	}{
		{"all", storage.Query{Total: true}, ids, 20},
		{"limit ignored", storage.Query{Total: true, Limit: 3}, span(ids, 0, 3), 20},
		{"after ignored", storage.Query{Total: true, After: ids[17]}, span(ids, 18, 20), 20},
		{"before ignored", storage.Query{Total: true, Before: ids[1], Reverse: true}, pick(ids, 0), 20},
		{"with counted", storage.Query{Total: true, With: "bob", Limit: 2, Reverse: true}, pick(ids, 18, 16), 10},
		{"time bounds counted", storage.Query{Total: true, Start: base.Add(5 * time.Second), End: base.Add(9 * time.Second), Limit: 1}, pick(ids, 5), 5},
		{"empty page, total kept", storage.Query{Total: true, After: ids[19]}, nil, 20},
		{"no match", storage.Query{Total: true, With: "nobody"}, nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			items, total := find(t, a, "alice", c.q)
			wantIDs(t, "items", items, c.want)
			if total != c.total {
				t.Errorf("total = %d, want %d", total, c.total)
			}
		})
	}
	_, total := find(t, a, "alice", storage.Query{Limit: 2})
	if total != -1 {
		t.Errorf("total without Total = %d, want -1", total)
	}
	_, total = find(t, a, "nobody", storage.Query{Total: true})
	if total != 0 {
		t.Errorf("total of an empty archive = %d, want 0", total)
	}
}

func testArchFindCombined(t *testing.T, d storage.Driver) {
	a := d.Archive("example.org", "archive")
	ids := fill(t, a, "alice", 30, func(i int) string { return []string{"bob", "carol", "dave"}[i%3] })
	// bob: 0,3,6,...,27; window 5s..25s: bob items 6,9,...,24.
	q := storage.Query{With: "bob", Start: base.Add(5 * time.Second), End: base.Add(25 * time.Second), After: ids[9], Before: ids[24], Limit: 3, Total: true}
	items, total := find(t, a, "alice", q)
	wantIDs(t, "combined", items, pick(ids, 12, 15, 18))
	if total != 7 {
		t.Errorf("combined total = %d, want 7", total)
	}
	q.Reverse = true
	items, _ = find(t, a, "alice", q)
	wantIDs(t, "combined reverse", items, pick(ids, 21, 18, 15))
	q.IDs = pick(ids, 3, 12, 13, 21, 24)
	items, total = find(t, a, "alice", q)
	wantIDs(t, "combined with IDs", items, pick(ids, 21, 12))
	if total != 3 { // 12, 21, 24
		t.Errorf("combined with IDs total = %d, want 3", total)
	}
}

// testArchFindRange checks RangeAfter/RangeBefore (XEP-0313 after-id and
// before-id): exclusive bounds of the result set that Total honours, alone,
// together, and combined with the Before/After paging cursors.
func testArchFindRange(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	a := d.Archive("example.org", "archive")
	ids := fill(t, a, "alice", 20, func(i int) string { return []string{"bob", "carol"}[i%2] })
	fill(t, a, "bob", 5, nil)
	cases := []struct {
		name  string
		q     storage.Query
		want  []string
		total int
	}{
		{"range after", storage.Query{RangeAfter: ids[14], Total: true}, span(ids, 15, 20), 5},
		{"range before", storage.Query{RangeBefore: ids[3], Total: true}, span(ids, 0, 3), 3},
		{"range both", storage.Query{RangeAfter: ids[4], RangeBefore: ids[10], Total: true}, span(ids, 5, 10), 5},
		{"range crossed", storage.Query{RangeAfter: ids[10], RangeBefore: ids[4], Total: true}, nil, 0},
		{"range with With", storage.Query{RangeAfter: ids[4], RangeBefore: ids[10], With: "bob", Total: true}, pick(ids, 6, 8), 2},
		{"page forwards inside the range", storage.Query{RangeAfter: ids[4], RangeBefore: ids[15], After: ids[7], Limit: 3, Total: true}, pick(ids, 8, 9, 10), 10},
		{"page backwards inside the range", storage.Query{RangeAfter: ids[4], RangeBefore: ids[15], Before: ids[9], Reverse: true, Limit: 3, Total: true}, pick(ids, 8, 7, 6), 10},
		{"last page of the range", storage.Query{RangeAfter: ids[4], RangeBefore: ids[15], Reverse: true, Limit: 3, Total: true}, pick(ids, 14, 13, 12), 10},
		// A cursor outside the range: the range still applies.
		{"cursor before the range", storage.Query{RangeAfter: ids[15], After: ids[2], Limit: 2, Total: true}, pick(ids, 16, 17), 4},
		{"cursor after the range", storage.Query{RangeBefore: ids[5], Before: ids[12], Reverse: true, Total: true}, pick(ids, 4, 3, 2, 1, 0), 5},
		{"range and IDs", storage.Query{RangeAfter: ids[5], IDs: pick(ids, 1, 5, 6, 19), Total: true}, pick(ids, 6, 19), 2},
		{"range and time", storage.Query{RangeAfter: ids[5], End: base.Add(8 * time.Second), Total: true}, pick(ids, 6, 7, 8), 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			items, total := find(t, a, "alice", c.q)
			wantIDs(t, "items", items, c.want)
			if total != c.total {
				t.Errorf("total = %d, want %d", total, c.total)
			}
		})
	}
	bobID, err := a.Append(ctx, "bob", storage.Item{Value: []byte("bob's")})
	mustNil(t, err)
	for _, q := range []storage.Query{
		{RangeAfter: "unknown"},
		{RangeBefore: "unknown", Total: true},
		{RangeAfter: ids[1], RangeBefore: "unknown"},
		{RangeAfter: bobID, Limit: 5},
	} {
		_, _, err := a.Find(ctx, "alice", q)
		wantNotFound(t, fmt.Sprintf("Find(%+v)", q), err)
		n, err := a.Delete(ctx, "alice", q)
		wantNotFound(t, fmt.Sprintf("Delete(%+v)", q), err)
		if n != 0 {
			t.Errorf("Delete(%+v) with an unknown range id deleted %d", q, n)
		}
	}
	wantFind(t, a, "alice", storage.Query{}, ids)
}

// testArchAppendMany checks storage.BulkAppender where the driver has it:
// the same as appending one by one, ids and replacement included.
func testArchAppendMany(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	a := d.Archive("example.org", "archive")
	bulk, ok := a.(storage.BulkAppender)
	if !ok {
		t.Skip("the driver's Archive does not implement storage.BulkAppender")
	}
	first, err := a.Append(ctx, "alice", storage.Item{ID: "dup", When: base, Value: []byte("replaced")})
	mustNil(t, err)
	items := []storage.Item{
		{When: base.Add(time.Second), With: "bob", Type: "message", Value: []byte("one")},
		{ID: "explicit", When: base.Add(2 * time.Second), With: "carol", Type: "message", Value: []byte("two")},
		{ID: first, When: base.Add(3 * time.Second), With: "bob", Type: "edit", Value: []byte("three")},
		{When: base.Add(4 * time.Second), Value: []byte{}},
	}
	ids, err := bulk.AppendMany(ctx, "alice", items)
	mustNil(t, err)
	if len(ids) != 4 || ids[0] == "" || ids[1] != "explicit" || ids[2] != "dup" || ids[3] == "" || ids[0] == ids[3] {
		t.Fatalf("AppendMany returned ids %v", ids)
	}
	wantFind(t, a, "alice", storage.Query{}, ids)
	it, err := a.Get(ctx, "alice", "dup")
	mustNil(t, err)
	if err := sameItem(it, storage.Item{ID: "dup", When: base.Add(3 * time.Second), With: "bob", Type: "edit", Value: []byte("three")}); err != nil {
		t.Errorf("replaced item: %v", err)
	}
	if _, total := find(t, a, "alice", storage.Query{With: "bob", Total: true}); total != 2 {
		t.Errorf("With bob: total %d, want 2", total)
	}
	ids2, err := bulk.AppendMany(ctx, "alice", nil)
	mustNil(t, err)
	if len(ids2) != 0 {
		t.Errorf("AppendMany(nil) returned %v", ids2)
	}
	next, err := a.Append(ctx, "alice", storage.Item{Value: []byte("after")})
	mustNil(t, err)
	wantFind(t, a, "alice", storage.Query{}, append(slices.Clone(ids), next))
}

// testArchPaging pages through 100 items like XEP-0059 result set
// management: forwards with After, backwards with Reverse+Before.
func testArchPaging(t *testing.T, d storage.Driver) {
	a := d.Archive("example.org", "archive")
	const n = 100
	ids := fill(t, a, "alice", n, func(i int) string {
		if i%3 == 0 {
			return "bob"
		}
		return "carol"
	})
	for _, tc := range []struct {
		name  string
		with  string
		limit int
	}{{"all by 10", "", 10}, {"all by 7", "", 7}, {"all by 1", "", 1}, {"all by 100", "", 100}, {"bob by 6", "bob", 6}} {
		var want []string
		for i, id := range ids {
			if tc.with == "" || (tc.with == "bob") == (i%3 == 0) {
				want = append(want, id)
			}
		}
		t.Run(tc.name+" forwards", func(t *testing.T) {
			var got []string
			q := storage.Query{With: tc.with, Limit: tc.limit, Total: true}
			for pages := 0; ; pages++ {
				if pages > n+1 {
					t.Fatal("paging does not end")
				}
				items, total := find(t, a, "alice", q)
				if total != len(want) {
					t.Fatalf("page %d: total %d, want %d", pages, total, len(want))
				}
				if len(items) > tc.limit {
					t.Fatalf("page %d: %d items, limit %d", pages, len(items), tc.limit)
				}
				if len(items) == 0 {
					break
				}
				got = append(got, itemIDs(items)...)
				q.After = items[len(items)-1].ID
			}
			if !slices.Equal(got, want) {
				t.Errorf("forward pages gave %d ids, want %d in order", len(got), len(want))
			}
		})
		t.Run(tc.name+" backwards", func(t *testing.T) {
			var got []string
			q := storage.Query{With: tc.with, Limit: tc.limit, Reverse: true}
			for pages := 0; ; pages++ {
				if pages > n+1 {
					t.Fatal("paging does not end")
				}
				items, _ := find(t, a, "alice", q)
				if len(items) == 0 {
					break
				}
				// Each page is newest first and just before the previous one.
				for i := 1; i < len(items); i++ {
					if slices.Index(ids, items[i].ID) > slices.Index(ids, items[i-1].ID) {
						t.Fatalf("page %d not newest first: %v", pages, itemIDs(items))
					}
				}
				got = append(got, itemIDs(items)...)
				q.Before = items[len(items)-1].ID
			}
			if !slices.Equal(got, rev(want)) {
				t.Errorf("backward pages gave %d ids, want %d newest first", len(got), len(want))
			}
		})
	}
	// A page in the middle, both ways.
	wantFind(t, a, "alice", storage.Query{After: ids[49], Limit: 10}, span(ids, 50, 60))
	wantFind(t, a, "alice", storage.Query{Before: ids[50], Limit: 10, Reverse: true}, rev(span(ids, 40, 50)))
	// The last page (XEP-0059 <before/> empty): newest 10, newest first.
	wantFind(t, a, "alice", storage.Query{Limit: 10, Reverse: true}, rev(span(ids, 90, 100)))
}

func testArchGetSet(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	a := d.Archive("example.org", "archive")
	ids := fill(t, a, "alice", 5, func(int) string { return "bob" })
	_, err := a.Get(ctx, "alice", "unknown")
	wantNotFound(t, "Get of an unknown id", err)
	_, err = a.Get(ctx, "bob", ids[0])
	wantNotFound(t, "Get of another user's id", err)

	// Set replaces Value and Type and keeps position, When and With.
	mustNil(t, a.Set(ctx, "alice", ids[2], storage.Item{ID: "ignored", When: base.Add(time.Hour), With: "ignored", Type: "retracted", Value: []byte("tombstone")}))
	it, err := a.Get(ctx, "alice", ids[2])
	mustNil(t, err)
	if err := sameItem(it, storage.Item{ID: ids[2], When: base.Add(2 * time.Second), With: "bob", Type: "retracted", Value: []byte("tombstone")}); err != nil {
		t.Errorf("item after Set: %v", err)
	}
	wantFind(t, a, "alice", storage.Query{}, ids)
	wantFind(t, a, "alice", storage.Query{Limit: 1, Reverse: true}, pick(ids, 4))
	// An empty Type and Value replace too.
	mustNil(t, a.Set(ctx, "alice", ids[2], storage.Item{}))
	it, err = a.Get(ctx, "alice", ids[2])
	mustNil(t, err)
	if it.Type != "" || len(it.Value) != 0 {
		t.Errorf("item after empty Set: type %q value %q", it.Type, it.Value)
	}
	wantNotFound(t, "Set of an unknown id", a.Set(ctx, "alice", "unknown", storage.Item{Value: []byte("x")}))
	wantNotFound(t, "Set of another user's id", a.Set(ctx, "bob", ids[1], storage.Item{Value: []byte("x")}))
	wantNotFound(t, "Set in another store", d.Archive("example.org", "other").Set(ctx, "alice", ids[1], storage.Item{Value: []byte("x")}))
	wantFind(t, a, "bob", storage.Query{}, nil)
	// Set does not disturb its neighbours.
	it, err = a.Get(ctx, "alice", ids[1])
	mustNil(t, err)
	wantValue(t, "neighbour after Set", it.Value, "msg 1")
}

func testArchDelete(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	peer := func(i int) string { return []string{"bob", "carol"}[i%2] }
	setup := func(t *testing.T, store string) (storage.Archive, []string) {
		a := d.Archive("example.org", store)
		ids := fill(t, a, "alice", 10, peer)
		fill(t, a, "bob", 3, peer)
		return a, ids
	}
	cases := []struct {
		name string
		q    func(ids []string) storage.Query
		left func(ids []string) []string
	}{
		{"zero query deletes all", func([]string) storage.Query { return storage.Query{} }, func([]string) []string { return nil }},
		{"with", func([]string) storage.Query { return storage.Query{With: "bob"} }, func(ids []string) []string { return pick(ids, 1, 3, 5, 7, 9) }},
		{"time bounds", func([]string) storage.Query {
			return storage.Query{Start: base.Add(2 * time.Second), End: base.Add(7 * time.Second)}
		}, func(ids []string) []string { return pick(ids, 0, 1, 8, 9) }},
		{"ids", func(ids []string) storage.Query { return storage.Query{IDs: pick(ids, 0, 9, 4)} }, func(ids []string) []string { return pick(ids, 1, 2, 3, 5, 6, 7, 8) }},
		{"empty ids delete nothing", func([]string) storage.Query { return storage.Query{IDs: []string{}} }, func(ids []string) []string { return ids }},
		{"before", func(ids []string) storage.Query { return storage.Query{Before: ids[3]} }, func(ids []string) []string { return span(ids, 3, 10) }},
		{"after", func(ids []string) storage.Query { return storage.Query{After: ids[3]} }, func(ids []string) []string { return span(ids, 0, 4) }},
		{"after and before with", func(ids []string) storage.Query { return storage.Query{After: ids[1], Before: ids[8], With: "carol"} }, func(ids []string) []string { return pick(ids, 0, 1, 2, 4, 6, 8, 9) }},
		{"limit deletes the oldest", func([]string) storage.Query { return storage.Query{Limit: 3} }, func(ids []string) []string { return span(ids, 3, 10) }},
		{"reverse limit deletes the newest", func([]string) storage.Query { return storage.Query{Limit: 3, Reverse: true} }, func(ids []string) []string { return span(ids, 0, 7) }},
		{"range", func(ids []string) storage.Query { return storage.Query{RangeAfter: ids[1], RangeBefore: ids[8]} }, func(ids []string) []string { return pick(ids, 0, 1, 8, 9) }},
		{"no match", func([]string) storage.Query { return storage.Query{With: "nobody"} }, func(ids []string) []string { return ids }},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, ids := setup(t, fmt.Sprintf("archive%d", i))
			left := c.left(ids)
			n, err := a.Delete(ctx, "alice", c.q(ids))
			mustNil(t, err)
			if n != len(ids)-len(left) {
				t.Errorf("Delete returned %d, want %d", n, len(ids)-len(left))
			}
			wantFind(t, a, "alice", storage.Query{}, left)
			if _, total := find(t, a, "bob", storage.Query{Total: true}); total != 3 {
				t.Errorf("Delete for alice left bob %d items, want 3", total)
			}
		})
	}
	n, err := d.Archive("example.org", "empty").Delete(ctx, "alice", storage.Query{})
	mustNil(t, err)
	if n != 0 {
		t.Errorf("Delete in an empty archive returned %d", n)
	}
}

func testArchDeleteTruncate(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	peer := func(i int) string { return []string{"bob", "carol"}[i%2] }
	cases := []struct {
		name string
		q    func(ids []string) storage.Query
		left func(ids []string) []string
	}{
		{"keep newest 3", func([]string) storage.Query { return storage.Query{Truncate: 3} }, func(ids []string) []string { return span(ids, 7, 10) }},
		{"keep more than there are", func([]string) storage.Query { return storage.Query{Truncate: 50} }, func(ids []string) []string { return ids }},
		{"keep exactly all", func([]string) storage.Query { return storage.Query{Truncate: 10} }, func(ids []string) []string { return ids }},
		{"with reverse: still newest", func([]string) storage.Query { return storage.Query{Truncate: 3, Reverse: true} }, func(ids []string) []string { return span(ids, 7, 10) }},
		{"among with", func([]string) storage.Query { return storage.Query{Truncate: 2, With: "bob"} }, func(ids []string) []string { return pick(ids, 1, 3, 5, 6, 7, 8, 9) }},
		{"among time bounds", func([]string) storage.Query {
			return storage.Query{Truncate: 1, End: base.Add(4 * time.Second)}
		}, func(ids []string) []string { return span(ids, 4, 10) }},
		{"among before", func(ids []string) storage.Query { return storage.Query{Truncate: 2, Before: ids[5]} }, func(ids []string) []string { return span(ids, 3, 10) }},
		{"among a limit", func([]string) storage.Query { return storage.Query{Truncate: 1, Limit: 4} }, func(ids []string) []string { return span(ids, 3, 10) }},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := d.Archive("example.org", fmt.Sprintf("archive%d", i))
			ids := fill(t, a, "alice", 10, peer)
			fill(t, a, "bob", 5, peer)
			left := c.left(ids)
			n, err := a.Delete(ctx, "alice", c.q(ids))
			mustNil(t, err)
			if n != len(ids)-len(left) {
				t.Errorf("Delete returned %d, want %d", n, len(ids)-len(left))
			}
			wantFind(t, a, "alice", storage.Query{}, left)
			if _, total := find(t, a, "bob", storage.Query{Total: true}); total != 5 {
				t.Errorf("bob has %d items, want 5", total)
			}
		})
	}
}

func testArchDeleteAll(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	a := d.Archive("example.org", "archive")
	users := []string{"alice", "bob", "carol"}
	all := map[string][]string{}
	for _, u := range users {
		all[u] = fill(t, a, u, 10, func(i int) string { return []string{"x", "y"}[i%2] })
	}
	other := d.Archive("example.org", "other")
	otherHost := d.Archive("example.net", "archive")
	fill(t, other, "alice", 10, nil)
	fill(t, otherHost, "alice", 10, nil)

	// Items older than 3s: 0,1,2 of each user.
	n, err := a.DeleteAll(ctx, storage.Query{End: base.Add(2 * time.Second)})
	mustNil(t, err)
	if n != 9 {
		t.Errorf("DeleteAll(End) = %d, want 9", n)
	}
	// Newer than 8s: 8, 9.
	n, err = a.DeleteAll(ctx, storage.Query{Start: base.Add(8 * time.Second)})
	mustNil(t, err)
	if n != 6 {
		t.Errorf("DeleteAll(Start) = %d, want 6", n)
	}
	// Window 4s..5s with With y: item 5.
	n, err = a.DeleteAll(ctx, storage.Query{Start: base.Add(4 * time.Second), End: base.Add(5 * time.Second), With: "y"})
	mustNil(t, err)
	if n != 3 {
		t.Errorf("DeleteAll(Start, End, With) = %d, want 3", n)
	}
	for _, u := range users {
		wantFind(t, a, u, storage.Query{}, pick(all[u], 3, 4, 6, 7))
	}
	for _, s := range []storage.Archive{other, otherHost} {
		if _, total := find(t, s, "alice", storage.Query{Total: true}); total != 10 {
			t.Errorf("DeleteAll reached another store/host: %d items left, want 10", total)
		}
	}
	for _, q := range []storage.Query{
		{IDs: []string{all["alice"][3]}},
		{Before: all["alice"][4]},
		{After: all["alice"][4]},
		{RangeBefore: all["alice"][4]},
		{RangeAfter: all["alice"][4]},
		{Limit: 1},
		{Truncate: 1},
	} {
		n, err := a.DeleteAll(ctx, q)
		wantInvalid(t, fmt.Sprintf("DeleteAll(%+v)", q), err)
		if n != 0 {
			t.Errorf("invalid DeleteAll deleted %d", n)
		}
	}
	n, err = a.DeleteAll(ctx, storage.Query{})
	mustNil(t, err)
	if n != 12 {
		t.Errorf("DeleteAll() = %d, want 12", n)
	}
	for _, u := range users {
		wantFind(t, a, u, storage.Query{}, nil)
	}
	if _, total := find(t, other, "alice", storage.Query{Total: true}); total != 10 {
		t.Errorf("DeleteAll() reached another store: %d items left", total)
	}
}

func testArchInvalid(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	a := d.Archive("example.org", "archive")
	ids := fill(t, a, "alice", 3, nil)
	_, _, err := a.Find(ctx, "alice", storage.Query{Limit: -1})
	wantInvalid(t, "Find with Limit -1", err)
	n, err := a.Delete(ctx, "alice", storage.Query{Limit: -1})
	wantInvalid(t, "Delete with Limit -1", err)
	if n != 0 {
		t.Errorf("invalid Delete deleted %d", n)
	}
	_, err = a.Delete(ctx, "alice", storage.Query{Truncate: -1})
	wantInvalid(t, "Delete with Truncate -1", err)
	wantFind(t, a, "alice", storage.Query{}, ids)
	// Truncate is ignored by Find.
	wantFind(t, a, "alice", storage.Query{Truncate: 1}, ids)
}

func testArchConcurrent(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	a := d.Archive("example.org", "archive")
	const workers, each = 8, 40
	var mu sync.Mutex
	perWorker := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				it := storage.Item{When: base.Add(time.Duration(i) * time.Millisecond), With: fmt.Sprint("w", w), Value: []byte(fmt.Sprint(w, "/", i))}
				if i%5 == 0 {
					it.ID = fmt.Sprintf("explicit-%d-%d", w, i)
				}
				id, err := a.Append(ctx, "alice", it)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				perWorker[w] = append(perWorker[w], id)
				mu.Unlock()
			}
		}()
	}
	// Readers run alongside.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, _, err := a.Find(ctx, "alice", storage.Query{Limit: 10, Reverse: true, Total: true}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, ids := range perWorker {
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("id %q returned twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != workers*each {
		t.Fatalf("%d unique ids, want %d", len(seen), workers*each)
	}
	items, total := find(t, a, "alice", storage.Query{Total: true})
	if total != workers*each || len(items) != workers*each {
		t.Fatalf("Find: %d items, total %d; want %d", len(items), total, workers*each)
	}
	// Each worker's appends are in its order.
	for w, ids := range perWorker {
		wantFind(t, a, "alice", storage.Query{With: fmt.Sprint("w", w)}, ids)
	}
}

func testArchIsolation(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	type sc struct{ host, store string }
	scopes := []sc{{"example.org", "archive"}, {"example.org", "muc_log"}, {"example.net", "archive"}, {"example.net", "muc_log"}}
	ids := map[sc][]string{}
	for _, s := range scopes {
		ids[s] = fill(t, d.Archive(s.host, s.store), "alice", 4, func(int) string { return s.host + "/" + s.store })
	}
	for _, s := range scopes {
		a := d.Archive(s.host, s.store)
		items, total := find(t, a, "alice", storage.Query{Total: true})
		wantIDs(t, "Find in "+s.host+"/"+s.store, items, ids[s])
		if total != 4 {
			t.Errorf("total in %s/%s = %d", s.host, s.store, total)
		}
		for _, it := range items {
			if it.With != s.host+"/"+s.store {
				t.Errorf("item from another scope in %s/%s: %q", s.host, s.store, it.With)
			}
		}
		for _, o := range scopes {
			if o == s {
				continue
			}
			_, err := a.Get(ctx, "alice", ids[o][0])
			wantNotFound(t, "Get of another scope's id", err)
			wantFind(t, a, "alice", storage.Query{IDs: ids[o]}, nil)
		}
	}
	n, err := d.Archive("example.org", "archive").Delete(ctx, "alice", storage.Query{})
	mustNil(t, err)
	if n != 4 {
		t.Errorf("Delete = %d, want 4", n)
	}
	for _, s := range scopes[1:] {
		if _, total := find(t, d.Archive(s.host, s.store), "alice", storage.Query{Total: true}); total != 4 {
			t.Errorf("Delete in example.org/archive changed %s/%s", s.host, s.store)
		}
	}
}
