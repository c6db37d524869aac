package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/storage/sqlite"
)

// BenchmarkLookupsAfterOptimize measures the reads a login makes (a
// user's key/value and all of a user's map entries) on a database with
// 5,000 users whose planner statistics were gathered, as they are at
// start-up and hourly.
func BenchmarkLookupsAfterOptimize(b *testing.B) {
	ctx := context.Background()
	d := open(b, sqlite.Options{})
	kv, m := d.KeyVal("localhost", "accounts"), d.Map("localhost", "roster")
	vals := map[string][]byte{}
	for i := range 5000 {
		vals[fmt.Sprint("u", i)] = []byte("credentials")
	}
	if err := kv.(interface {
		SetMany(context.Context, map[string][]byte) error
	}).SetMany(ctx, vals); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		if err := m.Set(ctx, fmt.Sprint("u", i), "contact@example.org", []byte("item")); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.Optimize(ctx); err != nil {
		b.Fatal(err)
	}
	// The server's reads carry a deadline (module.StoreTimeout).
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, c := range []struct {
		name string
		read func(user string) error
	}{
		{"KeyVal.Get", func(u string) error { _, err := kv.Get(ctx, u); return err }},
		{"KeyVal.Get/deadline", func(u string) error { _, err := kv.Get(dctx, u); return err }},
		{"Map.All", func(u string) error { _, err := m.All(ctx, u); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if err := c.read(fmt.Sprint("u", i%5000)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
