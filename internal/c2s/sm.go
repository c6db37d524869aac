package c2s

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// Stream Management (XEP-0198)
//
// Once a client sent <enable/>, every stanza Send writes is also kept, as
// the bytes written, in the session's unacknowledged queue (smState)
// until the client's <a h='…'/> covers it; the server asks for an ack
// (<r/>) at the end of a write burst. Stanzas from the client are counted
// once the core has processed them — routed, archived or stored — so an
// <a/> from the server means they are the server's responsibility.
//
// A resumable session whose connection fails (a read or write error, or
// an idle ping left unanswered) is not ended: it is detached. It stays
// bound, routed to and present to others; what is sent to it only goes
// to the queue. Once its reader has stopped it is parked, and waits for
// the client to come back with <resume/> on a new stream within the
// resumption timeout. Then the new connection is moved into the parked
// Session (transplant), the queue past the client's h is written again
// after <resumed/>, and the stream goes on. A resume that arrives while
// the old connection still looks alive (the server did not notice it
// died) closes that connection with a <conflict/> stream error and waits
// for the session to park first.
//
// A session that ends for good with stanzas still unacknowledged — the
// resumption timeout passed, the client closed its stream, the server
// closed it — hands them to the core (Core.Unacked), which stores,
// bounces or drops each as it would a stanza for an unavailable resource.
//
// Locks: the queue, the counters but 'in', and the detached, parked and
// ended states are guarded by wmu; 'in' belongs to the reader. A
// transplant happens only while the old session is parked (its reader and
// writer have stopped) and before the new stream's reader goes on.

// NSSM is the XEP-0198 namespace.
const NSSM = "urn:xmpp:sm:3"

// smState is a session's stream management state.
type smState struct {
	id      string        // SM-ID; "" when the session cannot be resumed
	timeout time.Duration // resumption timeout
	max     int           // unacknowledged stanzas allowed
	maxSize int           // and their bytes ([c2s] max_queue)
	in      uint32        // h: stanzas handled from the client (reader only)
	out     uint32        // stanzas sent to the client
	acked   uint32        // the client's last h
	// The unacknowledged stanzas, oldest first: buf[start:ends[0]] is the
	// first, ends[i-1]:ends[i] the others; sent holds when each was queued
	// (unix seconds), for the delay stamp of what ends up offline.
	buf   []byte
	start int
	ends  []int
	sent  []int64
	// An <r/> was written when out was reqAt and no <a/> has come since;
	// reqSince is when the first of the unanswered ones was (unix nanos,
	// 0 when none; read by the session's reader without wmu).
	requested bool
	reqAt     uint32
	reqSince  atomic.Int64
	// heldEnds are the ends, in s.held, of the stanzas CSI holds back:
	// they are counted once written.
	heldEnds []int
}

// unacked is how many stanzas the client has not acknowledged.
func (m *smState) unacked() int { return len(m.ends) }

// full reports whether the client left more unacknowledged than it may:
// sm_max_unacked stanzas, or as many bytes as a session may have queued.
func (m *smState) full() bool { return len(m.ends) >= m.max || len(m.buf)-m.start >= m.maxSize }

// push records a stanza just queued for the client.
func (m *smState) push(b []byte, now int64) {
	if len(m.ends) == 0 {
		m.buf, m.start = m.buf[:0], 0
	}
	m.buf = append(m.buf, b...)
	m.ends = append(m.ends, len(m.buf))
	m.sent = append(m.sent, now)
	m.out++
}

// drop forgets the n oldest unacknowledged stanzas.
func (m *smState) drop(n int) {
	if n <= 0 {
		return
	}
	m.start = m.ends[n-1]
	m.ends, m.sent = m.ends[n:], m.sent[n:]
	switch {
	case len(m.ends) == 0:
		// All acknowledged: an idle session keeps no buffer.
		m.buf, m.ends, m.sent, m.start = nil, nil, nil, 0
	case m.start > 16<<10 && m.start > len(m.buf)/2:
		k := copy(m.buf, m.buf[m.start:])
		m.buf = m.buf[:k]
		for i := range m.ends {
			m.ends[i] -= m.start
		}
		m.start = 0
	}
}

