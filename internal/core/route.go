package core

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"github.com/metronome-xmpp/metronome/internal/metrics"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/internal/c2s"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// localOrigin is the server itself as the origin of a stanza.
type localOrigin struct{ j jid.JID }

func (o localOrigin) JID() jid.JID { return o.j }
func (localOrigin) Kind() string   { return "local" }

func randomResource() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// Bind implements c2s.Core (RFC 6120 §7): it assigns the resource and
// publishes the session, applying the resource-conflict policy.
func (s *Server) Bind(ctx context.Context, sess *c2s.Session, resource string) (jid.JID, error) {
	opts := s.opts.Load()
	h := s.lookupHost(sess.Host())
	if h == nil {
		return jid.JID{}, stanza.Err(stanza.ServiceUnavailable)
	}
	bare, err := jid.New(sess.AuthUser(), h.name, "")
	if err != nil {
		return jid.JID{}, stanza.ErrText(stanza.BadRequest, err.Error())
	}
	if opts.MaxSessions > 0 && len(s.dir.sessions(bare.String())) >= opts.MaxSessions {
		return jid.JID{}, stanza.Error{Type: stanza.Cancel, Condition: stanza.ResourceConstraint,
			Text: "too many sessions for this account"}
	}
	if resource == "" {
		resource = randomResource()
	}
	full, err := bare.WithResource(resource)
	if err != nil {
		return jid.JID{}, stanza.ErrText(stanza.BadRequest, "invalid resource: "+err.Error())
	}
	if old := s.dir.lookupFull(full.String()); old != nil {
		switch opts.ResourceConflict {
		case "reject":
			return jid.JID{}, stanza.Err(stanza.Conflict)
		case "random":
			if full, err = bare.WithResource(resource + "-" + randomResource()[:6]); err != nil {
				return jid.JID{}, stanza.ErrText(stanza.BadRequest, err.Error())
			}
		default: // takeover: the old session is closed with <conflict/>
			old.Close("conflict", "replaced by a new connection with the same resource")
			s.unbind(old)
		}
	}
	sess.SetBound(full)
	s.dir.add(sess)
	h.bus().Fire(ctx, &event.Event{Name: module.EventSessionBound, Host: h.name, Origin: sess, From: full, Data: module.Session(sess)})
	return full, nil
}

// unbind removes a session from the directory once and fires session/closed.
func (s *Server) unbind(sess *c2s.Session) {
	if !s.dir.remove(sess) {
		return
	}
	if h := s.lookupHost(sess.Host()); h != nil {
		h.bus().Fire(context.Background(), &event.Event{Name: module.EventSessionClosed, Host: h.name,
			Origin: sess, From: sess.JID(), Data: module.Session(sess)})
	}
}

// Closed implements c2s.Core.
// A session with stream management hands its unacknowledged stanzas
// over (Unacked) after this: messages for the user wait for that, so
// that what was sent first is stored first.
func (s *Server) Closed(sess *c2s.Session) {
	if sess.StreamManaged() {
		s.handovers.begin(sess.JID().Bare().String())
	}
	s.unbind(sess)
}

// Idle implements c2s.Core: a bound session was silent for the idle
// timeout; modules (ping) may ping it.
func (s *Server) Idle(sess *c2s.Session) bool {
	h := s.lookupHost(sess.Host())
	if h == nil {
		return false
	}
	return h.bus().Fire(s.ctx, &event.Event{Name: module.EventIdleCheck, Host: h.name, Origin: sess,
		Data: module.Session(sess)}).Stopped()
}

