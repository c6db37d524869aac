package storagetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/storage"
)

// Loader may be implemented by a driver's Archive, typically in a _test.go
// file of the driver package so that it is not part of the API, to load
// benchmark fixtures quickly (one transaction, COPY, ...). The items carry
// their IDs and must end up in this order, as if appended one by one.
type Loader interface {
	LoadForBench(ctx context.Context, user string, items []storage.Item) error
}

// Bench runs every benchmark of the package: BenchArchiveAppend,
// BenchArchiveAppendParallel, BenchArchiveFind with 100,000 items and
// BenchKeyValSetMany.
func Bench(b *testing.B, newDriver func(tb testing.TB) storage.Driver) {
	b.Run("ArchiveAppend", func(b *testing.B) { BenchArchiveAppend(b, newDriver) })
	b.Run("ArchiveAppendParallel", func(b *testing.B) { BenchArchiveAppendParallel(b, newDriver) })
	b.Run("ArchiveFind", func(b *testing.B) { BenchArchiveFind(b, newDriver, 100_000) })
	b.Run("KeyValSetMany", func(b *testing.B) { BenchKeyValSetMany(b, newDriver) })
}

// BenchKeyValSetMany measures bulk imports of 1,000 new accounts per
// storage.BulkSetter call (Set one by one when the driver has none) and
// reports accounts/s.
func BenchKeyValSetMany(b *testing.B, newDriver func(tb testing.TB) storage.Driver) {
	d := newDriver(b)
	b.Cleanup(func() { d.Close() })
	kv := d.KeyVal("example.org", "accounts")
	ctx := b.Context()
	const batch = 1000
	value := []byte(`{"iteration_count":4096,"salt":"c2FsdHNhbHRzYWx0c2FsdA==","stored_key":"...","server_key":"..."}`)
	n := 0
	start := time.Now()
	for b.Loop() {
		values := make(map[string][]byte, batch)
		for range batch {
			values[fmt.Sprintf("user%09d", n)] = value
			n++
		}
		if bs, ok := kv.(storage.BulkSetter); ok {
			if err := bs.SetMany(ctx, values); err != nil {
				b.Fatal(err)
			}
			continue
		}
		for u, v := range values {
			if err := kv.Set(ctx, u, v); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "accounts/s")
}

// benchItem is a typical one-to-one chat message.
func benchItem(i int) storage.Item {
	return storage.Item{
		When: base.Add(time.Duration(i) * time.Second),
		With: fmt.Sprintf("contact%d@example.net", i%10),
		Type: "message",
		Value: fmt.Appendf(nil, `<message xmlns="jabber:client" from="alice@example.org/phone" to="contact%d@example.net" type="chat" id="%08d">`+
			`<body>Message number %d, long enough to look like a real chat line.</body>`+
			`<origin-id xmlns="urn:xmpp:sid:0" id="%08d"/></message>`, i%10, i, i, i),
	}
}

// BenchArchiveAppend measures appends of chat messages with generated ids to
// one user's archive and reports appends/s.
func BenchArchiveAppend(b *testing.B, newDriver func(tb testing.TB) storage.Driver) {
	d := newDriver(b)
	b.Cleanup(func() { d.Close() })
	a := d.Archive("example.org", "archive")
	ctx := b.Context()
	i := 0
	start := time.Now()
	for b.Loop() {
		if _, err := a.Append(ctx, "alice", benchItem(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "appends/s")
}

// BenchArchiveAppendParallel measures appends from GOMAXPROCS goroutines,
// each to its own user, and reports appends/s.
func BenchArchiveAppendParallel(b *testing.B, newDriver func(tb testing.TB) storage.Driver) {
	d := newDriver(b)
	b.Cleanup(func() { d.Close() })
	a := d.Archive("example.org", "archive")
	ctx := b.Context()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		user := "user-" + rand.Text()
		i := 0
		for pb.Next() {
			if _, err := a.Append(ctx, user, benchItem(i)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
}

// BenchKeyValSetParallel measures KeyVal.Set from 64 goroutines, each
// setting its own user's value (users logging out: last activity, last
// presence), and reports sets/s.
func BenchKeyValSetParallel(b *testing.B, newDriver func(tb testing.TB) storage.Driver) {
	d := newDriver(b)
	b.Cleanup(func() { d.Close() })
	kv := d.KeyVal("example.org", "last")
	ctx := b.Context()
	value := []byte(`{"time":1763800000,"status":"gone"}`)
	b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		user := "user-" + rand.Text()
		for pb.Next() {
			if err := kv.Set(ctx, user, value); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sets/s")
}

// BenchArchiveFind loads n items into one user's archive (with Loader when
// the Archive implements it) next to a second user's n/10, then measures:
//
//   - Newest50: the newest 50 items (MAM's first page, XEP-0059 <before/>).
//   - Newest50Total: the same with the total count.
//   - MiddlePageAfter: 50 items after the id in the middle.
//   - MiddlePageBefore: 50 items before the id in the middle, newest first.
//   - WithNewest50: the newest 50 with one of 10 peers.
//   - StartRecent50: 50 items from a Start 100 items before the end.
//   - StartOld50: 50 items from a Start matching all but one item (the
//     first page of a catch-up from long ago).
//   - StartOldPageAfter: the same Start, 50 items after the middle id.
func BenchArchiveFind(b *testing.B, newDriver func(tb testing.TB) storage.Driver, n int) {
	d := newDriver(b)
	b.Cleanup(func() { d.Close() })
	a := d.Archive("example.org", "archive")
	ctx := b.Context()
	load := func(user string, n int) []string {
		items := make([]storage.Item, n)
		ids := make([]string, n)
		for i := range items {
			items[i] = benchItem(i)
			items[i].ID = rand.Text()
			ids[i] = items[i].ID
		}
		if l, ok := a.(Loader); ok {
			const batch = 20_000
			for i := 0; i < n; i += batch {
				if err := l.LoadForBench(ctx, user, items[i:min(i+batch, n)]); err != nil {
					b.Fatal(err)
				}
			}
			return ids
		}
		for _, it := range items {
			if _, err := a.Append(ctx, user, it); err != nil {
				b.Fatal(err)
			}
		}
		return ids
	}
	t0 := time.Now()
	ids := load("alice", n)
	load("bob", n/10)
	b.Logf("loaded %d items in %v", n+n/10, time.Since(t0).Round(time.Millisecond))
	if _, total, err := a.Find(ctx, "alice", storage.Query{Total: true, Limit: 1}); err != nil || total != n {
		b.Fatalf("after loading: total %d, %v; want %d", total, err, n)
	}
	mid := ids[n/2]
	cases := []struct {
		name string
		q    storage.Query
		want int
	}{
		{"Newest50", storage.Query{Limit: 50, Reverse: true}, 50},
		{"Newest50Total", storage.Query{Limit: 50, Reverse: true, Total: true}, 50},
		{"MiddlePageAfter", storage.Query{After: mid, Limit: 50}, 50},
		{"MiddlePageBefore", storage.Query{Before: mid, Limit: 50, Reverse: true}, 50},
		{"WithNewest50", storage.Query{With: "contact3@example.net", Limit: 50, Reverse: true}, 50},
		{"StartRecent50", storage.Query{Start: base.Add(time.Duration(n-100) * time.Second), Limit: 50}, 50},
		{"StartOld50", storage.Query{Start: base.Add(time.Second), Limit: 50}, 50},
		{"StartOldPageAfter", storage.Query{Start: base.Add(time.Second), After: mid, Limit: 50}, 50},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				items, _, err := a.Find(ctx, "alice", c.q)
				if err != nil {
					b.Fatal(err)
				}
				if len(items) != c.want {
					b.Fatalf("%d items, want %d", len(items), c.want)
				}
			}
		})
	}
}
