package bosh

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // XEP-0124 §15.3 specifies SHA-1 for the key sequence
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/metronome-xmpp/metronome/internal/c2s"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// limits are the rules of one session, fixed at its creation: a reload
// that changes the options applies to new sessions only.
type limits struct {
	wait, inactivity, maxPause, polling time.Duration
	hold, requests                      int
	maxIn, maxOut                       int // bytes buffered towards the stream and towards the client
}

// maxRepeats bounds how often a client may resend a request that is still
// held (XEP-0124 §14.3 lets a connection manager limit it).
const maxRepeats = 5

// endGrace is how long an ended session stays known, so that a client
// whose terminating response was lost gets it again rather than
// item-not-found.
const endGrace = 10 * time.Second

// reply is what one HTTP request gets: a <body/>, or with status set, an
// HTTP error (a legacy client's binding error, XEP-0124 §17.1).
type reply struct {
	body   []byte
	status int
}

// pending is a request received and not yet answered: held (processed,
// waiting for payloads) or buffered (its rid is ahead of the next
// expected one).
type pending struct {
	rid     uint64
	b       *body
	resp    chan reply // buffered (1); the HTTP handler waits on it
	timer   *time.Timer
	create  bool // the session creation request
	done    bool
	repeats int
}

// cached is a response kept for retransmission.
type cached struct {
	rid  uint64
	body []byte
	key  string // the request's key (§15.3)
}

// session is one BOSH session and the stream it carries. All its state
// is guarded by mu: the HTTP handlers, the timers and the c2s session
// (through conn) take it briefly and never block while holding it.
type session struct {
	srv    c2s.Server // the server whose stream it carries
	sid    string
	lim    limits
	secure bool
	ver    string // the client's 'ver': "" for a legacy client
	acks   bool   // the client asked for acknowledgements ('ack' in its creation request)
	to     string
	lang   string
	from   string       // XEP-0206 'from' of the creation request
	ctype  string       // Content-Type of the responses
	log    *slog.Logger // the module's; see logger
	unreg  func()

	mu        sync.Mutex
	next      uint64 // next rid to process
	held      []*pending
	buffered  map[uint64]*pending
	cache     []cached
	out       []byte // payloads for the next response
	authid    string // the stream id, from the stream's <open/>
	opened    bool   // the stream has answered the current <open/>
	created   bool   // the creation response was sent
	streamErr []byte
	ended     bool  // no more requests are processed
	final     reply // what requests get once ended
	removed   bool
	pauseDur  time.Duration
	key       string // §15.3: what the next request's key must hash to ("" = no key sequencing)
	// Polling sessions (hold 0): the last empty request and whether its
	// response was empty (XEP-0124 §12).
	lastPoll      time.Time
	lastPollRID   uint64
	lastPollEmpty bool
	inact         *time.Timer
	inactSeq      uint64

	// Towards the stream (conn.Read).
	in      []byte
	inEOF   bool
	inReady chan struct{}
	notify  func() // c2s.ReadNotifier: the stream's callback for input
	rdl     time.Time
	partial []byte // an element cut short by the stream's last Write
	closed  bool   // the stream closed its connection
}

// logger returns the session's logger. It is built at each call rather
// than kept, as c2s does: sessions rarely log, and a kept logger with
// its own attributes costs every session a few hundred bytes.
func (s *session) logger() *slog.Logger {
	return s.log.With("bosh_sid", s.sid[:6])
}

func newSID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func immediate(r reply) chan reply {
	ch := make(chan reply, 1)
	ch <- r
	return ch
}

// framingOpen is the <open/> the stream reads at creation and restarts.
func (s *session) framingOpen() []byte {
	b := []byte(`<open xmlns="` + c2s.NSFraming + `"`)
	b = appendAttr(b, "to", s.to)
	if s.from != "" {
		b = appendAttr(b, "from", s.from)
	}
	if s.lang != "" {
		b = appendAttr(b, "xml:lang", s.lang)
	}
	b = appendAttr(b, "version", "1.0")
	return append(b, "/>"...)
}

var closeTag = []byte(`<close xmlns="` + c2s.NSFraming + `"/>`)

// start holds the creation request and queues the stream's first <open/>.
func (s *session) start(b *body) chan reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &pending{rid: b.rid, b: b, resp: make(chan reply, 1), create: true}
	s.next = b.rid + 1
	s.key = b.key
	s.inputLocked(s.framingOpen())
	s.holdLocked(p)
	return p.resp
}