// item returns the i-th unacknowledged stanza's bytes.
func (m *smState) item(i int) []byte {
	from := m.start
	if i > 0 {
		from = m.ends[i-1]
	}
	return m.buf[from:m.ends[i]]
}

// pending returns the bytes of every unacknowledged stanza.
func (m *smState) pending() []byte {
	if len(m.ends) == 0 {
		return nil
	}
	return m.buf[m.start:m.ends[len(m.ends)-1]]
}

// requestEvery is how many stanzas may be written after an unanswered
// <r/> before the server asks again.
const requestEvery = 16

// ackRequest is the XEP-0198 request written after a burst.
const ackRequest = `<r xmlns='` + NSSM + `'/>`

// appendAckRequestLocked adds an <r/> to b when stanzas wait for an ack
// and none was asked for recently (s.wmu held).
func (s *Session) appendAckRequestLocked(b []byte) []byte {
	m := s.sm
	if m == nil || m.unacked() == 0 || s.closing || m.requested && m.out-m.reqAt < requestEvery {
		return b
	}
	if !m.requested {
		m.reqSince.Store(time.Now().UnixNano())
	}
	m.requested, m.reqAt = true, m.out
	return append(b, ackRequest...)
}

// recordLocked records the stanza just appended to the write queue at
// q.b[from:] (s.wmu held).
func (s *Session) recordLocked(q *wbuffer, from int) {
	if s.sm != nil {
		s.sm.push(q.b[from:], time.Now().Unix())
	}
}

// releaseHeldLocked moves the stanzas CSI held back to the write queue,
// counting them for stream management (s.wmu held), and reports whether
// the caller must start a writer.
func (s *Session) releaseHeldLocked() bool {
	if len(s.held) == 0 {
		return false
	}
	q := s.queueLocked()
	s.moveHeldLocked(func(b []byte) { q.b = append(q.b, b...) })
	return s.kickLocked()
}

// moveHeldLocked hands the held stanzas to put, one at a time when
// stream management counts them, and records them (s.wmu held).
func (s *Session) moveHeldLocked(put func([]byte)) {
	if s.sm == nil {
		put(s.held)
	} else {
		from := 0
		now := time.Now().Unix()
		for _, end := range s.sm.heldEnds {
			put(s.held[from:end])
			s.sm.push(s.held[from:end], now)
			from = end
		}
		s.sm.heldEnds = s.sm.heldEnds[:0]
	}
	s.held = nil
}

// resumable reports whether the session may be resumed if its
// connection fails (s.wmu held).
func (s *Session) resumableLocked() bool {
	return s.sm != nil && s.sm.id != "" && !s.closing && !s.ended
}

// detachLocked cuts the session from its connection (s.wmu held): what
// was queued for the wire and not written is already in the stream
// management queue; from now on Send only adds to that queue.
func (s *Session) detachLocked() {
	s.detached = true
	if s.wq != nil {
		s.wq.b = s.wq.b[:0]
	}
	if len(s.held) > 0 {
		s.moveHeldLocked(func([]byte) {})
	}
	s.inactive = false
}

// errAckTimeout ends a connection whose client sent nothing for
// Config.AckTimeout after an ack request: it is taken for lost. A timeout,
// so a session that cannot hibernate gets <connection-timeout/>.
var errAckTimeout net.Error = ackTimeout{}

type ackTimeout struct{}

func (ackTimeout) Error() string   { return "c2s: no answer to an ack request" }
func (ackTimeout) Timeout() bool   { return true }
func (ackTimeout) Temporary() bool { return false }

// ackDeadline is when the client must have sent something while an <r/>
// of the server is unanswered: AckTimeout after that request or after
// the client's last input, whichever is later; zero when no request is
// pending. It runs on the session's reader (or the poller's sweep while
// the session is parked there).
func (r *deadlineReader) ackDeadline() time.Time {
	s := r.s
	if s.sm == nil || r.cfg.AckTimeout <= 0 {
		return time.Time{}
	}
	t := s.sm.reqSince.Load()
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(0, max(t, s.lastActive.Load())).Add(r.cfg.AckTimeout)
}

