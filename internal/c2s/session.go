// Package c2s runs client-to-server streams (RFC 6120 §4–§7): stream
// headers, STARTTLS, SASL, resource binding and the legacy session
// establishment, then hands every stanza of a bound session to the core.
// It is transport-agnostic above the net.Conn it is given: TCP with
// STARTTLS, direct TLS (XEP-0368), WebSocket (RFC 7395 framing, see
// framing.go and modules/websocket), and BOSH (modules/bosh).
//
// A session is read by one goroutine at a time: its own during
// negotiation; once bound, another that reads its bursts of input and
// waits between them, and none once it has been quiet for a while
// (idle.go). A writer goroutine (from a pool) runs while there is
// something to write and coalesces queued stanzas into a single write.
// Producers never block: a session whose outbound queue exceeds its limit
// is closed (a slow consumer). Stream management (XEP-0198) is in sm.go.
package c2s

import (
	"context"
	"github.com/metronome-xmpp/metronome/internal/metrics"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

var sessionSeq atomic.Uint64

// Session is one client stream. After binding it implements module.Session.
type Session struct {
	id   string
	core Core

	cmu     sync.Mutex // guards conn: replaced by the reader at STARTTLS, read by other goroutines
	conn    net.Conn   // current connection (TLS after STARTTLS)
	remote  string
	secure  bool
	framing Framing
	host    Host // set once the stream header named a served host

	full     jid.JID // set once bound (before the session is published)
	authUser string  // canonical localpart after SASL
	sasl     saslFlags

	started    time.Time
	lastActive atomic.Int64 // unix nanos

	// Outbound queue. wq is appended to under wmu; a writer goroutine runs
	// only while there is something to write. fmu serialises flushes and
	// the final close, so that no goroutine closes the connection while
	// another is still writing to it.
	fmu      sync.Mutex
	wmu      sync.Mutex
	wq, ws   *wbuffer // queue being filled; spare (nil while idle)
	writing  bool     // bound: writes are asynchronous
	wactive  bool     // a writer goroutine runs
	closing  bool     // no more stanzas accepted; close after flush
	inactive bool     // XEP-0352: the client said <inactive/>
	held     []byte   // stanzas held back while inactive (csi.go)
	wclosed  chan struct{}
	// Stream management (sm.go), under wmu.
	sm          *smState
	detached    bool          // no connection: stanzas go to the SM queue only
	parked      bool          // detached and the reader stopped: waiting for <resume/>
	ended       bool          // ended for good (no resumption)
	takeover    chan struct{} // a resumption waits for this session to park
	expiry      *time.Timer   // ends a parked session
	resumedInto *Session      // negotiation only: the session this stream resumed
	closeOnce   sync.Once
	maxQueue    int

	scratch event.Event // reused by the core for each stanza this session sends

	// Reading (see idle.go): set by the reading goroutine before the
	// session is bound, then by the goroutine that serves it, one at a
	// time.
	rd        *deadlineReader
	rec       *recordConn // under the tls.Conn, when there is one
	raw       syscall.RawConn
	notifier  ReadNotifier // a framed transport's, instead of raw
	wakeFn    func()       // the notifier's callback
	ctx       context.Context
	dec       *xmlstream.Decoder
	end       func(error) // called once the stream ended
	readyFn   func(uintptr) bool
	polled    bool
	timedOut  bool          // the poller woke the session for its read deadline
	parkAfter time.Duration // silence before the session is parked in the poller
	// In the poller (poll_linux.go), under its mu: the session's token,
	// whether its socket is registered, and whether it waits there.
	ptoken     uint64
	registered bool
	pparked    bool
	// Write deadline last set (unix nanos; flushes hold fmu).
	wdeadline int64

	mu         sync.Mutex
	presence   *stanza.Element
	available  bool
	priority   int
	interested bool
	values     map[string]any
}

func newSession(conn net.Conn, core Core, secure bool, maxQueue int) *Session {
	id := strconv.FormatUint(sessionSeq.Add(1), 36)
	s := &Session{
		id:       id,
		core:     core,
		conn:     conn,
		remote:   conn.RemoteAddr().String(),
		secure:   secure,
		started:  time.Now(),
		wclosed:  make(chan struct{}),
		maxQueue: maxQueue,
	}
	s.lastActive.Store(s.started.UnixNano())
	return s
}

// ScratchEvent is an event the core reuses for the stanzas this session
// sends; only the session's reader goroutine may use it.
func (s *Session) ScratchEvent() *event.Event { return &s.scratch }

// ID implements module.Session.
func (s *Session) ID() string { return s.id }

// JID is the bound full JID (zero before binding).
func (s *Session) JID() jid.JID { return s.full }

// Kind implements event.Origin.
func (s *Session) Kind() string { return "c2s" }

// Host is the session's virtual host name.
func (s *Session) Host() string {
	if s.host == nil {
		return ""
	}
	return s.host.Name()
}

// Logger returns the session's logger.
// The logger is built at each call rather than kept: most sessions never
// log after binding, and a kept logger costs every session half a KiB.
func (s *Session) Logger() *slog.Logger {
	args := make([]any, 0, 8)
	args = append(args, "session", s.id, "remote", s.remote)
	if s.host != nil {
		args = append(args, "host", s.host.Name())
	}
	if !s.full.IsZero() {
		args = append(args, "jid", s.full.String())
	} else if s.authUser != "" {
		args = append(args, "user", s.authUser)
	}
	return s.core.Logger().With(args...)
}

// Started implements module.Session.
func (s *Session) Started() time.Time { return s.started }

// LastActive implements module.Session.
func (s *Session) LastActive() time.Time { return time.Unix(0, s.lastActive.Load()) }

// Secure implements module.Session.
func (s *Session) Secure() bool {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.secure
}

// RemoteAddr implements module.Session.
func (s *Session) RemoteAddr() string {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.remote
}

// Presence implements module.Session.
func (s *Session) Presence() *stanza.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.presence
}