// request handles a request of an existing session and returns where
// its reply will come from. abort means: close the connection without
// touching the session (XEP-0124 §15: an unencrypted request in a
// secure session).
func (s *session) request(b *body, secure bool, now time.Time) (ch chan reply, abort bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secure && !secure {
		return nil, true
	}
	if s.ended {
		if c, key := s.cachedLocked(b.rid); c != nil && s.sameKey(b, key) {
			return immediate(reply{body: c}), false
		}
		return immediate(s.final), false
	}
	if b.rid < s.next {
		// §14.3: a repeat. Answered: send the same response again; still
		// held: answer the old request with a recoverable error and give
		// its response to this one.
		if c, key := s.cachedLocked(b.rid); c != nil {
			if !s.sameKey(b, key) {
				return immediate(reply{body: terminateBody(condItemNotFound, nil)}), false
			}
			return immediate(reply{body: c}), false
		}
		for _, p := range s.held {
			if p.rid == b.rid {
				if !s.sameKey(b, p.b.key) {
					return immediate(reply{body: terminateBody(condItemNotFound, nil)}), false
				}
				return s.repeatLocked(p), false
			}
		}
		// §14.3 (4): the response cannot be sent again.
		s.failLocked(condItemNotFound)
		return immediate(s.final), false
	}
	if p, ok := s.buffered[b.rid]; ok {
		if !s.sameKey(b, p.b.key) {
			return immediate(reply{body: terminateBody(condItemNotFound, nil)}), false
		}
		return s.repeatLocked(p), false
	}
	// §14.2: the window is 'requests' rids past the last one processed.
	if b.rid > s.next-1+uint64(s.lim.requests) {
		s.logger().Debug("BOSH rid out of window", "rid", b.rid, "expected", s.next)
		s.failLocked(condItemNotFound)
		return immediate(s.final), false
	}
	// §11: more unanswered requests than 'requests', unless the last one
	// pauses or terminates the session.
	if b.typ != "terminate" && b.pause < 0 && len(s.held)+len(s.buffered)+1 > s.lim.requests {
		s.logger().Debug("BOSH too many simultaneous requests", "held", len(s.held), "buffered", len(s.buffered))
		s.failLocked(condPolicyViolation)
		return immediate(s.final), false
	}
	p := &pending{rid: b.rid, b: b, resp: make(chan reply, 1)}
	if b.rid != s.next {
		if s.buffered == nil {
			s.buffered = make(map[uint64]*pending)
		}
		s.buffered[b.rid] = p
		return p.resp, false
	}
	s.processLocked(p, now)
	for !s.ended {
		q, ok := s.buffered[s.next]
		if !ok {
			break
		}
		delete(s.buffered, s.next)
		s.processLocked(q, now)
	}
	s.deliverLocked()
	return p.resp, false
}

// repeatLocked handles a request for a rid still unanswered.
func (s *session) repeatLocked(p *pending) chan reply {
	p.repeats++
	if p.repeats > maxRepeats {
		s.failLocked(condPolicyViolation)
		return immediate(s.final)
	}
	b := openBody(nil)
	b = appendAttr(b, "type", "error")
	p.resp <- reply{body: closeBody(b, nil)}
	p.resp = make(chan reply, 1)
	return p.resp
}

// keyMatches reports whether hex(SHA-1(key)) is prev, compared without
// regard to case (XEP-0124 §15.3).
func keyMatches(key, prev string) bool {
	if key == "" {
		return false
	}
	sum := sha1.Sum([]byte(key))
	return strings.EqualFold(hex.EncodeToString(sum[:]), prev)
}

func isEmpty(b *body) bool {
	return len(b.payload) == 0 && b.typ == "" && !b.restart && b.pause < 0
}

