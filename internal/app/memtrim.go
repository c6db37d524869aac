package app

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory trimming
//
// Go's garbage collector lets the heap grow to twice the live data before
// it collects (GOGC=100), and gives freed pages back to the system only
// gradually. After a burst — thousands of logins, each with its TLS
// handshake garbage — a server that then goes quiet keeps that peak
// resident although most sessions are idle. The trimmer watches the
// runtime's own counters and, when the server is quiet and holds much
// more memory than its live data, runs one collection and returns the
// free pages at once (debug.FreeOSMemory): the resident size then follows
// the live data, which is what an operator measures per idle session. It
// never runs while the server is busy, so it costs nothing under load.

const (
	trimEvery = 10 * time.Second
	// quiet: allocated less than this fraction of the live heap since the
	// previous check.
	trimQuiet = 0.125
	// worth it: free, unreturned or unused heap memory above this fraction
	// of the live heap, and above trimMin.
	trimSlack = 0.25
	trimMin   = 8 << 20
)

var trimSamples = []metrics.Sample{
	{Name: "/gc/heap/allocs:bytes"},
	{Name: "/gc/heap/live:bytes"},
	{Name: "/memory/classes/heap/free:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
}

// trimMemory runs until ctx ends.
func trimMemory(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	var lastAllocs uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(trimSamples)
		allocs, live := trimSamples[0].Value.Uint64(), trimSamples[1].Value.Uint64()
		slack := trimSamples[2].Value.Uint64() + trimSamples[3].Value.Uint64()
		allocated := allocs - lastAllocs
		lastAllocs = allocs
		if float64(allocated) > trimQuiet*float64(live) || slack < trimMin || float64(slack) < trimSlack*float64(live) {
			continue
		}
		start := time.Now()
		debug.FreeOSMemory()
		metrics.Read(trimSamples)
		lastAllocs = trimSamples[0].Value.Uint64()
		log.Debug("memory trimmed", "slack_before", slack, "live", trimSamples[1].Value.Uint64(), "took", time.Since(start))
	}
}
