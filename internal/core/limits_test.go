package core

import (
	"testing"
)

func TestConnectionsPerIP(t *testing.T) {
	s := &Server{ipConns: map[string]int{}}
	s.opts.Store(&Options{MaxConnsPerIP: 2})
	for i := 0; i < 2; i++ {
		if !s.acquireIP("192.0.2.1") {
			t.Fatalf("connection %d under the limit refused", i+1)
		}
	}
	if s.acquireIP("192.0.2.1") {
		t.Fatal("a third connection from one address was accepted")
	}
	if !s.acquireIP("192.0.2.2") {
		t.Fatal("another address was refused")
	}
	if !s.acquireIP("") {
		t.Fatal("loopback (empty key) must not be limited")
	}
	s.releaseIP("192.0.2.1")
	if !s.acquireIP("192.0.2.1") {
		t.Fatal("a released slot was not reused")
	}
	s.releaseIP("192.0.2.1")
	s.releaseIP("192.0.2.1")
	s.releaseIP("192.0.2.2")
	if len(s.ipConns) != 0 {
		t.Fatalf("counters leak: %v", s.ipConns)
	}
}
