// Package c2s runs client-to-server streams (RFC 6120 §4–§7): stream
// headers, STARTTLS, SASL, resource binding and the legacy session
// establishment, then hands every stanza of a bound session to the core.
// It is transport-agnostic above the net.Conn it is given: TCP with
// STARTTLS, direct TLS (XEP-0368), and later BOSH and WebSocket adapters.
//
// Each session has one reader goroutine (parsing and negotiation) and,
// once bound, one writer goroutine that coalesces queued stanzas into a
// single write. Producers never block: a session whose outbound queue
// exceeds its limit is closed (a slow consumer).
package c2s

import (
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"
)

var sessionSeq atomic.Uint64

// Session is one client stream. After binding it implements module.Session.
type Session struct {
	id   string
	core Core
	log  *slog.Logger

	cmu    sync.Mutex // guards conn: replaced by the reader at STARTTLS, read by other goroutines
	conn   net.Conn   // current connection (TLS after STARTTLS)
	remote string
	secure bool
	host   Host // set once the stream header named a served host

	full     jid.JID // set once bound (before the session is published)
	authUser string  // canonical localpart after SASL
	sasl     saslFlags

	started    time.Time
	lastActive atomic.Int64 // unix nanos

	// Outbound queue. wbuf is appended to under wmu; the writer swaps it out.
	// fmu serialises flushes and the final close, so that no goroutine
	// closes the connection while another is still writing to it.
	fmu      sync.Mutex
	wmu      sync.Mutex
	wbuf     []byte
	wspare   []byte
	wsignal  chan struct{}
	writing  bool // writer goroutine running
	closing  bool // no more stanzas accepted; close after flush
	wclosed  chan struct{}
	maxQueue int

	scratch event.Event // reused by the core for each stanza this session sends

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
		wsignal:  make(chan struct{}, 1),
		wclosed:  make(chan struct{}),
		maxQueue: maxQueue,
	}
	s.log = core.Logger().With("session", id, "remote", s.remote)
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
func (s *Session) Logger() *slog.Logger { return s.log }

// Started implements module.Session.
func (s *Session) Started() time.Time { return s.started }

// LastActive implements module.Session.
func (s *Session) LastActive() time.Time { return time.Unix(0, s.lastActive.Load()) }

// Secure implements module.Session.
func (s *Session) Secure() bool { return s.secure }

// RemoteAddr implements module.Session.
func (s *Session) RemoteAddr() string { return s.remote }

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

// Send queues st for the client. Top-level stanzas are written without a
// namespace declaration (the stream's default applies).
func (s *Session) Send(st *stanza.Element) error {
	s.wmu.Lock()
	if s.closing {
		s.wmu.Unlock()
		return errClosed
	}
	s.wbuf = st.Append(s.wbuf, stanza.NSClient)
	over := s.maxQueue > 0 && len(s.wbuf) > s.maxQueue
	s.wmu.Unlock()
	if over {
		s.log.Warn("slow consumer closed", "queued", len(s.wbuf))
		s.Close(string(stream.PolicyViolation), "too much unread data")
		return errClosed
	}
	s.signal()
	return nil
}

// sendRaw queues raw bytes (stream-level elements during negotiation).
func (s *Session) sendRaw(b []byte) {
	s.wmu.Lock()
	if !s.closing {
		s.wbuf = append(s.wbuf, b...)
	}
	s.wmu.Unlock()
	s.signal()
}

func (s *Session) signal() {
	select {
	case s.wsignal <- struct{}{}:
	default:
	}
}

// Close ends the stream: an optional stream error, the closing tag, then
// the connection is closed once everything queued has been written.
func (s *Session) Close(condition, text string) {
	s.wmu.Lock()
	if s.closing {
		s.wmu.Unlock()
		return
	}
	s.closing = true
	if condition != "" {
		e := &stream.Error{Condition: stream.Condition(condition), Text: text}
		s.wbuf = e.Append(s.wbuf)
	}
	s.wbuf = append(s.wbuf, stream.Close...)
	writing := s.writing
	s.wmu.Unlock()
	if writing {
		s.signal()
		return
	}
	// No writer goroutine (still negotiating): flush here and close.
	s.fmu.Lock()
	defer s.fmu.Unlock()
	_ = s.flushLocked()
	_ = s.currentConn().Close()
}

// flush writes whatever is queued, synchronously. Two buffers alternate:
// producers append to wbuf while the previous one is on the wire.
func (s *Session) flush() error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.flushLocked()
}

func (s *Session) flushLocked() error {
	s.wmu.Lock()
	b := s.wbuf
	if len(b) == 0 {
		s.wmu.Unlock()
		return nil
	}
	s.wbuf = s.wspare[:0]
	s.wspare = nil // b and wbuf must never share an array
	s.wmu.Unlock()
	conn := s.currentConn()
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := conn.Write(b)
	if cap(b) <= 64<<10 { // do not keep a burst's large buffer while idle
		s.wmu.Lock()
		s.wspare = b[:0]
		s.wmu.Unlock()
	}
	return err
}

const writeTimeout = 30 * time.Second

// writeLoop is the single writer once the session is bound.
func (s *Session) writeLoop() {
	defer close(s.wclosed)
	for range s.wsignal {
		s.fmu.Lock()
		if err := s.flushLocked(); err != nil {
			s.log.Debug("write failed", "err", err)
			s.wmu.Lock()
			s.closing = true
			s.wmu.Unlock()
			_ = s.currentConn().Close()
			s.fmu.Unlock()
			return
		}
		s.wmu.Lock()
		done := s.closing && len(s.wbuf) == 0
		s.wmu.Unlock()
		if done {
			_ = s.currentConn().Close()
		}
		s.fmu.Unlock()
		if done {
			return
		}
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

func (s *Session) startWriter() {
	s.wmu.Lock()
	s.writing = true
	s.wmu.Unlock()
	go s.writeLoop()
	s.signal()
}

// Closing reports whether the session is closing.
func (s *Session) Closing() bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.closing
}
