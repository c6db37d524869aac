package c2s

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// Idle sessions and their cost
//
// Most sessions are idle most of the time. A goroutine blocked in
// tls.Conn.Read would hold a read buffer, and the stack it grew while
// processing stanzas (8 KiB after a TLS read, routing and a TLS write).
// So a bound session in a conversation waits for input with a readiness
// wait on the socket (syscall.RawConn.Read: no read, no buffer), then
// reads and processes stanzas on the same goroutine until the decoder
// returns xmlstream.ErrWouldBlock (every byte read is consumed and the
// transport holds nothing more). A session silent for parkAfter gives up
// its goroutine, and with it the grown stack: its socket waits in one
// epoll instance shared by all quiet sessions (the poller,
// poll_linux.go), which starts a new goroutine for it when bytes arrive,
// and sweeps their read deadlines (idle pings) once a second.
//
// (Until 2026-11-22 an active session waited on a goroutine of its own
// with a 2 KiB stack and handed each burst to a pool of reader
// goroutines: two goroutine switches per stanza, for memory that only
// sessions active in the last parkAfter held. Reading on the waiting
// goroutine cut the server's user-space cycles per chat message by a
// fifth; memory per idle session did not change.)
//
// "The transport holds nothing more" needs care with TLS: crypto/tls may
// keep data it read from the socket but did not return yet, where no
// readiness wait would see it. Two things make that state observable:
//
//   - recordConn, under the tls.Conn, never returns bytes past the end of
//     the TLS record being read (it keeps the rest itself), so crypto/tls
//     never holds raw bytes beyond the record it decrypts;
//   - deadlineReader notes whether the last read filled the caller's
//     buffer: if it did not, crypto/tls returned all the plaintext of that
//     record.

// recordConn is the TCP connection under a tls.Conn; see above.
type recordConn struct {
	net.Conn
	left  int     // bytes of the current record's body still to return
	hdr   int     // bytes of the next record's 5-byte header seen so far
	hlen  [2]byte // its length field
	stash []byte  // bytes read past the current record, returned first
	err   error   // read error to return once stash is empty

	// nonblock makes the next read from the socket return
	// errSockWouldBlock rather than wait when there is nothing to read.
	// A deadline in the past cannot do that: Go fails such a read before
	// trying it.
	nonblock bool
	raw      syscall.RawConn
	rbuf     []byte // the buffer of the read in progress, for readFn
	rn       int
	rerr     error
	readFn   func(uintptr) bool
}

// errSockWouldBlock is a temporary net.Error, which crypto/tls passes on
// without making it permanent.
type sockWouldBlock struct{}

func (sockWouldBlock) Error() string   { return "c2s: socket read would block" }
func (sockWouldBlock) Timeout() bool   { return true }
func (sockWouldBlock) Temporary() bool { return true }

var errSockWouldBlock net.Error = sockWouldBlock{}

// TLSServer starts a server-side TLS connection over raw, with a
// recordConn under it when raw is a socket: for STARTTLS here, and for the
// core's direct TLS listeners (XEP-0368), whose connections Serve expects
// with directTLS.
func TLSServer(raw net.Conn, cfg *tls.Config) *tls.Conn {
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return tls.Server(raw, cfg)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return tls.Server(raw, cfg)
	}
	r := &recordConn{Conn: raw, raw: rc}
	r.readFn = r.readNow
	return tls.Server(r, cfg)
}

// readNow is the syscall.RawConn.Read callback of a non-blocking read.
func (r *recordConn) readNow(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), r.rbuf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			r.rn, r.rerr = 0, errSockWouldBlock
		case err != nil:
			r.rn, r.rerr = 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
		case n == 0:
			r.rn, r.rerr = 0, io.EOF
		default:
			r.rn, r.rerr = n, nil
		}
		return true
	}
}

// sockRead reads from the socket, without waiting if r.nonblock.
func (r *recordConn) sockRead(p []byte) (int, error) {
	if !r.nonblock {
		return r.Conn.Read(p)
	}
	r.nonblock = false
	r.rbuf = p
	err := r.raw.Read(r.readFn)
	r.rbuf = nil
	if err != nil {
		return 0, err
	}
	return r.rn, r.rerr
}