// processLocked handles a request whose rid is the next expected.
func (s *session) processLocked(p *pending, now time.Time) {
	b := p.b
	s.next = p.rid + 1
	if s.key != "" {
		// §15.3: the key must hash to the previous one, or the request
		// was injected: it is not processed and the session ends.
		if !keyMatches(b.key, s.key) {
			s.logger().Debug("BOSH key sequence broken", "rid", p.rid)
			s.failLocked(condItemNotFound)
			p.resp <- s.final
			return
		}
		s.key = b.key
		if b.newkey != "" {
			s.key = b.newkey
		}
	}
	if s.acks && b.ack >= 0 {
		s.dropCachedLocked(uint64(b.ack))
	}
	s.pauseDur = 0
	if s.lim.hold == 0 && isEmpty(b) {
		// §12: a polling session must not poll faster than 'polling'.
		if !s.lastPoll.IsZero() && now.Sub(s.lastPoll) < s.lim.polling && s.lastPollEmpty {
			s.failLocked(condPolicyViolation)
			p.resp <- s.final
			return
		}
		s.lastPoll, s.lastPollRID, s.lastPollEmpty = now, p.rid, false
	}
	switch {
	case b.pause >= 0:
		// §10: answer everything at once, without payloads, and allow
		// that much inactivity.
		d := time.Duration(b.pause) * time.Second
		if s.lim.maxPause <= 0 || d > s.lim.maxPause {
			s.failLocked(condPolicyViolation)
			p.resp <- s.final
			return
		}
		s.holdLocked(p)
		for len(s.held) > 0 {
			s.answerLocked(s.held[0], nil)
		}
		s.pauseDur = d
		s.startInactivityLocked()
		return
	case b.typ == "terminate":
		// §13: the payloads first, then the end of the stream; the
		// answer comes when the stream has closed.
		if !s.inputLocked(b.payload) || !s.inputLocked(closeTag) {
			p.resp <- s.final
			return
		}
	case b.restart:
		// XEP-0206 §5: a new stream; payloads of a restart are ignored.
		s.opened = false
		if !s.inputLocked(s.framingOpen()) {
			p.resp <- s.final
			return
		}
	default:
		if !s.inputLocked(b.payload) {
			p.resp <- s.final
			return
		}
	}
	s.holdLocked(p)
}

// holdLocked adds p to the held requests with its wait timer.
func (s *session) holdLocked(p *pending) {
	s.held = append(s.held, p)
	p.timer = time.AfterFunc(s.lim.wait, func() { s.expire(p) })
	s.inactSeq++ // a request is held: no inactivity timeout
	if s.inact != nil {
		s.inact.Stop()
	}
}

// inputLocked queues bytes for the stream; false means the session was
// ended because the client sends faster than the stream reads.
func (s *session) inputLocked(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if len(s.in)+len(b) > s.lim.maxIn {
		s.logger().Warn("BOSH client sends faster than its stream reads", "buffered", len(s.in))
		s.failLocked(condPolicyViolation)
		return false
	}
	s.in = append(s.in, b...)
	s.wakeReader()
	return true
}

func (s *session) wakeReader() {
	select {
	case s.inReady <- struct{}{}:
	default:
	}
	if f := s.notify; f != nil {
		s.notify = nil
		f() // never blocks (c2s hands the session to a worker)
	}
}

// deliverLocked answers held requests: the oldest with the queued
// payloads, and any beyond 'hold' at once (§8, §11).
func (s *session) deliverLocked() {
	for !s.ended && len(s.held) > 0 {
		p := s.held[0]
		if p.create && !s.opened {
			return // the creation response needs the stream's <open/>
		}
		switch {
		case len(s.out) > 0:
			out := s.out
			s.out = nil
			s.answerLocked(p, out)
		case len(s.held) > s.lim.hold && !p.create:
			s.answerLocked(p, nil)
		default:
			return
		}
	}
}

// expire answers p when its wait is over, and the older ones with it
// (responses go out in rid order).
func (s *session) expire(p *pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.done || s.ended {
		return
	}
	for len(s.held) > 0 && !p.done {
		if s.held[0].create && !s.opened {
			// The creation response needs the stream's <open/>, which
			// comes at once (or the stream fails, which answers it).
			return
		}
		out := s.out
		s.out = nil
		s.answerLocked(s.held[0], out)
	}
}

// answerLocked sends the response to the oldest held request p.
func (s *session) answerLocked(p *pending, payload []byte) {
	b := openBody(nil)
	if p.create {
		b = s.appendCreationAttrs(b, p)
		s.created = true
	} else if s.acks && s.next-1 != p.rid {
		// §9.1: the highest rid received with all below it.
		b = appendAttr(b, "ack", strconv.FormatUint(s.next-1, 10))
	}
	b = closeBody(b, payload)
	s.removeHeldLocked(p)
	if p.rid == s.lastPollRID {
		s.lastPollEmpty = len(payload) == 0
	}
	s.cacheLocked(p, b)
	p.resp <- reply{body: b}
	if len(s.held) == 0 {
		s.startInactivityLocked()
	}
}

func (s *session) removeHeldLocked(p *pending) {
	p.done = true
	if p.timer != nil {
		p.timer.Stop()
	}
	for i, q := range s.held {
		if q == p {
			s.held = append(s.held[:i], s.held[i+1:]...)
			break
		}
	}
}

