package module

import (
	"context"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Stanza event names (fired on the destination host's bus unless noted):
//
//	pre-<kind>/<dest>   client-originated stanza, on the origin's host, before routing
//	<kind>/<dest>       stanza addressed to a local JID
//	iq/<dest>/<ns>:<n>  iq get/set with payload <n xmlns=ns>, fired before iq/<dest>
//	presence/self       presence without 'to' from a client (broadcast)
//	route/remote        stanza for a non-local domain (global bus)
//	stanza/in           any stanza for a local JID, before all of the above on
//	                    the destination host (policy: blocking, filters)
//
// kind is message, presence or iq; dest is bare, full or host.
const (
	EventRouteRemote = "route/remote"
	EventStanzaIn    = "stanza/in"
	EventPresenceOut = "presence/self"
)

// Lifecycle events on a host's bus (Data is a Session unless noted).
const (
	EventSessionBound  = "session/bound"  // resource bound
	EventSessionClosed = "session/closed" // session gone (Data is a Session)
	EventUserCreated   = "user/created"   // Data is a UserEvent
	EventUserDeleted   = "user/deleted"   // Data is a UserEvent; modules delete their data
	EventHostActivated = "host/activated" // all modules of the host provisioned
	EventIdleCheck     = "session/idle"   // a session had no traffic for the idle timeout
	// EventSessionResumed: a hibernated session was resumed on a new
	// connection (XEP-0198).
	EventSessionResumed = "session/resumed"
	// EventMessageHibernated: a message was kept for a hibernated
	// session, to be written if the client resumes (XEP-0198), or was
	// left unacknowledged by a session that just hibernated. Stanza is
	// a copy, To the user's bare JID, Data the Session. Fired on a
	// goroutine of its own (mod.push notifies the user's devices).
	EventMessageHibernated = "message/hibernated"
)

// UserEvent is the payload of user/* events.
type UserEvent struct {
	User jid.JID // bare
}

// StanzaEvent builds the event name for kind and dest ("message", "bare" → "message/bare").
func StanzaEvent(kind, dest string) string { return kind + "/" + dest }

// IQEvent names the payload-specific event of an iq get/set.
func IQEvent(dest, ns, local string) string { return "iq/" + dest + "/" + ns + ":" + local }

// OnIQ hooks iq get or set (typ) requests carrying payload name addressed to
// dest ("host", "bare" or "full"). fn answers with Reply/ReplyError helpers.
func OnIQ(h Host, dest, typ, ns, local string, prio int, fn event.Handler) {
	h.Hook(IQEvent(dest, ns, local), prio, func(ctx context.Context, ev *event.Event) event.Verdict {
		if ev.Stanza.Type() != typ {
			return event.Continue
		}
		return fn(ctx, ev)
	})
}

// Reply sends an IQ result for ev's request, carrying payload (may be nil),
// and returns Handled.
func Reply(ctx context.Context, h Host, ev *event.Event, payload *stanza.Element) event.Verdict {
	// A request without 'to' was addressed to the account: the result has
	// no 'from' either (ResultReply swaps the attributes).
	reply(ctx, h, ev, stanza.ResultReply(ev.Stanza, payload))
	return event.Handled
}

// ReplyError answers ev's stanza with an error and returns Handled.
func ReplyError(ctx context.Context, h Host, ev *event.Event, e stanza.Error) event.Verdict {
	r := stanza.ErrorReply(ev.Stanza, e)
	reply(ctx, h, ev, r)
	return event.Handled
}

func reply(ctx context.Context, h Host, ev *event.Event, r *stanza.Element) {
	if s, ok := ev.Origin.(Session); ok && s.JID().String() == r.To() {
		_ = h.Deliver(ctx, s, r)
		return
	}
	if r.To() == "" {
		return
	}
	_ = h.Route(ctx, r)
}

// SessionOf returns ev's origin as a local client session, if it is one.
func SessionOf(ev *event.Event) (Session, bool) {
	s, ok := ev.Origin.(Session)
	return s, ok
}

// StoreTimeout bounds the storage calls one handler makes (STYLE §7: every
// storage call gets a deadline).
const StoreTimeout = 10 * time.Second

// Bounded gives fn's context a deadline of StoreTimeout. Use it for
// handlers that touch storage on every call; a handler on a hot path that
// only sometimes does should set the deadline around those calls instead
// (a deadline costs a timer).
func Bounded(fn event.Handler) event.Handler {
	return func(ctx context.Context, ev *event.Event) event.Verdict {
		ctx, cancel := context.WithTimeout(ctx, StoreTimeout)
		defer cancel()
		return fn(ctx, ev)
	}
}

// OnUserDeleted calls fn with the bare JID of each deleted account of h, so
// that the module deletes the user's data. fn's context has a deadline.
func OnUserDeleted(h Host, fn func(ctx context.Context, user jid.JID)) {
	h.Hook(EventUserDeleted, event.PrioDefault, Bounded(func(ctx context.Context, ev *event.Event) event.Verdict {
		var user jid.JID
		switch d := ev.Data.(type) {
		case UserEvent:
			user = d.User
		case *UserEvent:
			if d != nil {
				user = d.User
			}
		}
		if user.Local() != "" {
			fn(ctx, user)
		}
		return event.Continue
	}))
}