// netFailure reports whether err means the connection failed rather
// than the stream was ended on purpose: a clean close by the client, a
// stream error either side, or a close by the server.
func netFailure(err error) bool {
	var se *streamErr
	var xe *xmlstream.Error
	switch {
	case err == nil, errors.Is(err, xmlstream.ErrStreamEnd), errors.Is(err, errClosed),
		errors.As(err, &se), errors.As(err, &xe):
		return false
	}
	return true
}

// park keeps a resumable session whose connection failed (or is being
// taken over by a resumption) and reports whether it did. It runs on the
// session's reader, once the reader has stopped reading.
func (s *Session) park(err error) bool {
	s.wmu.Lock()
	if !s.resumableLocked() || s.takeover == nil && !netFailure(err) {
		s.wmu.Unlock()
		return false
	}
	if !s.detached {
		s.detachLocked()
	}
	s.parked = true
	takeover := s.takeover
	var notify []*stanza.Element
	if takeover == nil {
		s.expiry = time.AfterFunc(s.sm.timeout, s.expire)
		notify = s.sm.unackedMessages()
	}
	s.wmu.Unlock()
	// The client may not have got what it did not acknowledge: push
	// notifications (XEP-0357) go out for those messages as for the
	// ones that will arrive while the session is hibernated.
	for _, st := range notify {
		s.core.Queued(s, st)
	}
	// Wait for a write in progress, then drop the connection.
	s.fmu.Lock()
	s.closeConn()
	s.fmu.Unlock()
	s.Logger().Info("session hibernated", "err", err, "unacked", s.unackedCount())
	if takeover != nil {
		close(takeover)
	}
	return true
}

// unackedMessages parses the unacknowledged messages worth a
// notification (s.wmu held).
func (m *smState) unackedMessages() []*stanza.Element {
	var out []*stanza.Element
	for i := range m.ends {
		b := m.item(i)
		if !bytes.HasPrefix(b, []byte("<message")) {
			continue
		}
		if el, err := xmlstream.ParseNS(b, stanza.NSClient); err == nil && important(el) {
			out = append(out, el)
		}
	}
	return out
}

// StreamManaged reports whether the client enabled stream management:
// such a session hands its unacknowledged stanzas to Core.Unacked once
// it has called Core.Closed.
func (s *Session) StreamManaged() bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.sm != nil
}

func (s *Session) unackedCount() int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.sm == nil {
		return 0
	}
	return s.sm.unacked()
}

// expire ends a parked session whose resumption timeout passed.
func (s *Session) expire() {
	if s.terminate() {
		s.Logger().Info("hibernated session expired")
	}
}

// terminate ends a parked session for good, unless a resumption has
// claimed it: unbound, its unacknowledged stanzas handed to the core.
func (s *Session) terminate() bool {
	s.wmu.Lock()
	if s.ended || !s.parked || s.takeover != nil {
		s.wmu.Unlock()
		return false
	}
	s.ended, s.closing, s.parked = true, true, false
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.wmu.Unlock()
	s.core.Closed(s)
	s.handOverUnacked()
	s.core.Tracked(s, false)
	s.closeOnce.Do(func() { close(s.wclosed) })
	return true
}

// Unacked is a stanza the client never acknowledged.
type Unacked struct {
	Stanza *stanza.Element
	Sent   time.Time // when it was queued for the client
}

// handOverUnacked gives the unacknowledged stanzas of a session that
// ended to the core, and forgets its SM-ID (keeping its h for <failed/>).
func (s *Session) handOverUnacked() {
	s.wmu.Lock()
	m := s.sm
	s.ended, s.closing = true, true
	var items []Unacked
	if m != nil {
		for i := range m.ends {
			el, err := xmlstream.ParseNS(m.item(i), stanza.NSClient)
			if err != nil {
				continue // we wrote it: cannot happen
			}
			items = append(items, Unacked{Stanza: el, Sent: time.Unix(m.sent[i], 0)})
		}
		m.drop(m.unacked())
	}
	s.wmu.Unlock()
	if m == nil {
		return
	}
	if m.id != "" {
		s.core.Resumptions().forget(m.id, s, m.in)
	}
	if len(items) > 0 {
		s.Logger().Info("unacknowledged stanzas handed over", "count", len(items))
	}
	s.core.Unacked(s, items) // even none: the core waits for this after Closed
}