func (r *recordConn) Read(p []byte) (int, error) {
	if len(r.stash) > 0 {
		n := r.cut(p[:copy(p, r.stash)])
		r.stash = r.stash[n:]
		if len(r.stash) == 0 {
			r.stash = nil
		}
		return n, nil
	}
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.sockRead(p)
	if n > 0 {
		if c := r.cut(p[:n]); c < n {
			r.stash = append([]byte(nil), p[c:n]...)
			r.err, err = err, nil
			n = c
		}
	}
	return n, err
}

// cut advances the record framing over b and returns the length of the
// prefix of b that ends at or before the end of the first record that
// ends within b.
func (r *recordConn) cut(b []byte) int {
	for i := 0; i < len(b); {
		if r.left > 0 {
			k := min(r.left, len(b)-i)
			r.left -= k
			i += k
			if r.left == 0 {
				return i
			}
			continue
		}
		// A record header: type(1) version(2) length(2).
		if r.hdr >= 3 {
			r.hlen[r.hdr-3] = b[i]
		}
		r.hdr++
		i++
		if r.hdr == 5 {
			r.hdr = 0
			r.left = int(r.hlen[0])<<8 | int(r.hlen[1])
			if r.left == 0 {
				return i
			}
		}
	}
	return len(b)
}

// buffered reports whether the record layer holds bytes of the peer.
func (r *recordConn) buffered() bool { return len(r.stash) > 0 || r.err != nil }

// rawConn returns the socket of the session's TLS connection for
// readiness waits, or nil when it has none: without TLS (allowed by
// configuration only) or on a net.Pipe in tests, the session reads the
// plain way.
func (s *Session) rawConn() syscall.RawConn {
	tc, ok := s.currentConn().(*tls.Conn)
	if !ok {
		return nil
	}
	rc, ok := tc.NetConn().(*recordConn)
	if !ok {
		return nil
	}
	s.rec = rc
	return rc.raw
}

// pending reports whether a read could return data without waiting for
// the socket (or, over a ReadNotifier, for the next message).
func (s *Session) pending() bool {
	if s.notifier != nil {
		return s.rd.woke || s.notifier.Buffered()
	}
	return s.rd.woke || s.rd.full || s.rec != nil && s.rec.buffered()
}

// serveBound runs a bound session until its stream ends, then calls end
// with the error that ended it. With a TLS connection over a socket, or a
// ReadNotifier transport, the session is served by run and the poller;
// otherwise (no TLS, as configuration allows, or a connection that is not
// a socket) it reads on a goroutine of its own.
func (s *Session) serveBound(ctx context.Context, dec *xmlstream.Decoder, end func(error)) {
	raw := s.rawConn()
	notifier, _ := s.currentConn().(ReadNotifier)
	p := idlePoller()
	if p == nil || raw == nil && notifier == nil {
		go func() { end(s.stanzaLoop(ctx, dec)) }()
		return
	}
	s.ctx, s.dec, s.end, s.raw, s.notifier = ctx, dec, end, raw, notifier
	s.readyFn = s.ready
	s.parkAfter = s.core.C2SConfig().ParkAfter
	if s.parkAfter <= 0 {
		s.parkAfter = defaultParkAfter
	}
	dec.SetPending(s.pending)
	go s.run()
}

// defaultParkAfter is how long a session over a socket must be silent
// before its waiting goroutine hands it to the poller (Config.ParkAfter).
// A session in a conversation keeps the goroutine: waking it through the
// runtime's own network poller costs less than through a second epoll
// instance.
const defaultParkAfter = 10 * time.Second

// errQuiet: the session was silent for its parkAfter.
var errQuiet = errors.New("c2s: quiet session")

