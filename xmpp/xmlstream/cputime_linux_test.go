//go:build linux

package xmlstream

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// threadCPU returns the CPU time used by the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuClock measures the CPU time of a benchmark loop, which stays
// meaningful on a loaded machine where wall-clock ns/op does not. The
// benchmark goroutine is locked to its thread for the measurement.
type cpuClock struct {
	b     *testing.B
	start time.Duration
}

func startCPU(b *testing.B) *cpuClock {
	runtime.LockOSThread()
	return &cpuClock{b: b, start: threadCPU()}
}

// report adds cpu-ns/op and, given bytes per op, cpu-MB/s.
func (c *cpuClock) report(bytesPerOp int64) {
	d := threadCPU() - c.start
	runtime.UnlockOSThread()
	if c.b.N == 0 || d <= 0 {
		return
	}
	c.b.ReportMetric(float64(d.Nanoseconds())/float64(c.b.N), "cpu-ns/op")
	if bytesPerOp > 0 {
		c.b.ReportMetric(float64(bytesPerOp)*float64(c.b.N)/d.Seconds()/1e6, "cpu-MB/s")
	}
}