// SetPresence records the client's last broadcast presence, its priority
// and availability.
func (s *Session) SetPresence(p *stanza.Element) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.presence = p
	s.available = p != nil && p.Type() == ""
	s.priority = 0
	if p != nil {
		if v, err := strconv.Atoi(p.ChildText("", "priority")); err == nil && v >= -128 && v <= 127 {
			s.priority = v
		}
	}
}

// Available implements module.Session.
func (s *Session) Available() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.available
}

// Priority implements module.Session.
func (s *Session) Priority() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.priority
}

// Interested implements module.Session.
func (s *Session) Interested() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interested
}

// SetInterested implements module.Session.
func (s *Session) SetInterested(v bool) {
	s.mu.Lock()
	s.interested = v
	s.mu.Unlock()
}

// Value implements module.Session.
func (s *Session) Value(key string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.values[key]
}

// SetValue implements module.Session.
func (s *Session) SetValue(key string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = make(map[string]any)
	}
	if v == nil {
		delete(s.values, key)
	} else {
		s.values[key] = v
	}
}

// wbuffer is an outbound buffer. Idle sessions hold none: buffers come
// from a shared pool when there is something to write and go back when
// the queue is empty.
type wbuffer struct{ b []byte }

var wbufPool = sync.Pool{New: func() any { return &wbuffer{b: make([]byte, 0, 2048)} }}

// maxKeptBuf bounds the buffers returned to the pool: a burst's large
// buffer is left to the garbage collector.
const maxKeptBuf = 64 << 10

func putWBuf(w *wbuffer) {
	if w != nil && cap(w.b) <= maxKeptBuf {
		w.b = w.b[:0]
		wbufPool.Put(w)
	}
}

// queueLocked returns the buffer to append to (s.wmu held).
func (s *Session) queueLocked() *wbuffer {
	if s.wq == nil {
		s.wq = wbufPool.Get().(*wbuffer)
	}
	return s.wq
}

// kickLocked reports whether the caller must start a writer goroutine
// (s.wmu held): only once bound, only if none runs.
func (s *Session) kickLocked() bool {
	if !s.writing || s.wactive {
		return false
	}
	s.wactive = true
	return true
}

