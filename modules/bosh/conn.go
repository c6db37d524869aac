package bosh

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/metronome-xmpp/metronome/internal/c2s"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// conn is the connection the c2s session runs over (c2s.BOSHFraming):
// Read returns what the client's requests carried, in rid order, with an
// <open/> at the creation and at each restart; Write takes the stream's
// elements, which the session turns into response bodies. Neither ever
// waits for the client: Write queues (bounded by limits.maxOut), and
// Read waits only for the next request or its deadline.
type conn struct {
	s             *session
	local, remote net.Addr
}

// errTooMuch ends a stream whose client does not collect its responses.
var errTooMuch = errors.New("bosh: too much data waiting for the client")

func addr(s string) net.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return &net.TCPAddr{}
}

// Read implements net.Conn.
func (c *conn) Read(p []byte) (int, error) {
	s := c.s
	for {
		s.mu.Lock()
		if len(s.in) > 0 {
			n := copy(p, s.in)
			s.in = s.in[n:]
			if len(s.in) == 0 {
				s.in = nil // an idle session holds no buffer
			}
			s.mu.Unlock()
			return n, nil
		}
		if s.inEOF {
			s.mu.Unlock()
			return 0, io.EOF
		}
		dl := s.rdl
		s.mu.Unlock()
		var expired <-chan time.Time
		var t *time.Timer
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			t = time.NewTimer(d)
			expired = t.C
		}
		select {
		case <-s.inReady:
			if t != nil {
				t.Stop()
			}
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// NotifyReadable implements c2s.ReadNotifier: the session waits with no
// goroutine of its own between requests.
func (c *conn) NotifyReadable(f func()) bool {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.in) > 0 || s.inEOF {
		return false
	}
	s.notify = f
	return true
}

// Buffered implements c2s.ReadNotifier.
func (c *conn) Buffered() bool {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.in) > 0
}

// Write implements net.Conn: p holds whole top-level elements (an element
// cut short is kept for the next Write).
func (c *conn) Write(p []byte) (int, error) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ended {
		return 0, net.ErrClosed
	}
	b := p
	if len(s.partial) > 0 {
		b = append(s.partial, p...)
		s.partial = nil
	}
	rest, _ := c2s.SplitElements(b, func(el []byte) error {
		if !s.ended {
			s.fromStreamLocked(el)
		}
		return nil
	})
	if len(rest) > 0 && !s.ended {
		s.partial = append([]byte(nil), rest...)
	}
	if s.ended {
		return len(p), nil
	}
	if len(s.out) > s.lim.maxOut {
		s.logger().Warn("BOSH client does not collect its responses, session closed", "queued", len(s.out))
		s.failLocked(condPolicyViolation)
		return 0, errTooMuch
	}
	s.deliverLocked()
	return len(p), nil
}

// Close implements net.Conn: the stream has ended.
func (c *conn) Close() error {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.ended {
		// Closed without <close/>: the stream failed (write error,
		// server stopping).
		if len(s.streamErr) == 0 && len(s.out) == 0 {
			s.failLocked(condRemoteConnFailed)
		} else {
			s.streamClosedLocked()
		}
	}
	return nil
}

// LocalAddr implements net.Conn.
func (c *conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr implements net.Conn: the client's address at the creation
// request (after the HTTP server resolved trusted proxies).
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline implements net.Conn.
func (c *conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.Conn.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.s.mu.Lock()
	c.s.rdl = t
	c.s.mu.Unlock()
	c.s.wakeReader() // a blocked Read re-reads the deadline
	return nil
}

// SetWriteDeadline implements net.Conn: writes never wait.
func (c *conn) SetWriteDeadline(time.Time) error { return nil }

// parseElement parses one element the stream wrote.
func parseElement(el []byte) (*stanza.Element, error) {
	return xmlstream.ParseNS(el, stanza.NSClient)
}
