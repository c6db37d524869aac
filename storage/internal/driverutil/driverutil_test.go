package driverutil

import (
	"errors"
	"testing"
	"testing/fstest"
	"time"

	"github.com/metronome-xmpp/metronome/storage"
)

func TestMigrations(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_more.sql":  {Data: []byte("two")},
		"m/0001_init.sql":  {Data: []byte("one")},
		"m/0010_later.sql": {Data: []byte("ten")},
		"m/README.md":      {Data: []byte("ignored")},
	}
	ms, err := Migrations(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, m := range ms {
		got = append(got, m.Version)
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 10 || ms[2].SQL != "ten" || ms[0].Name != "0001_init.sql" {
		t.Errorf("migrations: %+v", ms)
	}
	for name, bad := range map[string]fstest.MapFS{
		"duplicate": {"m/0001_a.sql": {}, "m/1_b.sql": {}},
		"no number": {"m/init.sql": {}},
		"zero":      {"m/0000_init.sql": {}},
	} {
		if _, err := Migrations(bad, "m"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestTime(t *testing.T) {
	in := time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.FixedZone("X", 3600))
	if got := Time(Millis(in)); !got.Equal(in.Truncate(time.Millisecond)) || got.Location() != time.UTC {
		t.Errorf("round trip of %v: %v", in, got)
	}
	if w := When(time.Time{}); w.IsZero() || time.Since(w) > time.Minute {
		t.Errorf("When(zero) = %v", w)
	}
}

func TestChecks(t *testing.T) {
	if err := CheckFind(storage.Query{Limit: -1}); !errors.Is(err, storage.ErrInvalidQuery) {
		t.Error(err)
	}
	if err := CheckFind(storage.Query{Limit: 1, Truncate: 2, IDs: []string{}}); err != nil {
		t.Error(err)
	}
	if err := CheckDeleteAll(storage.Query{Start: time.Now(), With: "x", Reverse: true, Total: true}); err != nil {
		t.Error(err)
	}
	if err := CheckDeleteAll(storage.Query{IDs: []string{}}); !errors.Is(err, storage.ErrInvalidQuery) {
		t.Error(err)
	}
	if a, b := NewID(), NewID(); a == b || len(a) != 26 {
		t.Errorf("NewID: %q %q", a, b)
	}
}
