package c2s

import (
	"sync"
	"sync/atomic"
	"time"
)

// pool is a set of goroutines that run fn for one session at a time:
// the writers (writeLoop) of sessions with something to send. Their
// stacks have already grown to what a TLS write needs; a new goroutine
// starts with 2 KiB and copies its stack twice on its first write (4 %
// of the server's CPU at 1,000 msg/s when each burst had a new one).
//
// An idle worker waits on a plain channel receive. A timer per wait
// (select on the channel and the timer's) put the runtime's timer and
// channel locks on every burst. Instead one sweeper per pool ends, every
// workerIdle, as many workers as stayed idle through the whole period.
type pool struct {
	ch      chan *Session
	fn      func(*Session)
	idle    atomic.Int32 // workers waiting for a session
	minIdle atomic.Int32 // fewest waiting since the last sweep
	sweeper sync.Once
	period  time.Duration // of the sweeps: workerIdle
}

const workerIdle = 30 * time.Second

func newPool(fn func(*Session)) *pool {
	return &pool{ch: make(chan *Session), fn: fn, period: workerIdle}
}

// run hands s to an idle worker, or to a new one if none is idle.
func (p *pool) run(s *Session) {
	select {
	case p.ch <- s:
	default:
		p.sweeper.Do(func() { go p.sweep() })
		go p.work(s)
	}
}

func (p *pool) work(s *Session) {
	for {
		p.fn(s)
		p.idle.Add(1)
		s = <-p.ch
		n := p.idle.Add(-1)
		if s == nil {
			return // retired by sweep
		}
		for m := p.minIdle.Load(); n < m && !p.minIdle.CompareAndSwap(m, n); m = p.minIdle.Load() {
		}
	}
}

// sweep retires the workers that were not needed in each period.
func (p *pool) sweep() {
	t := time.NewTicker(p.period)
	defer t.Stop()
	for range t.C {
		spare := p.minIdle.Swap(p.idle.Load())
		for ; spare > 0; spare-- {
			select {
			case p.ch <- nil:
			default:
				spare = 0 // all busy now
			}
		}
	}
}
