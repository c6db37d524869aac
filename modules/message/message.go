// Package message routes message stanzas addressed to local users, following
// RFC 6121 §8.5.1 (no such user), §8.5.2 (bare JID) and §8.5.3 (full JID).
//
// Bare JID (§8.5.2.1.1, §8.5.2.2.1):
//   - normal and chat: delivered to the available resources with the highest
//     non-negative priority (all of them when several share it). When there
//     is none (no session, only connected sessions without presence, or only
//     negative priorities) the module fires EventOffline so that an offline
//     storage module can keep the message; if no handler stops that event the
//     message is bounced with service-unavailable.
//   - headline: delivered to every available resource with a non-negative
//     priority; silently dropped when there is none.
//   - groupchat: never delivered; bounced with service-unavailable.
//   - error: silently dropped.
//
// Full JID (§8.5.3): delivered to the session bound to that JID if there is
// one (available or merely connected). Otherwise chat messages are handled as
// if sent to the bare JID, normal and groupchat messages are bounced with
// service-unavailable, headline and error messages are silently dropped.
//
// Messages to an account that does not exist are bounced with
// service-unavailable (§8.5.1). Messages to the host itself (message/host)
// are left to other modules and the core's fallback.
//
// The module does not do policy (blocking, spam), carbons or archiving:
// those modules hook the same events at a higher priority.
package message

import (
	"context"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// EventOffline is fired on the recipient's host when a chat or normal
// message for an existing local account finds no available resource with a
// non-negative priority. Stanza is the message (not to be mutated: copy
// first), To the recipient's bare JID, From the sender, Origin the sender's
// origin. Data may be the time.Time the message was first sent, when the
// core hands over a message a session never acknowledged (XEP-0198). A
// handler that stores the message returns Handled; one that wants
// the message bounced returns event.Error(...). If no handler stops the
// event, the message is bounced with service-unavailable.
const EventOffline = "message/offline"

// Message types (RFC 6121 §5.2.2). A missing type means normal.
const (
	typeNormal    = "normal"
	typeChat      = "chat"
	typeGroupchat = "groupchat"
	typeHeadline  = "headline"
	typeError     = "error"
)

func init() { module.Register(Message{}) }

// Message is the message routing module. It has no options.
type Message struct {
	h module.Host
}

// Info implements module.Module.
func (Message) Info() module.Info {
	return module.Info{ID: "mod.message", New: func() module.Module { return new(Message) }}
}

// Provision hooks message/bare and message/full.
func (m *Message) Provision(h module.Host) error {
	m.h = h
	h.Hook(module.StanzaEvent(stanza.KindMessage, "bare"), event.PrioDefault, m.toBare)
	h.Hook(module.StanzaEvent(stanza.KindMessage, "full"), event.PrioDefault, m.toFull)
	return nil
}

func msgType(st *stanza.Element) string {
	if t := st.Type(); t != "" {
		return t
	}
	return typeNormal
}

var serviceUnavailable = event.Error(stanza.Err(stanza.ServiceUnavailable))

// toBare handles message/bare (RFC 6121 §8.5.2).
func (m *Message) toBare(ctx context.Context, ev *event.Event) event.Verdict {
	return m.routeBare(ctx, ev, ev.To.Bare(), msgType(ev.Stanza))
}

// toFull handles message/full (RFC 6121 §8.5.3).
func (m *Message) toFull(ctx context.Context, ev *event.Event) event.Verdict {
	typ := msgType(ev.Stanza)
	// §8.5.3.1: a session bound to exactly this JID gets the message,
	// whether or not it has sent presence.
	if s := m.h.Session(ev.To); s != nil {
		if err := m.h.Deliver(ctx, s, ev.Stanza); err == nil {
			return event.Handled
		}
	}
	// §8.5.3.2.1: no resource matches.
	switch typ {
	case typeError, typeHeadline:
		return event.Handled // silently ignored
	case typeChat:
		return m.routeBare(ctx, ev, ev.To.Bare(), typ)
	default: // normal, groupchat
		return serviceUnavailable
	}
}

// routeBare applies the bare-JID rules to a message for bare.
func (m *Message) routeBare(ctx context.Context, ev *event.Event, bare jid.JID, typ string) event.Verdict {
	switch typ {
	case typeError:
		return event.Handled // §8.5.2.1.1, §8.5.2.2.1: silently ignored
	case typeGroupchat:
		return serviceUnavailable // never delivered to a bare JID
	}
	sessions := m.h.Sessions(bare)
	if typ == typeHeadline {
		// §8.5.2.1.1: every non-negative available resource; none → ignored.
		for _, s := range sessions {
			if s.Available() && s.Priority() >= 0 {
				_ = m.h.Deliver(ctx, s, ev.Stanza)
			}
		}
		return event.Handled
	}
	// normal, chat (unknown types arrive as normal).
	delivered := 0
	if best := bestPriority(sessions); best >= 0 {
		for _, s := range sessions { // the same choice as top, without a slice
			if s.Available() && s.Priority() == best && m.h.Deliver(ctx, s, ev.Stanza) == nil {
				delivered++
			}
		}
	}
	if delivered > 0 {
		return event.Handled
	}
	// Only this slow path touches storage: give it a deadline (STYLE §7)
	// here rather than on every delivery, which would cost a timer each.
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if len(sessions) == 0 {
		ok, err := m.h.Accounts().Exists(ctx, bare.Local())
		if err != nil {
			m.h.Logger().Error("account lookup failed", "user", bare.String(), "err", err)
			return event.Error(stanza.Err(stanza.InternalServerError))
		}
		if !ok {
			return serviceUnavailable // §8.5.1
		}
	}
	v := m.h.Fire(ctx, &event.Event{Name: EventOffline, Origin: ev.Origin, Stanza: ev.Stanza, To: bare, From: ev.From})
	if v.Stopped() {
		return v
	}
	return serviceUnavailable // §8.5.2.2.1 without offline storage
}

// top returns the available sessions with the highest non-negative
// priority, in binding order: the "most available" resources a message to
// the bare JID goes to (RFC 6121 §8.5.2.1.1).
func top(sessions []module.Session) []module.Session {
	best := bestPriority(sessions)
	if best < 0 {
		return nil
	}
	var out []module.Session
	for _, s := range sessions {
		if s.Available() && s.Priority() == best {
			out = append(out, s)
		}
	}
	return out
}

// bestPriority is the highest non-negative priority of the available
// sessions, or -1 when none is available with a non-negative priority.
func bestPriority(sessions []module.Session) int {
	best := -1
	for _, s := range sessions {
		if s.Available() && s.Priority() > best {
			best = s.Priority()
		}
	}
	return best
}

// storeTimeout bounds the storage calls a handler makes (STYLE §7: every
// storage call gets a deadline).
const storeTimeout = 10 * time.Second
