package memory_test

import (
	"testing"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/memory"
	"github.com/metronome-xmpp/metronome/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Driver { return memory.New() })
}

func newDriver(testing.TB) storage.Driver { return memory.New() }

func BenchmarkArchiveAppend(b *testing.B) { storagetest.BenchArchiveAppend(b, newDriver) }

func BenchmarkArchiveFind(b *testing.B) { storagetest.BenchArchiveFind(b, newDriver, 100_000) }
