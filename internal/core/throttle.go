package core

import (
	"sync"
	"time"
)

// throttle counts failed authentications per key in a sliding window.
type throttle struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	fails  map[string][]time.Time
}

func newThrottle(limit int, window time.Duration) *throttle {
	return &throttle{limit: limit, window: window, fails: map[string][]time.Time{}}
}

func (t *throttle) prune(key string, now time.Time) []time.Time {
	ts := t.fails[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > t.window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(t.fails, key)
		return nil
	}
	t.fails[key] = ts
	return ts
}

func (t *throttle) allowed(key string) bool {
	if t == nil || t.limit <= 0 || key == "" {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.prune(key, time.Now())) < t.limit
}

func (t *throttle) failed(key string) {
	if t == nil || t.limit <= 0 || key == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	t.fails[key] = append(t.prune(key, now), now)
	if len(t.fails) > 100000 { // bound memory under a distributed attack
		for k := range t.fails {
			t.prune(k, now)
		}
	}
}
