//go:build !linux

package xmlstream

import "testing"

type cpuClock struct{}

func startCPU(b *testing.B) *cpuClock { return &cpuClock{} }
func (c *cpuClock) report(int64)      {}
