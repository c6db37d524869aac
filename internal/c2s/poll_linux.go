package c2s

import (
	"errors"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// The poller: one epoll instance in which quiet bound sessions over a
// socket wait for input with no goroutine of their own (see idle.go);
// sessions over a ReadNotifier (WebSocket, BOSH) wait in the same table
// and are woken by their transport.
//
// A socket is registered with EPOLLONESHOT and level-triggered readiness:
// input that arrived before it was armed fires at once, each arming fires
// at most once, and a fired registration stays disabled (no events) while
// the session is active on its own goroutine. Whoever clears a session's
// parked flag (under mu) owns it and starts its goroutine: the poller on
// an event or a passed deadline, wake when its connection is closed
// (which takes a socket out of every epoll set with no event), park
// itself when the transport has input already. Arming happens inside
// syscall.RawConn.Control, which keeps the descriptor open meanwhile, so
// a descriptor number that a closed socket freed and a new one took is
// never armed for the wrong session.
type poller struct {
	epfd   int
	mu     sync.Mutex
	parked map[uint64]*Session
	seq    uint64
}

var (
	pollOnce sync.Once
	thePoll  *poller
)

// idlePoller returns the process's poller, or nil if epoll is unavailable.
func idlePoller() *poller {
	pollOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			slog.Default().Warn("c2s: no epoll: idle sessions keep a goroutine each", "err", err)
			return
		}
		thePoll = &poller{epfd: fd, parked: map[uint64]*Session{}}
		go thePoll.run()
	})
	return thePoll
}

var (
	errParkedElsewhere = errors.New("c2s: session taken over while parking")
	errReadable        = errors.New("c2s: input arrived while parking")
)

const (
	epollFlags = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT
	// sweepEvery is how often parked sessions' read deadlines are checked:
	// idle pings and ping timeouts are this precise.
	sweepEvery = time.Second
)

// park leaves s waiting for input. On success the poller owns s.
// errReadable means input is there already: the caller goes on reading.
// errParkedElsewhere means the session was woken while parking (its
// connection was closed): its new owner handles it.
func (p *poller) park(s *Session) error {
	p.mu.Lock()
	if s.ptoken == 0 {
		p.seq++
		s.ptoken = p.seq
	}
	tok := s.ptoken
	p.parked[tok] = s
	s.pparked = true
	// registered is only touched under p.mu: once armed, the session may
	// be woken and parked again before Control returns.
	op := syscall.EPOLL_CTL_MOD
	if !s.registered {
		op = syscall.EPOLL_CTL_ADD
		s.registered = true
	}
	if s.notifier != nil && s.wakeFn == nil {
		s.wakeFn = func() { p.wake(s) }
	}
	p.mu.Unlock()
	if s.notifier != nil {
		// A framed transport tells when its next message arrives.
		if s.notifier.NotifyReadable(s.wakeFn) {
			return nil
		}
		if p.take(s) {
			return errReadable
		}
		return errParkedElsewhere
	}
	var cerr error
	err := s.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: epollFlags, Fd: int32(tok), Pad: int32(tok >> 32)}
		cerr = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
		switch {
		case cerr == syscall.ENOENT && op == syscall.EPOLL_CTL_MOD:
			cerr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		case cerr == syscall.EEXIST && op == syscall.EPOLL_CTL_ADD:
			cerr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		}
	})
	if err == nil && cerr == nil {
		return nil
	}
	if err == nil {
		err = cerr
	}
	if !p.take(s) {
		return errParkedElsewhere
	}
	return err
}

// take removes s from the parked sessions and reports whether it was
// there (the caller then owns it).
func (p *poller) take(s *Session) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.takeLocked(s)
}

func (p *poller) takeLocked(s *Session) bool {
	if !s.pparked {
		return false
	}
	s.pparked = false
	delete(p.parked, s.ptoken)
	return true
}

// wake starts the goroutine of s if it is parked: its connection was
// closed, or its transport has input.
func (p *poller) wake(s *Session) {
	if p.take(s) {
		s.rd.woke = true
		go s.run()
	}
}

// forget drops a session whose stream ended. A session resumed on a new
// connection (XEP-0198) is registered again when it parks.
func (p *poller) forget(s *Session) {
	p.mu.Lock()
	p.takeLocked(s)
	s.registered = false
	p.mu.Unlock()
}

func (p *poller) run() {
	events := make([]syscall.EpollEvent, 256)
	next := time.Now().Add(sweepEvery)
	for {
		wait := int(time.Until(next) / time.Millisecond)
		n, err := syscall.EpollWait(p.epfd, events, max(wait, 0))
		if err != nil && err != syscall.EINTR {
			slog.Default().Error("c2s: epoll_wait failed", "err", err)
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			p.mu.Lock()
			for _, ev := range events[:n] {
				tok := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
				if s := p.parked[tok]; s != nil && p.takeLocked(s) {
					s.rd.woke = true // the first read does not block
					go s.run()
				}
			}
			p.mu.Unlock()
		}
		if now := time.Now(); !now.Before(next) {
			p.sweep(now)
			next = now.Add(sweepEvery)
		}
	}
}

// sweep starts the parked sessions whose read deadline passed.
func (p *poller) sweep(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.parked {
		if now.Before(s.rd.deadline()) {
			continue
		}
		p.takeLocked(s)
		s.timedOut = true
		go s.run()
	}
}
