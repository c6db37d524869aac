package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/sqlite"
	"github.com/metronome-xmpp/metronome/storage/storagetest"
)

func open(tb testing.TB, opts sqlite.Options) *sqlite.Driver {
	tb.Helper()
	d, err := sqlite.OpenOptions(filepath.Join(tb.TempDir(), "metronome.db"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func newDriver(tb testing.TB) storage.Driver { return open(tb, sqlite.Options{}) }

func newDriverFull(tb testing.TB) storage.Driver {
	return open(tb, sqlite.Options{Synchronous: "full"})
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Driver { return newDriver(t) })
}

func TestConformanceSynchronousFull(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storagetest.Run(t, func(t *testing.T) storage.Driver { return newDriverFull(t) })
}

func BenchmarkArchiveAppend(b *testing.B) { storagetest.BenchArchiveAppend(b, newDriver) }

func BenchmarkArchiveAppendSynchronousFull(b *testing.B) {
	storagetest.BenchArchiveAppend(b, newDriverFull)
}

func BenchmarkArchiveAppendParallel(b *testing.B) {
	storagetest.BenchArchiveAppendParallel(b, newDriver)
}

// BenchmarkArchiveFind covers Find of the newest 50 of 100,000 items, a
// middle page by After and Before ids, and more (see storagetest).
func BenchmarkArchiveFind(b *testing.B) { storagetest.BenchArchiveFind(b, newDriver, 100_000) }

func BenchmarkKeyValSetMany(b *testing.B) { storagetest.BenchKeyValSetMany(b, newDriver) }

// BenchmarkKeyValSetParallel: concurrent single sets share the group
// commit, with synchronous = full as the daemon runs.
func BenchmarkKeyValSetParallel(b *testing.B) { storagetest.BenchKeyValSetParallel(b, newDriverFull) }