// PreAuth implements c2s.Core: only in-band registration IQs to the host are
// allowed before authentication (XEP-0077).
func (s *Server) PreAuth(ctx context.Context, sess *c2s.Session, st *stanza.Element) bool {
	if st.Name != stanza.KindIQ || (st.Type() != stanza.Get && st.Type() != stanza.Set) || st.ID() == "" {
		return false
	}
	p := st.FirstChild()
	if p == nil || p.Space != "jabber:iq:register" || p.Name != "query" {
		return false
	}
	if to := st.To(); to != "" && to != sess.Host() {
		return false
	}
	h := s.lookupHost(sess.Host())
	if h == nil {
		return false
	}
	st.SetAttr("from", "")
	ev := &event.Event{Name: module.IQEvent("host", p.Space, p.Name), Host: h.name, Origin: sess, Stanza: st, To: h.jid}
	v := h.bus().Fire(ctx, ev)
	if e, ok := v.Err(); ok {
		_ = sess.Send(stanza.ErrorReply(st, e))
	} else if !v.Stopped() {
		_ = sess.Send(stanza.ErrorReply(st, stanza.Err(stanza.ServiceUnavailable)))
	}
	return true
}

// Process implements c2s.Core: a stanza from a bound client.
// routeSample counts routed stanzas for the latency sample.
var routeSample atomic.Uint32

func (s *Server) Process(ctx context.Context, sess *c2s.Session, st *stanza.Element) {
	metrics.StanzaIn(st.Name)
	h := s.lookupHost(sess.Host())
	if h == nil {
		return
	}
	from := sess.JID()
	// RFC 6120 §8.1.2.1: the server stamps the full JID (before anything
	// is answered, so that error replies are addressed too).
	st.SetAttr("from", from.String())
	if e, ok := validate(st); !ok {
		if !stanza.IsError(st) {
			_ = sess.Send(stanza.ErrorReply(st, e))
		}
		return
	}
	var to jid.JID
	if t := st.To(); t != "" {
		var err error
		if to, err = jid.Parse(t); err != nil {
			if !stanza.IsError(st) {
				st.SetAttr("to", "")
				_ = sess.Send(stanza.ErrorReply(st, stanza.ErrText(stanza.JIDMalformed, err.Error())))
			}
			return
		}
	}
	kind := st.Name
	var dest string
	switch {
	case to.IsZero() && kind == stanza.KindPresence:
		dest = "self"
		if s.handovers.active.Load() > 0 {
			// Offline messages are sent on initial presence: let another
			// session of the user finish storing what it hands over.
			s.handovers.wait(ctx, from.Bare().String())
		}
	case to.IsZero():
		dest = "bare" // RFC 6120 §10.3.3: handled on behalf of the account
	default:
		dest = destOf(to)
	}
	// The session's scratch event: Process runs on the session's reader
	// goroutine, one stanza at a time, and handlers do not keep events.
	ev := sess.ScratchEvent()
	*ev = event.Event{Name: stanzaEvent(true, kind, dest), Host: h.name, Origin: sess, Stanza: st, To: to, From: from}
	defer func() { *ev = event.Event{} }() // keep no stanza alive while the session idles
	if v := h.bus().Fire(ctx, ev); v.Stopped() {
		s.bounce(ctx, sess, st, v)
		return
	}
	if dest == "self" {
		ev.Name = module.EventPresenceOut
		s.bounce(ctx, sess, st, h.bus().Fire(ctx, ev))
		return
	}
	if to.IsZero() {
		to = from.Bare()
		if kind == stanza.KindMessage {
			// Delivered to the account's resources (or stored): say so.
			st.SetAttr("to", to.String())
		}
	}
	ev.To = to
	// Routing latency is sampled (1 stanza in 16): two clock reads per
	// stanza would cost more than the counters.
	if routeSample.Add(1)&15 != 0 {
		s.route(ctx, ev)
		return
	}
	start := time.Now()
	s.route(ctx, ev)
	metrics.ObserveRoute(time.Since(start))
}