// appendCreationAttrs writes the session creation response's attributes
// (XEP-0124 §7.1, XEP-0206 §3–§5).
func (s *session) appendCreationAttrs(b []byte, p *pending) []byte {
	secs := func(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
	b = appendAttr(b, "sid", s.sid)
	b = appendAttr(b, "wait", secs(s.lim.wait))
	b = appendAttr(b, "requests", strconv.Itoa(s.lim.requests))
	b = appendAttr(b, "hold", strconv.Itoa(s.lim.hold))
	b = appendAttr(b, "inactivity", secs(s.lim.inactivity))
	b = appendAttr(b, "polling", secs(s.lim.polling))
	if s.lim.maxPause > 0 {
		b = appendAttr(b, "maxpause", secs(s.lim.maxPause))
	}
	b = appendAttr(b, "ver", versionAtMost(s.ver))
	b = appendAttr(b, "from", s.to)
	if s.authid != "" {
		b = appendAttr(b, "authid", s.authid)
	}
	if s.secure {
		b = appendAttr(b, "secure", "true")
	}
	if s.acks {
		b = appendAttr(b, "ack", strconv.FormatUint(p.rid, 10))
	}
	b = append(b, ` xmlns:xmpp="`+NSXBOSH+`" xmpp:version="1.0" xmpp:restartlogic="true"`...)
	return b
}

func (s *session) cacheLocked(p *pending, b []byte) {
	// Keep one response per request the client may have outstanding.
	if len(s.cache) >= s.lim.requests {
		copy(s.cache, s.cache[1:])
		s.cache = s.cache[:len(s.cache)-1]
	}
	s.cache = append(s.cache, cached{p.rid, b, p.b.key})
}

// cachedLocked returns the response kept for rid and the key of its
// request.
func (s *session) cachedLocked(rid uint64) (body []byte, key string) {
	for _, c := range s.cache {
		if c.rid == rid {
			return c.body, c.key
		}
	}
	return nil, ""
}

// sameKey reports whether a repeated request carries its original's key:
// with key sequencing, a repeat with another key is not the client's, and
// gets item-not-found without affecting the session (§15.3 protects the
// session from injected requests; handing over the victim's response would
// defeat it).
func (s *session) sameKey(b *body, key string) bool {
	return key == "" || b.key == key
}

// dropCachedLocked forgets the responses the client acknowledged.
func (s *session) dropCachedLocked(ack uint64) {
	i := 0
	for _, c := range s.cache {
		if c.rid > ack {
			s.cache[i] = c
			i++
		}
	}
	clear(s.cache[i:])
	s.cache = s.cache[:i]
}

// startInactivityLocked arms the inactivity timeout: no request held.
func (s *session) startInactivityLocked() {
	d := s.lim.inactivity
	if s.pauseDur > 0 {
		d = s.pauseDur
	}
	s.inactSeq++
	seq := s.inactSeq
	f := func() { s.inactive(seq) }
	if s.inact != nil {
		s.inact.Stop()
	}
	s.inact = time.AfterFunc(d, f)
}

// inactive ends a session whose client stopped sending requests (§10):
// without telling the client, which is gone.
func (s *session) inactive(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq != s.inactSeq || s.ended || len(s.held) > 0 {
		return
	}
	s.logger().Debug("BOSH session inactive, closed")
	s.endLocked(terminateBody(condItemNotFound, nil), condItemNotFound)
}

// failLocked ends the session with a terminal binding condition, sent to
// every unanswered request.
func (s *session) failLocked(cond string) {
	if s.ended {
		return
	}
	s.logger().Debug("BOSH session terminated", "condition", cond)
	s.endLocked(terminateBody(cond, nil), cond)
}

// endLocked ends the session: final is what every unanswered request
// and every later one gets, and the stream's input ends.
func (s *session) endLocked(final []byte, cond string) {
	s.ended = true
	s.final = reply{body: final}
	if s.ver == "" {
		if st := legacyStatus(cond); st != 0 {
			s.final = reply{status: st}
		}
	}
	for _, p := range s.held {
		p.done = true
		if p.timer != nil {
			p.timer.Stop()
		}
		p.resp <- s.final
	}
	s.held = nil
	for _, p := range s.buffered {
		p.resp <- s.final
	}
	s.buffered = nil
	s.out, s.streamErr = nil, nil
	s.inactSeq++
	if s.inact != nil {
		s.inact.Stop()
	}
	s.inEOF = true
	s.in = nil
	s.wakeReader()
	if !s.removed {
		s.removed = true
		time.AfterFunc(endGrace, s.unreg)
	}
}

// Stream side (conn): what the c2s session writes.

// fromStream handles one top-level element the stream wrote.
func (s *session) fromStreamLocked(el []byte) {
	framing := bytes.Contains(el[:max(0, c2s.TagEnd(el, 0))], []byte(c2s.NSFraming))
	switch {
	case framing && hasTag(el, "open"):
		if e, err := parseOpen(el); err == nil {
			if s.authid == "" {
				s.authid = e.Attr("id")
			}
		}
		s.opened = true
	case framing && hasTag(el, "close"):
		s.streamClosedLocked()
	case hasTag(el, "stream:error"):
		s.streamErr = append([]byte(nil), el...)
	default:
		s.out = appendPayload(s.out, el)
	}
}

// streamClosedLocked ends the session after the stream's <close/> (or
// the end of its connection): the oldest request gets the terminate
// body with the last payloads and the stream error (XEP-0206 §6).
func (s *session) streamClosedLocked() {
	if s.ended {
		return
	}
	cond := ""
	switch {
	case len(s.streamErr) == 0:
	case bytes.Contains(s.streamErr, []byte("<host-unknown")) && !s.created:
		cond = condHostUnknown
	case bytes.Contains(s.streamErr, []byte("<system-shutdown")):
		cond = condSystemShutdown
	default:
		cond = condRemoteStreamError
	}
	payload := append(s.out, s.streamErr...)
	s.out = nil
	final := terminateBody(cond, payload)
	if len(s.held) > 0 {
		p := s.held[0]
		s.removeHeldLocked(p)
		if p.create {
			// Even a refused creation says which session it was.
			b := openBody(nil)
			b = appendAttr(b, "type", "terminate")
			if cond != "" {
				b = appendAttr(b, "condition", cond)
			}
			final = closeBody(s.appendCreationAttrs(b, p), payload)
		}
		s.cacheLocked(p, final)
		p.resp <- reply{body: final}
		// The others get an empty body (§13).
		for _, q := range s.held {
			q.done = true
			if q.timer != nil {
				q.timer.Stop()
			}
			e := closeBody(openBody(nil), nil)
			s.cacheLocked(q, e)
			q.resp <- reply{body: e}
		}
		s.held = nil
		s.endLocked(terminateBody(cond, nil), cond)
		return
	}
	// No request to answer now: the next one gets the last payloads.
	s.endLocked(final, cond)
}

// hasTag reports whether el starts with the tag name (not a longer one).
func hasTag(el []byte, name string) bool {
	if len(el) < len(name)+2 || el[0] != '<' || string(el[1:1+len(name)]) != name {
		return false
	}
	switch el[1+len(name)] {
	case ' ', '/', '>', '\t', '\n', '\r':
		return true
	}
	return false
}

func parseOpen(el []byte) (*stanza.Element, error) {
	return parseElement(el)
}

// appendPayload appends a stanza the stream wrote. The stream leaves
// jabber:client implicit; inside the httpbind <body/> it must be
// declared, or the stanza would be in the wrapper's namespace.
func appendPayload(dst, el []byte) []byte {
	end := 1
	for end < len(el) {
		c := el[end]
		if c == ' ' || c == '/' || c == '>' || c == '\t' || c == '\n' || c == '\r' {
			break
		}
		end++
	}
	name := el[1:end]
	if bytes.IndexByte(name, ':') >= 0 {
		return append(dst, el...) // prefixed: declares its own namespace
	}
	te := c2s.TagEnd(el, 0)
	if te < 0 {
		te = len(el)
	}
	tag := el[:te]
	if bytes.Contains(tag, []byte(` xmlns="`)) || bytes.Contains(tag, []byte(` xmlns='`)) {
		return append(dst, el...)
	}
	dst = append(dst, el[:end]...)
	dst = append(dst, ` xmlns="`+stanza.NSClient+`"`...)
	return append(dst, el[end:]...)
}

// registry holds the live sessions of the process by sid. Sessions are
// connections, not per-user state: like the c2s sessions they carry,
// they outlive a reload (the next generation's handler finds them here).
type registry struct {
	mu sync.Mutex
	m  map[string]*session
}

var sessions = &registry{m: make(map[string]*session)}

// add registers s unless max sessions exist.
func (r *registry) add(s *session, max int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) >= max {
		return false
	}
	r.m[s.sid] = s
	return true
}

func (r *registry) get(sid string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[sid]
}

func (r *registry) remove(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[s.sid] == s {
		delete(r.m, s.sid)
	}
}

// shutdown ends the sessions of srv (its HTTP server is stopping): held
// requests get system-shutdown, and the streams end.
func (r *registry) shutdown(srv c2s.Server) {
	r.mu.Lock()
	var list []*session
	for _, s := range r.m {
		if s.srv == srv {
			list = append(list, s)
		}
	}
	r.mu.Unlock()
	for _, s := range list {
		s.mu.Lock()
		s.failLocked(condSystemShutdown)
		s.mu.Unlock()
	}
}
