// Package last implements XEP-0012 (Last Activity, version 2.0).
//
//   - Query to the host (§5): the seconds since the server started.
//   - Query to a user's bare JID (§3), answered by the server: 0 when the
//     user has a connected or available resource; otherwise the seconds
//     since the user's last session ended, with the status text of the
//     unavailable presence that session sent, if any; item-not-found when
//     no session was ever recorded; service-unavailable when the account
//     does not exist. Only the user and contacts subscribed to the user's
//     presence may ask; others get forbidden.
//   - Query to a full JID (§4): forbidden for requesters not allowed to see
//     the user's presence; otherwise left to routing (the core delivers it
//     to the client, or answers service-unavailable).
//
// "Subscribed" is decided by the roster module's published API
// (h.Lookup("roster")); without it only the user may ask.
//
// The logout time and status are recorded on session/closed in the KeyVal
// store "last". Not implemented: idle time of connected resources.
package last

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// NS is the jabber:iq:last namespace (also the disco feature).
const NS = "jabber:iq:last"

const (
	storeName = "last"
	// statusKey is the session value holding the status of the unavailable
	// presence the client sent, recorded when the session closes.
	statusKey = "last.status"
)

// prioStatus runs the presence/self handler before mod.presence's handler
// at event.PrioDefault, which may stop the chain. It only reads the stanza.
const prioStatus = event.PrioDefault + 100

func init() { module.Register(Last{}) }

// Last is the last activity module. It has no options.
type Last struct {
	h     module.Host
	store storage.KeyVal
	now   func() time.Time
}

// Info implements module.Module.
func (Last) Info() module.Info {
	return module.Info{ID: "mod.last", New: func() module.Module { return new(Last) }}
}

// record is what the store holds per user.
type record struct {
	Time   int64  `json:"time"` // Unix seconds of the last logout
	Status string `json:"status,omitempty"`
}

// Provision wires the module to the host.
func (l *Last) Provision(h module.Host) error {
	l.h = h
	l.store = h.Store(storeName).KeyVal()
	if l.now == nil {
		l.now = time.Now
	}
	h.AddFeature(NS)
	// §9 "Determining Support": accounts answer queries too (to the user
	// and subscribed contacts, the same entities that see the account's
	// disco#info), so the account advertises the feature as well.
	h.AddAccountFeature(NS)
	module.OnIQ(h, "host", stanza.Get, NS, "query", event.PrioDefault, module.Bounded(l.handleHost))
	module.OnIQ(h, "bare", stanza.Get, NS, "query", event.PrioDefault, module.Bounded(l.handleBare))
	module.OnIQ(h, "full", stanza.Get, NS, "query", event.PrioDefault, module.Bounded(l.handleFull))
	h.Hook(module.EventPresenceOut, prioStatus, module.Bounded(l.presence))
	h.Hook(module.EventSessionClosed, event.PrioDefault, module.Bounded(l.sessionClosed))
	module.OnUserDeleted(h, l.userDeleted)
	return nil
}

func query(seconds int64, text string) *stanza.Element {
	q := stanza.New(NS, "query", "seconds", strconv.FormatInt(max(seconds, 0), 10))
	return q.AddText(text)
}

// handleHost answers with the uptime (§5).
func (l *Last) handleHost(ctx context.Context, ev *event.Event) event.Verdict {
	up := l.now().Sub(l.h.Server().Started)
	return module.Reply(ctx, l.h, ev, query(int64(up/time.Second), ""))
}

// subscriptions is the part of the roster module's published API used to
// decide who may see a user's last activity.
type subscriptions interface {
	// Subscribed reports whether contact (bare) has a "from" or "both"
	// subscription in user's roster.
	Subscribed(ctx context.Context, user, contact jid.JID) bool
}

// allowed reports whether from may see user's presence: the user, or a
// contact with a subscription to it (RFC 6121 §3; XEP-0012 §3, §8).
func (l *Last) allowed(ctx context.Context, user, from jid.JID) bool {
	if from.Bare() == user {
		return true
	}
	v, ok := l.h.Lookup("roster")
	if !ok {
		return false
	}
	r, ok := v.(subscriptions)
	if !ok {
		return false
	}
	return r.Subscribed(ctx, user, from.Bare())
}

// handleBare answers for an account (§3).
func (l *Last) handleBare(ctx context.Context, ev *event.Event) event.Verdict {
	user := ev.To.Bare()
	if ev.From.Bare() != user {
		ok, err := l.h.Accounts().Exists(ctx, user.Local())
		if err != nil {
			l.h.Logger().Error("account lookup failed", "user", user.String(), "err", err)
			return module.ReplyError(ctx, l.h, ev, stanza.Err(stanza.InternalServerError))
		}
		if !ok {
			return module.ReplyError(ctx, l.h, ev, stanza.Err(stanza.ServiceUnavailable))
		}
		if !l.allowed(ctx, user, ev.From) {
			return module.ReplyError(ctx, l.h, ev, stanza.Err(stanza.Forbidden))
		}
	}
	if len(l.h.Sessions(user)) > 0 {
		return module.Reply(ctx, l.h, ev, query(0, ""))
	}
	b, err := l.store.Get(ctx, user.Local())
	if errors.Is(err, storage.ErrNotFound) {
		return module.ReplyError(ctx, l.h, ev, stanza.Err(stanza.ItemNotFound))
	}
	var rec record
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		l.h.Logger().Error("last activity load failed", "user", user.String(), "err", err)
		return module.ReplyError(ctx, l.h, ev, stanza.Err(stanza.InternalServerError))
	}
	return module.Reply(ctx, l.h, ev, query(l.now().Unix()-rec.Time, rec.Status))
}

// handleFull refuses queries to a resource from those who may not see the
// user's presence (§4); others go on to the client.
func (l *Last) handleFull(ctx context.Context, ev *event.Event) event.Verdict {
	if l.allowed(ctx, ev.To.Bare(), ev.From) {
		return event.Continue
	}
	return module.ReplyError(ctx, l.h, ev, stanza.Err(stanza.Forbidden))
}

// presence remembers the status of the unavailable presence a client sends.
func (l *Last) presence(ctx context.Context, ev *event.Event) event.Verdict {
	s, ok := module.SessionOf(ev)
	if !ok {
		return event.Continue
	}
	switch ev.Stanza.Type() {
	case "unavailable":
		s.SetValue(statusKey, ev.Stanza.ChildText("", "status"))
	case "":
		s.SetValue(statusKey, nil)
	}
	return event.Continue
}

// sessionClosed records the logout time and status.
func (l *Last) sessionClosed(ctx context.Context, ev *event.Event) event.Verdict {
	s, ok := ev.Data.(module.Session)
	if !ok {
		return event.Continue
	}
	rec := record{Time: l.now().Unix()}
	if st, ok := s.Value(statusKey).(string); ok {
		rec.Status = st
	} else if p := s.Presence(); p != nil && p.Type() == "unavailable" {
		rec.Status = p.ChildText("", "status")
	}
	b, _ := json.Marshal(rec)
	user := s.JID().Bare()
	if err := l.store.Set(ctx, user.Local(), b); err != nil {
		l.h.Logger().Error("last activity save failed", "user", user.String(), "err", err)
	}
	return event.Continue
}

func (l *Last) userDeleted(ctx context.Context, user jid.JID) {
	if err := l.store.Delete(ctx, user.Local()); err != nil {
		l.h.Logger().Error("last activity purge failed", "user", user.String(), "err", err)
	}
}