// Send queues st for the client. Top-level stanzas are written without a
// namespace declaration (the stream's default applies).
func (s *Session) Send(st *stanza.Element) error {
	s.wmu.Lock()
	if s.ended || s.closing && s.sm == nil {
		s.wmu.Unlock()
		return errClosed
	}
	metrics.StanzaOut(st.Name)
	if s.detached || s.closing || s.sm != nil && s.sm.full() {
		// XEP-0198: kept for a resumption, or, for a session that is
		// ending, with what the client did not acknowledge, to be handed
		// over in order.
		return s.keepLocked(st)
	}
	if s.inactive && !important(st) && len(s.held) < maxHeld {
		s.held = st.Append(s.held, stanza.NSClient) // XEP-0352: later
		if s.sm != nil {
			s.sm.heldEnds = append(s.sm.heldEnds, len(s.held))
		}
		s.wmu.Unlock()
		return nil
	}
	q := s.queueLocked()
	if len(s.held) > 0 { // what was held goes first
		s.moveHeldLocked(func(b []byte) { q.b = append(q.b, b...) })
	}
	from := len(q.b)
	q.b = st.Append(q.b, stanza.NSClient)
	queued := len(q.b)
	if s.maxQueue > 0 && queued > s.maxQueue {
		// A slow consumer: the stanza is not written, and the session
		// ends; the caller routes the stanza elsewhere unless stream
		// management keeps it for the handover.
		q.b = q.b[:from]
		s.wmu.Unlock()
		s.Logger().Warn("slow consumer closed", "queued", queued)
		s.Close(string(stream.PolicyViolation), "too much unread data")
		return s.Send(st)
	}
	s.recordLocked(q, from)
	kick := s.kickLocked()
	s.wmu.Unlock()
	if kick {
		writers.run(s)
	}
	return nil
}

// keepLocked keeps a stanza in the stream management queue only (s.wmu
// held, and released): for a detached session, to be written after
// <resumed/>; for a session that is ending, to be handed over with the
// stanzas the client did not acknowledge. A live or detached session
// past sm_max_unacked stanzas, or 4 MiB of them (Config.MaxQueue), is
// ended. A message for a detached session
// is reported to the core (push notifications).
func (s *Session) keepLocked(st *stanza.Element) error {
	m := s.sm
	if m.unacked() >= 2*m.max || len(m.buf)-m.start >= 2*m.maxSize {
		s.wmu.Unlock()
		return errClosed // ending, and more than enough kept: route it elsewhere
	}
	m.push(st.Append(nil, stanza.NSClient), time.Now().Unix())
	n, size := m.unacked(), len(m.buf)-m.start
	over := !s.closing && (n > m.max || size > m.maxSize)
	notify := s.detached && !s.closing && st.Name == stanza.KindMessage && important(st)
	s.wmu.Unlock()
	if over {
		s.Logger().Warn("session ended: too many unacknowledged stanzas", "unacked", n, "bytes", size)
		go s.Close(string(stream.PolicyViolation), "too many unacknowledged stanzas")
	}
	if notify {
		s.core.Queued(s, st)
	}
	return nil
}

// sendRaw queues raw bytes (stream-level elements during negotiation).
func (s *Session) sendRaw(b []byte) {
	s.wmu.Lock()
	kick := false
	if !s.closing && !s.detached {
		q := s.queueLocked()
		q.b = append(q.b, b...)
		kick = s.kickLocked()
	}
	s.wmu.Unlock()
	if kick {
		writers.run(s)
	}
}

// Close ends the stream: an optional stream error, the closing tag, then
// the connection is closed once everything queued has been written.
func (s *Session) Close(condition, text string) {
	var e *stream.Error
	if condition != "" {
		e = &stream.Error{Condition: stream.Condition(condition), Text: text}
	}
	s.closeWith(e)
}

