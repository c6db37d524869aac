// Package storagetest is the conformance suite every storage.Driver must
// pass, and shared benchmarks.
//
// A driver package calls Run from a test and Bench (or the individual
// Bench* helpers) from benchmarks:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Driver { return open(t) })
//	}
//
// The suite pins down the points the storage.go comments leave open; every
// driver follows them:
//
//   - Values: a nil value given to KeyVal.Set, Map.Set, Map.SetKeys or
//     BulkSetter.SetMany deletes; an empty non-nil value is stored and read
//     back as a non-nil empty slice. Values are copied in and out.
//   - KeyVal.Users yields users in ascending byte order, including "" (the
//     host) when it has a value; the loop body may modify the store.
//   - A KeyVal and a Map of the same (host, store) share rows: the keyval
//     value is map key "" (Prosody's table shape). Use distinct store names.
//   - Archive order is append order (sort_id), never When order. Reverse and
//     "newest" refer to archive order. Append with an existing explicit id
//     removes the old item and appends the new one at the end; Set keeps the
//     position, When and With and replaces Value and Type.
//   - When is stored truncated to the millisecond and returned in UTC; a zero
//     When on Append means now. Start/End compare at millisecond precision,
//     both inclusive.
//   - Query.IDs: nil does not filter; a non-nil empty slice matches nothing.
//     Unknown ids in IDs are ignored. Results are in archive order.
//   - Before/After name positions: they must exist for that user (else
//     ErrNotFound) but need not match the other filters.
//   - Limit keeps the first Limit items of the result order (the oldest, or
//     the newest with Reverse); so Reverse+Before+Limit is the page just
//     before an id, newest first, and After+Limit the page just after it.
//   - RangeAfter/RangeBefore are positions like After/Before (unknown:
//     ErrNotFound) but bound the result set: Total counts only items
//     between them.
//   - Total counts Start/End/With/IDs/RangeAfter/RangeBefore matches; -1
//     when not requested.
//   - BulkAppender.AppendMany (optional) is Append of each item in order.
//   - Delete removes exactly what Find would return for q (Limit and
//     Reverse included); Truncate then keeps the newest Truncate of those.
//   - DeleteAll honours Start, End and With only; IDs, Before, After,
//     RangeBefore, RangeAfter, Limit or Truncate give ErrInvalidQuery. A
//     negative Limit or Truncate gives ErrInvalidQuery everywhere.
//   - Operations on a cancelled context fail with an error wrapping
//     context.Canceled.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/storage"
)

type testCase struct {
	name string
	fn   func(t *testing.T, d storage.Driver)
}

// Run runs the conformance suite. newDriver is called once per subtest and
// must return an empty driver; the suite closes it at the end of the
// subtest (Close is called before cleanups newDriver registered on t run).
// Subtests run in parallel.
func Run(t *testing.T, newDriver func(t *testing.T) storage.Driver) {
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"KeyVal", keyValCases},
		{"Map", mapCases},
		{"Archive", archiveCases},
		{"Driver", driverCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					d := newDriver(t)
					t.Cleanup(func() {
						if err := d.Close(); err != nil {
							t.Errorf("Close: %v", err)
						}
					})
					tc.fn(t, d)
				})
			}
		})
	}
}

var driverCases = []testCase{
	{"CancelledContext", testCancelledContext},
	{"StoresHelper", testStoresHelper},
}

func testCancelledContext(t *testing.T, d storage.Driver) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	kv := d.KeyVal("example.org", "accounts")
	m := d.Map("example.org", "roster")
	a := d.Archive("example.org", "archive")
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s on a cancelled context: got %v, want context.Canceled", op, err)
		}
	}
	_, err := kv.Get(ctx, "u")
	check("KeyVal.Get", err)
	check("KeyVal.Set", kv.Set(ctx, "u", []byte("v")))
	for _, err := range kv.Users(ctx) {
		check("KeyVal.Users", err)
		break
	}
	check("Map.SetKeys", m.SetKeys(ctx, "u", map[string][]byte{"a": []byte("1")}))
	_, err = m.All(ctx, "u")
	check("Map.All", err)
	_, err = a.Append(ctx, "u", storage.Item{Value: []byte("x")})
	check("Archive.Append", err)
	_, _, err = a.Find(ctx, "u", storage.Query{})
	check("Archive.Find", err)
	_, err = a.Delete(ctx, "u", storage.Query{})
	check("Archive.Delete", err)

	// Nothing was written.
	bg := t.Context()
	if _, err := kv.Get(bg, "u"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("KeyVal.Get after cancelled Set: %v, want ErrNotFound", err)
	}
	if all, err := m.All(bg, "u"); err != nil || len(all) != 0 {
		t.Errorf("Map.All after cancelled SetKeys: %v, %v; want empty", all, err)
	}
	if items, _, err := a.Find(bg, "u", storage.Query{}); err != nil || len(items) != 0 {
		t.Errorf("Archive.Find after cancelled Append: %d items, %v; want none", len(items), err)
	}
}

func testStoresHelper(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	s := storage.Stores{Host: "example.org", Name: "vcard", Driver: d}
	mustNil(t, s.KeyVal().Set(ctx, "alice", []byte("kv")))
	mustNil(t, s.Map().Set(ctx, "alice", "k", []byte("map")))
	_, err := s.Archive().Append(ctx, "alice", storage.Item{Value: []byte("arch")})
	mustNil(t, err)
	v, err := d.KeyVal("example.org", "vcard").Get(ctx, "alice")
	mustNil(t, err)
	wantValue(t, "keyval via Stores", v, "kv")
	v, err = d.Map("example.org", "vcard").Get(ctx, "alice", "k")
	mustNil(t, err)
	wantValue(t, "map via Stores", v, "map")
	items, _, err := d.Archive("example.org", "vcard").Find(ctx, "alice", storage.Query{})
	mustNil(t, err)
	if len(items) != 1 || string(items[0].Value) != "arch" {
		t.Errorf("archive via Stores: %v", items)
	}
}

// ---- helpers ----

func mustNil(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantValue(t testing.TB, what string, got []byte, want string) {
	t.Helper()
	if got == nil || string(got) != want {
		t.Errorf("%s: got %q (nil=%v), want %q", what, got, got == nil, want)
	}
}

func wantNotFound(t testing.TB, what string, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: got error %v, want ErrNotFound", what, err)
	}
}

func wantInvalid(t testing.TB, what string, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrInvalidQuery) {
		t.Errorf("%s: got error %v, want ErrInvalidQuery", what, err)
	}
}

func itemIDs(items []storage.Item) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}

func wantIDs(t testing.TB, what string, got []storage.Item, want []string) {
	t.Helper()
	g := itemIDs(got)
	if !slices.Equal(g, want) && !(len(g) == 0 && len(want) == 0) {
		t.Errorf("%s: got ids %v, want %v", what, g, want)
	}
}

func sameItem(a, b storage.Item) error {
	switch {
	case a.ID != b.ID:
		return fmt.Errorf("field ID: %q != %q", a.ID, b.ID)
	case !a.When.Equal(b.When):
		return fmt.Errorf("field When: %v != %v", a.When, b.When)
	case a.With != b.With:
		return fmt.Errorf("field With: %q != %q", a.With, b.With)
	case a.Type != b.Type:
		return fmt.Errorf("field Type: %q != %q", a.Type, b.Type)
	case !bytes.Equal(a.Value, b.Value):
		return fmt.Errorf("field Value: %q != %q", a.Value, b.Value)
	}
	return nil
}

// base is a fixed millisecond-aligned time the archive tests count from.
var base = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