// validate checks the stanza-level rules of RFC 6120 §8.
func validate(st *stanza.Element) (stanza.Error, bool) {
	switch st.Name {
	case stanza.KindIQ:
		if st.ID() == "" {
			return stanza.ErrText(stanza.BadRequest, "an iq needs an id"), false
		}
		switch st.Type() {
		case stanza.Get, stanza.Set:
			n := 0
			for range st.Elements {
				n++
			}
			if n != 1 {
				return stanza.ErrText(stanza.BadRequest, "an iq get/set must have exactly one child"), false
			}
		case stanza.Result, stanza.ErrorT:
		default:
			return stanza.ErrText(stanza.BadRequest, "invalid iq type"), false
		}
	case stanza.KindMessage:
		switch st.Type() {
		case "", "normal", "chat", "groupchat", "headline", "error":
		default:
			// RFC 6121 §5.2.2: a type not understood is treated as normal.
			st.SetAttr("type", "")
		}
	case stanza.KindPresence:
		switch st.Type() {
		case "", "unavailable", "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe", "error":
		default:
			return stanza.ErrText(stanza.BadRequest, "invalid presence type"), false
		}
	}
	return stanza.Error{}, true
}

// stanzaEvents holds the event names of the routing path, built once so
// that routing a stanza builds no strings: [pre][kind][dest].
var stanzaEvents = func() (t [2][3][4]string) {
	for k, kind := range [3]string{stanza.KindMessage, stanza.KindPresence, stanza.KindIQ} {
		for d, dest := range [4]string{"bare", "full", "host", "self"} {
			t[0][k][d] = kind + "/" + dest
			t[1][k][d] = "pre-" + kind + "/" + dest
		}
	}
	return t
}()

func stanzaEvent(pre bool, kind, dest string) string {
	var p, k, d int
	if pre {
		p = 1
	}
	switch kind {
	case stanza.KindMessage:
	case stanza.KindPresence:
		k = 1
	case stanza.KindIQ:
		k = 2
	default:
		return kind + "/" + dest
	}
	switch dest {
	case "bare":
	case "full":
		d = 1
	case "host":
		d = 2
	default:
		d = 3
	}
	return stanzaEvents[p][k][d]
}

func isBroadcastPresence(st *stanza.Element) bool {
	if st.Name != stanza.KindPresence {
		return false
	}
	switch st.Type() {
	case "", "unavailable", "probe":
		return true
	}
	return false
}

func destOf(to jid.JID) string {
	switch {
	case to.Local() == "":
		return "host"
	case to.Resource() == "":
		return "bare"
	default:
		return "full"
	}
}

// bounce sends the error of an Error verdict back to the stanza's sender.
func (s *Server) bounce(ctx context.Context, origin event.Origin, st *stanza.Element, v event.Verdict) {
	e, ok := v.Err()
	if !ok || stanza.IsError(st) {
		return
	}
	if st.Name == stanza.KindIQ && st.Type() != stanza.Get && st.Type() != stanza.Set {
		return
	}
	r := stanza.ErrorReply(st, e)
	if sess, ok := origin.(*c2s.Session); ok && r.To() == sess.JID().String() {
		_ = sess.Send(r)
		return
	}
	_ = s.RouteFromServer(ctx, r)
}

// RouteFromServer routes a stanza generated by the server or a module; its
// 'from' and 'to' must be set.
func (s *Server) RouteFromServer(ctx context.Context, st *stanza.Element) error {
	to, err := jid.Parse(st.To())
	if err != nil {
		return errors.New("core: route: invalid 'to': " + err.Error())
	}
	from, err := jid.Parse(st.From())
	if err != nil {
		return errors.New("core: route: invalid 'from': " + err.Error())
	}
	s.route(ctx, &event.Event{Origin: localOrigin{from.DomainJID()}, Stanza: st, From: from, To: to})
	return nil
}