// handled counts a stanza from the client as handled (XEP-0198 'h').
// The core has processed it: routed, archived or stored durably.
func (s *Session) handled() {
	if s.sm != nil {
		s.sm.in++
	}
}

// handleSM processes a stream management element of a bound session;
// false if el is not one.
func (s *Session) handleSM(el *stanza.Element) (bool, error) {
	if el.Space != NSSM {
		return false, nil
	}
	switch el.Name {
	case "enable":
		if s.sm != nil {
			s.sendRaw(smFailed("unexpected-request", -1))
			return true, serr(stream.PolicyViolation, "stream management is already enabled")
		}
		s.enableSM(el)
	case "r":
		if s.sm == nil {
			s.sendRaw(smFailed("unexpected-request", -1))
			return true, nil
		}
		s.sendRaw([]byte(`<a xmlns='` + NSSM + `' h='` + strconv.FormatUint(uint64(s.sm.in), 10) + `'/>`))
	case "a":
		if s.sm == nil {
			s.sendRaw(smFailed("unexpected-request", -1))
			return true, nil
		}
		h, err := strconv.ParseUint(el.Attr("h"), 10, 32)
		if err != nil {
			return true, serr(stream.InvalidXML, "<a/> needs an 'h' attribute (an unsignedInt)")
		}
		if err := s.ack(uint32(h)); err != nil {
			return true, err
		}
	case "resume":
		s.sendRaw(smFailed("unexpected-request", -1))
	default:
		return true, serr(stream.UnsupportedStanzaType, "<"+el.Name+" xmlns='"+NSSM+"'/> is not supported")
	}
	return true, nil
}

// enableSM answers <enable/>.
func (s *Session) enableSM(el *stanza.Element) {
	cfg := s.core.C2SConfig()
	m := &smState{max: cfg.MaxUnacked, maxSize: cfg.MaxQueue}
	if m.max <= 0 {
		m.max = 1000
	}
	if m.maxSize <= 0 {
		m.maxSize = 4 << 20
	}
	reply := []byte(`<enabled xmlns='` + NSSM + `'`)
	if r := el.Attr("resume"); (r == "true" || r == "1") && cfg.ResumeTimeout > 0 {
		m.timeout = cfg.ResumeTimeout
		if max, err := strconv.ParseUint(el.Attr("max"), 10, 32); err == nil && max > 0 && time.Duration(max)*time.Second < m.timeout {
			m.timeout = time.Duration(max) * time.Second
		}
		m.id = smID()
		s.core.Resumptions().add(m.id, s)
		reply = append(reply, ` id='`+m.id+`' resume='true' max='`+strconv.Itoa(int(m.timeout/time.Second))+`'`...)
	}
	reply = append(reply, "/>"...)
	s.wmu.Lock()
	// Stanzas CSI holds were queued before <enabled/>: written first,
	// uncounted, as the client counts what follows <enabled/>.
	kick := s.releaseHeldLocked()
	q := s.queueLocked()
	q.b = append(q.b, reply...)
	s.sm = m
	kick = s.kickLocked() || kick
	s.wmu.Unlock()
	if kick {
		writers.run(s)
	}
}

// ack processes the client's h.
func (s *Session) ack(h uint32) error {
	s.wmu.Lock()
	m := s.sm
	n := h - m.acked
	if int64(n) > int64(m.unacked()) {
		sent := m.out
		s.wmu.Unlock()
		return handledTooHigh(h, sent)
	}
	m.drop(int(n))
	m.acked = h
	if m.requested && h-m.reqAt < 1<<31 {
		m.requested = false // the answer to our last <r/>
		m.reqSince.Store(0)
	}
	// Stanzas written after the request that was just answered are still
	// unacknowledged: ask again now rather than with the next write that
	// may never come, so that each of them is under a request (and its
	// ack deadline).
	kick := false
	if !m.requested && m.unacked() > 0 && !s.detached && !s.closing {
		q := s.queueLocked()
		q.b = s.appendAckRequestLocked(q.b)
		kick = s.kickLocked()
	}
	s.wmu.Unlock()
	if kick {
		writers.run(s)
	}
	return nil
}

