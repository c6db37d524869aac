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

// BenchmarkStorage runs every storagetest benchmark.
func BenchmarkStorage(b *testing.B) { storagetest.Bench(b, newDriver) }