// run is the session's goroutine while it is active: it reads and
// processes its stanzas, and between bursts it waits for input (a
// readiness wait, no read buffer). A session silent for parkAfter, and a
// ReadNotifier session after each burst, is parked in the poller and the
// goroutine ends; the poller starts a new one when input arrives or a
// deadline passes.
func (s *Session) run() {
	for {
		if s.timedOut {
			s.timedOut = false
			rd := s.rd
			rd.set = time.Time{}
			if !time.Now().Before(rd.deadline()) && !s.rd.onIdle() {
				s.stop(rd.timeoutErr(os.ErrDeadlineExceeded))
				return
			}
		} else {
			// Read first: the decoder may hold input already
			// (stanzas pipelined after the bind request).
			if err := s.stanzaLoop(s.ctx, s.dec); !errors.Is(err, xmlstream.ErrWouldBlock) {
				s.stop(err)
				return
			}
			if s.pending() {
				s.rd.woke = true
				continue
			}
		}
		err := errQuiet
		if s.notifier == nil {
			err = s.waitReadable()
		}
		if err == nil {
			s.rd.woke = true // the next read does not block
			continue
		}
		if !errors.Is(err, errQuiet) {
			s.stop(err)
			return
		}
		if tc, ok := s.currentConn().(*tls.Conn); ok {
			releaseTLSBuffers(tc, true) // quiet: nothing is buffered (see pending)
		}
		switch err := idlePoller().park(s); {
		case err == nil, errors.Is(err, errParkedElsewhere):
			return // the poller (or whoever woke the session) has it
		case errors.Is(err, errReadable):
			s.rd.woke = true
		default:
			s.stop(err)
			return
		}
	}
}

// stop ends the session's stream on its goroutine.
func (s *Session) stop(err error) {
	idlePoller().forget(s)
	s.end(err)
}

// ready is the syscall.RawConn.Read callback of waitReadable; it reads
// nothing. RawConn.Read first clears the socket's recorded readiness, so
// the first call must look at the socket itself (a peek: input may have
// arrived before); if there is nothing, RawConn.Read waits for input
// arriving after that, and the second call can trust it.
func (s *Session) ready(fd uintptr) bool {
	if s.polled {
		s.polled = false
		return true
	}
	var peek [1]byte
	for {
		_, _, err := syscall.Recvfrom(int(fd), peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			s.polled = true
			return false // wait for readiness, then come back
		default:
			return true // data, an error or EOF: let the read see it
		}
	}
}

// waitReadable waits until the socket has data (or an error or EOF),
// keeping the read deadlines and idle pings of deadlineReader; errQuiet
// once the session has been silent for s.parkAfter.
func (s *Session) waitReadable() error {
	rd := s.rd
	for {
		dl := rd.deadline()
		if quiet := s.LastActive().Add(s.parkAfter); quiet.Before(dl) {
			dl = quiet
		}
		// Moving a deadline costs a timer update: one that lags by up to
		// deadlineSlack fires early, and the wait goes on.
		if dl.Before(rd.set) || dl.Sub(rd.set) > deadlineSlack {
			_ = s.currentConn().SetReadDeadline(dl)
			rd.set = dl
		}
		s.polled = false
		err := s.raw.Read(s.readyFn)
		if err == nil {
			return nil
		}
		if isTimeout(err) {
			rd.set = time.Time{}
			now := time.Now()
			if now.Before(rd.deadline()) {
				if !now.Before(s.LastActive().Add(s.parkAfter)) {
					return errQuiet
				}
				continue
			}
			if s.rd.onIdle() {
				continue
			}
			return rd.timeoutErr(err)
		}
		return err
	}
}

// closeConn closes the session's connection, and starts the session's
// goroutine if it was parked in the poller: closing a socket takes it out
// of the epoll set without an event, and the next read sees the close.
func (s *Session) closeConn() {
	_ = s.currentConn().Close()
	if p := idlePoller(); p != nil {
		p.wake(s)
	}
}

// writers are the goroutines that write the queues of sessions with
// something to send (see pool); set in init, as writeLoop refers to it.
var writers *pool

func init() { writers = newPool((*Session).writeLoop) }