// handledTooHigh is the stream error of XEP-0198 §5 for an h above the
// count of stanzas sent.
func handledTooHigh(h, sent uint32) error {
	hs, ss := strconv.FormatUint(uint64(h), 10), strconv.FormatUint(uint64(sent), 10)
	e := &streamErr{Condition: stream.UndefinedCondition,
		Text: "You acknowledged " + hs + " stanzas, but I only sent you " + ss + " so far."}
	e.App = stanza.New(NSSM, "handled-count-too-high", "h", hs, "send-count", ss)
	return e
}

// smFailed builds <failed/> with a stanza error condition and, when h is
// not negative, the h of a session that timed out.
func smFailed(cond string, h int64) []byte {
	b := []byte(`<failed xmlns='` + NSSM + `'`)
	if h >= 0 {
		b = append(b, ` h='`+strconv.FormatInt(h, 10)+`'`...)
	}
	return append(b, `><`+cond+` xmlns='`+stanza.NSStanzas+`'/></failed>`...)
}

func smID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// resumeWait bounds how long a resumption waits for the old connection's
// reader to stop.
const resumeWait = 10 * time.Second

// resumeSM answers <resume/> on a stream that authenticated but has not
// bound a resource: on success it returns the resumed session, which
// takes over this stream's connection; on failure it has sent <failed/>
// and the client may bind a resource instead.
func (s *Session) resumeSM(ctx context.Context, el *stanza.Element) (*Session, error) {
	previd := el.Attr("previd")
	h64, err := strconv.ParseUint(el.Attr("h"), 10, 32)
	if previd == "" || err != nil {
		s.sendRaw(smFailed("bad-request", -1))
		return nil, nil
	}
	h := uint32(h64)
	reg := s.core.Resumptions()
	old, lastH, known := reg.lookup(previd, s.authUser, s.Host())
	if old == nil {
		last := int64(-1)
		if known {
			last = int64(lastH)
		}
		s.sendRaw(smFailed("item-not-found", last))
		return nil, nil
	}
	parked, ok := old.claim()
	if !ok {
		s.sendRaw(smFailed("item-not-found", -1))
		return nil, nil
	}
	if !parked {
		// The old connection looks alive: XEP-0198 §5 closes it with a
		// conflict, and its reader parks the session.
		old.Logger().Info("session taken over by a resumption")
		old.kickConnection()
		t := time.NewTimer(resumeWait)
		select {
		case <-old.takeoverDone():
			t.Stop()
		case <-t.C:
			old.unclaim()
			s.sendRaw(smFailed("item-not-found", -1))
			return nil, nil
		case <-ctx.Done():
			t.Stop()
			old.unclaim()
			return nil, ctx.Err()
		}
	}
	// old is parked: its reader and writer have stopped.
	old.wmu.Lock()
	if old.closing || old.ended {
		old.wmu.Unlock()
		old.unclaim() // closed meanwhile: unclaim ends it
		s.sendRaw(smFailed("item-not-found", -1))
		return nil, nil
	}
	m := old.sm
	if n := h - m.acked; int64(n) > int64(m.unacked()) {
		sent := m.out
		old.wmu.Unlock()
		old.unclaim()
		return nil, handledTooHigh(h, sent)
	}
	old.wmu.Unlock()
	old.transplant(s, h)
	return old, nil
}

// claim reserves a session for a resumption; parked says its reader has
// already stopped.
func (s *Session) claim() (parked, ok bool) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.ended || s.closing || s.takeover != nil || s.sm == nil {
		return false, false
	}
	s.takeover = make(chan struct{})
	if s.parked {
		// A running expire sees takeover and leaves the session alone.
		s.expiry.Stop()
		close(s.takeover)
		return true, true
	}
	return false, true
}

// unclaim gives up a resumption that could not finish: the session
// waits for another one, or ends if it was closed meanwhile.
func (s *Session) unclaim() {
	s.wmu.Lock()
	s.takeover = nil
	end := s.parked && s.closing
	if s.parked && !s.closing && !s.ended {
		s.expiry = time.AfterFunc(s.sm.timeout, s.expire)
	}
	s.wmu.Unlock()
	if end {
		s.terminate()
	}
}

func (s *Session) takeoverDone() <-chan struct{} {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.takeover
}

