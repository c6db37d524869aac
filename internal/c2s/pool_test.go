package c2s

import (
	"sync"
	"testing"
	"time"
)

// TestPoolRetiresIdleWorkers checks that a pool runs every session it is
// given, grows while all its workers are busy, and ends the workers that
// stayed idle through a sweep period.
func TestPoolRetiresIdleWorkers(t *testing.T) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	ran := make(chan *Session, 8)
	p := newPool(func(s *Session) {
		ran <- s
		<-release
		wg.Done()
	})
	p.period = 20 * time.Millisecond
	sessions := make([]*Session, 4)
	for i := range sessions {
		sessions[i] = &Session{}
		wg.Add(1)
		p.run(sessions[i]) // all workers busy: each run starts one
	}
	seen := map[*Session]bool{}
	for range sessions {
		seen[<-ran] = true
	}
	if len(seen) != len(sessions) {
		t.Fatalf("%d distinct sessions ran, want %d", len(seen), len(sessions))
	}
	close(release)
	wg.Wait()
	waitIdle := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for p.idle.Load() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d idle workers, want %d", p.idle.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitIdle(4)
	// An idle worker takes new work rather than a new goroutine starting.
	wg.Add(1)
	p.run(sessions[0])
	if s := <-ran; s != sessions[0] {
		t.Fatalf("ran %p, want %p", s, sessions[0])
	}
	wg.Wait()
	waitIdle(0) // then, with nothing to do, all are retired
}