// route delivers a stanza to its destination: fires the destination host's
// events, or route/remote for other domains, then the fallbacks.
// ev carries Origin, Stanza, From and To; route sets Name and Host.
func (s *Server) route(ctx context.Context, ev *event.Event) {
	origin, st, to := ev.Origin, ev.Stanza, ev.To
	h := s.lookupHost(to.Domain())
	if h == nil {
		ev.Name, ev.Host = module.EventRouteRemote, ""
		v := s.global.Fire(ctx, ev)
		if !v.Stopped() && !isBroadcastPresence(st) {
			// Presence broadcasts and probes to unreachable domains are
			// dropped silently: bouncing them would answer every login and
			// status change with errors about each remote contact.
			v = event.Error(stanza.ErrText(stanza.RemoteServerNotFound, "no route to "+to.Domain()))
		}
		s.bounce(ctx, origin, st, v)
		return
	}
	kind := st.Name
	if kind == stanza.KindMessage && s.handovers.active.Load() > 0 {
		s.handovers.wait(ctx, to.Bare().String())
	}
	dest := destOf(to)
	typ := st.Type()
	ev.Host = h.name
	bus := h.bus()
	ev.Name = module.EventStanzaIn
	if v := bus.Fire(ctx, ev); v.Stopped() {
		s.bounce(ctx, origin, st, v)
		return
	}
	if kind == stanza.KindIQ && (typ == stanza.Get || typ == stanza.Set) {
		if p := st.FirstChild(); p != nil {
			ev.Name = module.IQEvent(dest, p.Space, p.Name)
			if v := bus.Fire(ctx, ev); v.Stopped() {
				s.bounce(ctx, origin, st, v)
				return
			}
		}
	}
	ev.Name = stanzaEvent(false, kind, dest)
	if v := bus.Fire(ctx, ev); v.Stopped() {
		s.bounce(ctx, origin, st, v)
		return
	}
	s.fallback(ctx, origin, st, to, dest)
}

// fallback is what happens to a stanza no module handled (RFC 6120 §10.5,
// RFC 6121 §8.5).
func (s *Server) fallback(ctx context.Context, origin event.Origin, st *stanza.Element, to jid.JID, dest string) {
	kind, typ := st.Name, st.Type()
	if kind == stanza.KindIQ && (typ == stanza.Result || typ == stanza.ErrorT) && dest == "host" {
		s.iqResponse(st)
		return
	}
	if dest == "full" {
		if sess := s.dir.lookupFull(to.String()); sess != nil {
			if kind == stanza.KindIQ && typ == stanza.Get && st.Child(nsPing, "ping") != nil && sess.Hibernated() {
				// A ping to a client whose connection was lost and that
				// may resume (XEP-0198): the server answers for it, so
				// that a room pinging its occupants (XEP-0410) or a
				// contact does not take it for gone while it sleeps.
				_ = s.RouteFromServer(ctx, stanza.ResultReply(st, nil))
				return
			}
			_ = sess.Send(st)
			return
		}
	}
	switch kind {
	case stanza.KindIQ:
		if typ == stanza.Get || typ == stanza.Set {
			s.bounce(ctx, origin, st, event.Error(stanza.Err(stanza.ServiceUnavailable)))
		}
	case stanza.KindMessage:
		if typ != "groupchat" && typ != "headline" {
			s.bounce(ctx, origin, st, event.Error(stanza.Err(stanza.ServiceUnavailable)))
		}
	}
}

// sendIQ sends an IQ from the server and waits for the answer.
func (s *Server) sendIQ(ctx context.Context, iq *stanza.Element) (*stanza.Element, error) {
	id := iq.ID()
	if id == "" {
		id = "mtr" + strconv.FormatUint(s.iqSeq.Add(1), 36)
		iq.SetAttr("id", id)
	}
	key := iq.To() + "\x00" + id
	ch := make(chan *stanza.Element, 1)
	s.iqMu.Lock()
	s.iqPending[key] = ch
	s.iqMu.Unlock()
	defer func() {
		s.iqMu.Lock()
		delete(s.iqPending, key)
		s.iqMu.Unlock()
	}()
	if err := s.RouteFromServer(ctx, iq); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		if stanza.IsError(r) {
			return r, stanza.ParseError(r)
		}
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Server) iqResponse(st *stanza.Element) {
	key := st.From() + "\x00" + st.ID()
	s.iqMu.Lock()
	ch := s.iqPending[key]
	s.iqMu.Unlock()
	if ch != nil {
		select {
		case ch <- st:
		default:
		}
	}
}