// kickConnection ends the connection of a session being resumed from
// elsewhere: a <conflict/> stream error if the connection takes it, then
// the connection is closed, and the session's reader parks it.
func (s *Session) kickConnection() {
	s.wmu.Lock()
	if !s.detached {
		s.detachLocked()
	}
	s.wmu.Unlock()
	s.fmu.Lock()
	conn := s.currentConn()
	b := s.appendStreamError(nil, &stream.Error{Condition: stream.Conflict, Text: "the session was resumed on another connection"})
	b = s.appendClose(b)
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = conn.Write(b)
	s.closeConn()
	s.fmu.Unlock()
}

// transplant moves the connection of from, a stream that just
// authenticated, into the parked session s, and writes <resumed/> and
// what the client did not acknowledge.
func (s *Session) transplant(from *Session, h uint32) {
	conn := from.currentConn()
	s.cmu.Lock()
	s.conn, s.remote, s.secure = conn, from.remote, from.secure
	s.cmu.Unlock()
	s.rd = from.rd
	s.rd.s = s
	s.rd.pingedAt = time.Time{}
	s.rec, s.raw, s.notifier = nil, nil, nil // registered again when it parks
	s.polled = false
	s.lastActive.Store(time.Now().UnixNano())
	s.fmu.Lock()
	s.wdeadline = 0
	s.fmu.Unlock()

	s.wmu.Lock()
	m := s.sm
	m.drop(int(h - m.acked))
	m.acked = h
	m.requested = false
	s.framing = from.framing
	s.detached, s.parked, s.takeover = false, false, nil
	q := s.queueLocked()
	q.b = q.b[:0]
	q.b = append(q.b, `<resumed xmlns='`+NSSM+`' h='`+strconv.FormatUint(uint64(m.in), 10)+`' previd='`+m.id+`'/>`...)
	q.b = append(q.b, m.pending()...)
	q.b = s.appendAckRequestLocked(q.b)
	n := m.unacked()
	kick := s.kickLocked()
	s.wmu.Unlock()
	if kick {
		writers.run(s)
	}
	s.Logger().Info("session resumed", "resent", n)
	s.core.Resumed(s)
}

// Resumptions maps SM-IDs to resumable sessions, and remembers for a
// while the h of sessions that ended, for the <failed h='…'/> of a late
// resumption.
type Resumptions struct {
	mu    sync.Mutex
	live  map[string]*Session
	gone  map[string]goneSession
	order []string // gone, oldest first
}

type goneSession struct {
	user, host string
	h          uint32
	at         time.Time
}

// Remembering ended sessions: for how long, and how many.
const (
	goneKeep = 10 * time.Minute
	goneMax  = 10000
)

// NewResumptions returns an empty registry.
func NewResumptions() *Resumptions {
	return &Resumptions{live: map[string]*Session{}, gone: map[string]goneSession{}}
}

func (r *Resumptions) add(id string, s *Session) {
	r.mu.Lock()
	r.live[id] = s
	r.mu.Unlock()
}

// lookup returns the session id names if it belongs to user at host; or
// the h of a session of that user that ended recently (known).
func (r *Resumptions) lookup(id, user, host string) (s *Session, h uint32, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.live[id]; s != nil && s.authUser == user && s.Host() == host {
		return s, 0, false
	}
	if g, ok := r.gone[id]; ok && g.user == user && g.host == host {
		return nil, g.h, true
	}
	return nil, 0, false
}

func (r *Resumptions) forget(id string, s *Session, h uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live[id] != s {
		return
	}
	delete(r.live, id)
	now := time.Now()
	for len(r.order) > 0 && (len(r.order) >= goneMax || now.Sub(r.gone[r.order[0]].at) > goneKeep) {
		delete(r.gone, r.order[0])
		r.order = r.order[1:]
	}
	r.gone[id] = goneSession{user: s.authUser, host: s.Host(), h: h, at: now}
	r.order = append(r.order, id)
}

// Len is the number of resumable sessions, live or hibernated.
func (r *Resumptions) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live)
}

// Hibernated reports whether the session has no connection and waits for
// a resumption (XEP-0198).
func (s *Session) Hibernated() bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.detached && !s.ended
}