// closeWith is Close with a stream error (nil: none).
func (s *Session) closeWith(e *stream.Error) {
	s.wmu.Lock()
	if s.closing || s.ended {
		s.wmu.Unlock()
		return
	}
	s.closing = true
	if s.detached {
		// No connection to write to (XEP-0198). A parked session ends
		// here; otherwise its reader is stopping and ends it.
		s.wmu.Unlock()
		s.terminate()
		return
	}
	q := s.queueLocked()
	if len(s.held) > 0 {
		s.moveHeldLocked(func(b []byte) { q.b = append(q.b, b...) })
	}
	if e != nil {
		q.b = s.appendStreamError(q.b, e)
	}
	q.b = s.appendClose(q.b)
	writing := s.writing
	kick := s.kickLocked()
	s.wmu.Unlock()
	if writing {
		if kick {
			writers.run(s)
		}
		return
	}
	// No writer goroutine (still negotiating): flush here and close.
	s.fmu.Lock()
	defer s.fmu.Unlock()
	_ = s.flushLocked()
	s.closeConn()
}

// flush writes whatever is queued, synchronously.
func (s *Session) flush() error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.flushLocked()
}

// flushLocked writes the queue (s.fmu held). Two buffers alternate:
// producers append to one while the other is on the wire.
func (s *Session) flushLocked() error {
	s.wmu.Lock()
	b := s.wq
	if b == nil || len(b.b) == 0 {
		s.wmu.Unlock()
		return nil
	}
	s.wq, s.ws = s.ws, nil // b and the queue never share a buffer
	b.b = s.appendAckRequestLocked(b.b)
	s.wmu.Unlock()
	conn := s.currentConn()
	// Setting a deadline costs a timer update: move it only when less
	// than half of writeTimeout is left.
	if now := time.Now().UnixNano(); s.wdeadline-now < int64(writeTimeout/2) {
		s.wdeadline = now + int64(writeTimeout)
		_ = conn.SetWriteDeadline(time.Unix(0, s.wdeadline))
	}
	_, err := conn.Write(b.b)
	b.b = b.b[:0]
	s.wmu.Lock()
	if cap(b.b) <= maxKeptBuf {
		s.ws = b
	}
	s.wmu.Unlock()
	return err
}

const writeTimeout = 30 * time.Second

// writeLoop writes until the queue is empty, then ends: a session with
// nothing to send has no writer goroutine (and no buffers). Once the
// stream is closing and everything is written, it closes the connection.
func (s *Session) writeLoop() {
	for {
		s.fmu.Lock()
		err := s.flushLocked()
		s.wmu.Lock()
		if err != nil {
			s.Logger().Debug("write failed", "err", err)
			if s.resumableLocked() {
				// XEP-0198: what was written may be lost, and is in the
				// SM queue. The reader sees the closed connection and
				// parks the session.
				s.detachLocked()
				s.wactive = false
				s.wmu.Unlock()
				s.closeConn()
				s.fmu.Unlock()
				return
			}
			s.closing = true
		} else if s.wq != nil && len(s.wq.b) > 0 && !s.detached {
			s.wmu.Unlock()
			s.fmu.Unlock()
			continue
		}
		final := s.closing
		s.wactive = false
		putWBuf(s.ws)
		s.ws = nil
		if s.wq != nil && len(s.wq.b) == 0 {
			putWBuf(s.wq)
			s.wq = nil
		}
		s.wmu.Unlock()
		if final {
			s.closeConn()
		}
		s.fmu.Unlock()
		if final {
			s.closeOnce.Do(func() { close(s.wclosed) })
		}
		return
	}
}

func (s *Session) currentConn() net.Conn {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.conn
}

func (s *Session) setConn(c net.Conn) {
	s.cmu.Lock()
	s.conn = c
	s.cmu.Unlock()
}

// startWriter switches to asynchronous writes (once bound).
func (s *Session) startWriter() {
	s.wmu.Lock()
	s.writing = true
	kick := (s.closing || s.wq != nil && len(s.wq.b) > 0) && s.kickLocked()
	s.wmu.Unlock()
	if kick {
		writers.run(s)
	}
}

// Closing reports whether the session is closing.
func (s *Session) Closing() bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.closing
}
