package core

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/internal/c2s"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// XEP-0198 on the core's side: the registry of resumable sessions, and
// what becomes of the stanzas a client never acknowledged.

// Namespaces of the stanzas Unacked looks into.
const (
	nsMAM     = "urn:xmpp:mam:2"
	nsCarbons = "urn:xmpp:carbons:2"
	nsSID     = "urn:xmpp:sid:0"
	nsPing    = "urn:xmpp:ping"
	// sessionMAMQueried is modules/mam's SessionQueried: the session
	// fetched its archive, so it catches up from there.
	sessionMAMQueried = "mam/queried"
	// eventOffline is modules/message's EventOffline, handled by
	// modules/offline.
	eventOffline = "message/offline"
)

// Resumptions implements c2s.Core.
func (s *Server) Resumptions() *c2s.Resumptions { return s.resumptions }

// Resumed implements c2s.Core.
func (s *Server) Resumed(sess *c2s.Session) {
	if h := s.lookupHost(sess.Host()); h != nil {
		h.bus().Fire(s.ctx, &event.Event{Name: module.EventSessionResumed, Host: h.name, Origin: sess,
			From: sess.JID(), Data: module.Session(sess)})
	}
}

// Queued implements c2s.Core: a message was kept for a hibernated
// session; modules (push) hear of it on a goroutine of their own.
func (s *Server) Queued(sess *c2s.Session, st *stanza.Element) {
	h := s.lookupHost(sess.Host())
	if h == nil {
		return
	}
	switch st.Type() {
	case "", "normal", "chat":
	default:
		return
	}
	c := st.Copy()
	from, _ := jid.Parse(c.From())
	go h.bus().Fire(s.ctx, &event.Event{Name: module.EventMessageHibernated, Host: h.name, Origin: sess,
		Stanza: c, From: from, To: sess.JID().Bare(), Data: module.Session(sess)})
}

// Unacked implements c2s.Core. XEP-0198 §4: stanzas a session never
// acknowledged are treated like stanzas for an unavailable resource:
//
//   - a chat or normal message goes to offline storage (the event's Data
//     is when it was first sent, for the delay stamp) when the user has no other
//     available session. It is left alone when the user's archive holds it
//     (XEP-0359 stanza-id) and the session had fetched its archive: the
//     client catches up from there, and would otherwise see it twice. A
//     message offline storage refuses, with no archived copy, is bounced.
//     With other sessions available, an archived message is left to the
//     archive and carbons, anything else is bounced;
//   - groupchat, headline and error messages, archive results and
//     carbon copies are dropped: the room, the archive or another
//     resource holds them;
//   - an IQ request is answered with service-unavailable; presence is
//     dropped (the state is the server's, and is sent again at login).
func (s *Server) Unacked(sess *c2s.Session, items []c2s.Unacked) {
	h := s.lookupHost(sess.Host())
	if h == nil {
		return
	}
	full := sess.JID()
	bare := full.Bare()
	defer s.handovers.end(bare.String())
	if len(items) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, module.StoreTimeout)
	defer cancel()
	// What this handover routes (bounces to the user's other resources)
	// must not wait for the handover itself.
	ctx = context.WithValue(ctx, handoverKey{}, bare.String())
	queried := sess.Value(sessionMAMQueried) != nil
	others := false
	for _, o := range s.dir.sessions(bare.String()) {
		if o != module.Session(sess) && o.Available() {
			others = true
		}
	}
	var stored, bounced, dropped int
	for _, u := range items {
		st := u.Stanza
		switch st.Name {
		case stanza.KindIQ:
			if t := st.Type(); t == stanza.Get || t == stanza.Set {
				s.bounceUnacked(ctx, st, stanza.Err(stanza.ServiceUnavailable))
				bounced++
			} else {
				dropped++
			}
			continue
		case stanza.KindMessage:
		default:
			dropped++
			continue
		}
		switch st.Type() {
		case "", "normal", "chat":
		default:
			dropped++
			continue
		}
		if st.Child(nsMAM, "result") != nil || st.Child(nsCarbons, "received") != nil || st.Child(nsCarbons, "sent") != nil {
			dropped++
			continue
		}
		archived := hasStanzaID(st, bare.String())
		switch {
		case archived && (queried || others):
			dropped++
		case others:
			s.bounceUnacked(ctx, st, stanza.ErrText(stanza.RecipientUnavailable, "the recipient's connection was lost"))
			bounced++
		default:
			from, _ := jid.Parse(st.From())
			v := h.bus().Fire(ctx, &event.Event{Name: eventOffline, Host: h.name, Origin: localOrigin{h.jid},
				Stanza: st, To: bare, From: from, Data: u.Sent})
			if _, isErr := v.Err(); v.Stopped() && !isErr || archived {
				stored++
				continue
			}
			s.bounceUnacked(ctx, st, stanza.ErrText(stanza.RecipientUnavailable, "the recipient's connection was lost"))
			bounced++
		}
	}
	sess.Logger().Info("unacknowledged stanzas handled", "stored", stored, "bounced", bounced, "dropped", dropped)
}

// bounceUnacked returns an error for st to its sender, from the user.
func (s *Server) bounceUnacked(ctx context.Context, st *stanza.Element, e stanza.Error) {
	if st.From() == "" || st.To() == "" {
		return
	}
	_ = s.RouteFromServer(ctx, stanza.ErrorReply(st, e))
}

// hasStanzaID reports whether st carries the stanza-id of by's archive.
func hasStanzaID(st *stanza.Element, by string) bool {
	for c := range st.Elements {
		if c.Space == nsSID && c.Name == "stanza-id" && c.Attr("by") == by {
			return true
		}
	}
	return false
}

// handovers are the users whose ending sessions are handing over their
// unacknowledged stanzas (XEP-0198 §4): from the session's unbinding to
// the end of Unacked, messages routed to such a user wait, so that the
// older stanzas reach offline storage before the newer ones. The wait is
// bounded: a handover stuck behind a slow write delays, never blocks.
type handovers struct {
	active atomic.Int32 // len(m), read without the lock on every message
	mu     sync.Mutex
	m      map[string]*handover
}

type handover struct {
	done chan struct{}
	refs int // sessions of the user handing over
}

// handoverKey marks the context of a handover with its user.
type handoverKey struct{}

// maxHandoverWait bounds how long a message waits for a handover.
const maxHandoverWait = 5 * time.Second

func (hs *handovers) begin(user string) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.m == nil {
		hs.m = make(map[string]*handover)
	}
	h := hs.m[user]
	if h == nil {
		h = &handover{done: make(chan struct{})}
		hs.m[user] = h
		hs.active.Add(1)
	}
	h.refs++
}

func (hs *handovers) end(user string) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	h := hs.m[user]
	if h == nil {
		return
	}
	if h.refs--; h.refs == 0 {
		delete(hs.m, user)
		hs.active.Add(-1)
		close(h.done)
	}
}

// wait returns once user has no handover in progress (or after
// maxHandoverWait, or when ctx ends).
func (hs *handovers) wait(ctx context.Context, user string) {
	if ctx.Value(handoverKey{}) == user {
		return // routed by that handover
	}
	hs.mu.Lock()
	h := hs.m[user]
	hs.mu.Unlock()
	if h == nil {
		return
	}
	t := time.NewTimer(maxHandoverWait)
	defer t.Stop()
	select {
	case <-h.done:
	case <-t.C:
	case <-ctx.Done():
	}
}
