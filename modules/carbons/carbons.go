// Package carbons implements XEP-0280 Message Carbons (version 1.0.1),
// with the complete rule set of §6.1, advertised as urn:xmpp:carbons:rules:0,
// and the XEP-0334 <no-copy/> hint.
//
// A client enables or disables carbons for its session with an iq set of
// <enable/> or <disable/> (repeating either is not an error, §9.1). Then:
//
//   - Received: a message for one of the user's JIDs (bare or full) that is
//     eligible is copied, wrapped in <received><forwarded/></received>, to
//     every carbons-enabled session of the user that does not get the
//     message itself under RFC 6121 routing (§7): for a bare JID those are
//     the available resources of highest non-negative priority, for a full
//     JID the session bound to it (a chat message to a gone resource is
//     routed as to the bare JID, other types are bounced and not copied).
//   - Sent: an eligible message a local client sends is copied, wrapped in
//     <sent><forwarded/></sent>, to every other carbons-enabled session of
//     the user (never back to the sender, §8).
//
// Eligible (§6.1): not with <private xmlns='urn:xmpp:carbons:2'/> nor the
// <no-copy/> hint (§10, XEP-0334); and of type chat; or normal with a body;
// or carrying XEP-0184 receipts, XEP-0085 chat states or XEP-0333 markers;
// or a XEP-0249 or XEP-0045 mediated invitation; or an error in answer to
// such a message (an error carrying such content, or an incoming error from
// a bare JID: the bounce of a message sent to an account). Groupchat and
// headline messages are never copied; a private message from a MUC
// occupant (incoming, from a full JID, with a muc#user <x/>) is not copied
// (the MUC service sends it to every joined client), one to an occupant is.
//
// Copies are written directly to the sessions: they never bounce, so no
// error can go back to the original sender (§9.3).
//
// Not implemented: limiting copies of MUC private messages to the
// resources joined to the room (the §6.1 note on multi-session nicks).
package carbons

import (
	"context"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Namespaces.
const (
	NS         = "urn:xmpp:carbons:2"
	NSRules    = "urn:xmpp:carbons:rules:0"
	NSForward  = "urn:xmpp:forward:0"
	NSHints    = "urn:xmpp:hints"
	NSMUCUser  = "http://jabber.org/protocol/muc#user"
	NSReceipts = "urn:xmpp:receipts"
	NSStates   = "http://jabber.org/protocol/chatstates"
	NSMarkers  = "urn:xmpp:chat-markers:0"
	NSInvite   = "jabber:x:conference"
)

// SessionEnabled is the module.Session value key set (to true) on sessions
// that enabled carbons.
const SessionEnabled = "carbons/enabled"

// prioCopy runs the copying after mod.mam (PrioDefault+200), so that copies
// carry the archive's stanza-id, and before delivery by mod.message
// (PrioDefault), which stops the chain.
const prioCopy = event.PrioDefault + 100

func init() { module.Register(Carbons{}) }

// Carbons is the message carbons module. It has no options.
type Carbons struct {
	h module.Host
}

// Info implements module.Module.
func (Carbons) Info() module.Info {
	return module.Info{ID: "mod.carbons", New: func() module.Module { return new(Carbons) }}
}

// Provision wires the module to the host.
func (c *Carbons) Provision(h module.Host) error {
	c.h = h
	h.AddFeature(NS)
	h.AddFeature(NSRules)
	for _, dest := range []string{"bare", "host"} {
		module.OnIQ(h, dest, stanza.Set, NS, "enable", event.PrioDefault, c.toggle)
		module.OnIQ(h, dest, stanza.Set, NS, "disable", event.PrioDefault, c.toggle)
	}
	for _, dest := range []string{"bare", "full"} {
		h.Hook(module.StanzaEvent(stanza.KindMessage, dest), prioCopy, c.received)
	}
	for _, dest := range []string{"bare", "full", "host"} {
		h.Hook("pre-"+module.StanzaEvent(stanza.KindMessage, dest), prioCopy, c.sent)
	}
	return nil
}

// toggle answers <enable/> and <disable/> (§4, §5): only a session of this
// host may change its own setting.
func (c *Carbons) toggle(ctx context.Context, ev *event.Event) event.Verdict {
	s, ok := module.SessionOf(ev)
	if !ok || (ev.To.Local() != "" && ev.To.Bare() != s.JID().Bare()) || (ev.To.Local() == "" && ev.To.Domain() != c.h.Name()) {
		return module.ReplyError(ctx, c.h, ev, stanza.Err(stanza.NotAllowed))
	}
	if ev.Stanza.FirstChild().Name == "enable" {
		s.SetValue(SessionEnabled, true)
	} else {
		s.SetValue(SessionEnabled, nil)
	}
	return module.Reply(ctx, c.h, ev, nil)
}

func enabled(s module.Session) bool { return s.Value(SessionEnabled) != nil }

// received handles message/bare and message/full (§7).
func (c *Carbons) received(ctx context.Context, ev *event.Event) event.Verdict {
	st := ev.Stanza
	if !eligible(st, false) {
		return event.Continue
	}
	bare := ev.To.Bare()
	sessions := c.h.Sessions(bare)
	if len(sessions) == 0 {
		return event.Continue
	}
	// Who gets the message itself (the same choice as mod.message).
	var target module.Session
	if ev.To.IsFull() {
		target = c.h.Session(ev.To)
	}
	if target == nil && st.Type() != "chat" && (ev.To.IsFull() || st.Type() == stanza.ErrorT) {
		return event.Continue // bounced or dropped by routing: nothing to copy
	}
	best := -1 // the priority of the resources that get it, if no target
	if target == nil {
		best = bestPriority(sessions)
	}
	var carbon *stanza.Element
	for _, s := range sessions {
		if !enabled(s) || s == target || (best >= 0 && s.Available() && s.Priority() == best) {
			continue
		}
		if carbon == nil {
			carbon = wrap(bare, "received", st)
		}
		c.send(ctx, s, carbon)
	}
	return event.Continue
}

// sent handles pre-message/* of a local client (§8).
func (c *Carbons) sent(ctx context.Context, ev *event.Event) event.Verdict {
	origin, ok := module.SessionOf(ev)
	if !ok || !eligible(ev.Stanza, true) {
		return event.Continue
	}
	bare := ev.From.Bare()
	var carbon *stanza.Element
	for _, s := range c.h.Sessions(bare) {
		if s == origin || !enabled(s) {
			continue
		}
		if carbon == nil {
			msg := ev.Stanza.ShallowCopy()
			if msg.To() == "" {
				msg.SetAttr("to", bare.String()) // RFC 6120 §10.3.3: to the account
			}
			carbon = wrap(bare, "sent", msg)
		}
		c.send(ctx, s, carbon)
	}
	return event.Continue
}

// send writes carbon to s, addressed to its full JID.
func (c *Carbons) send(ctx context.Context, s module.Session, carbon *stanza.Element) {
	m := carbon.ShallowCopy()
	m.SetAttr("to", s.JID().String())
	_ = c.h.Deliver(ctx, s, m)
}

// wrap builds the carbon copy of msg (§7, §8): a message from the user's
// bare JID, of msg's type, with <received/> or <sent/> holding the
// XEP-0297 forwarded message. msg itself is not modified; its attributes
// are copied so that later changes of the original do not show.
func wrap(bare jid.JID, dir string, msg *stanza.Element) *stanza.Element {
	inner := msg.ShallowCopy()
	inner.Space = stanza.NSClient
	m := stanza.New(stanza.NSClient, "message", "from", bare.String(), "type", msg.Type())
	m.AddChild(stanza.New(NS, dir)).AddChild(stanza.New(NSForward, "forwarded")).AddChild(inner)
	return m
}

func typeOf(st *stanza.Element) string {
	if t := st.Type(); t != "" {
		return t
	}
	return "normal"
}

// eligible applies the rules of §6.1 (and §10, XEP-0334) to a message sent
// by a local client (outgoing) or addressed to a local user.
func eligible(st *stanza.Element, outgoing bool) bool {
	if st.Child(NS, "private") != nil || st.Child(NSHints, "no-copy") != nil {
		return false
	}
	typ := typeOf(st)
	switch typ {
	case "groupchat", "headline":
		return false
	}
	var body, im, invite, mucUser bool
	for el := range st.Elements {
		switch el.Space {
		case stanza.NSClient, stanza.NSServer:
			body = body || el.Name == "body"
		case NSReceipts, NSStates, NSMarkers:
			im = true
		case NSInvite:
			invite = invite || el.Name == "x"
		case NSMUCUser:
			if el.Name == "x" {
				mucUser = true
				invite = invite || el.Child(NSMUCUser, "invite") != nil
			}
		}
	}
	if invite {
		return true
	}
	if !outgoing && mucUser {
		// A private message from an occupant: the MUC service already
		// sends it to each joined resource.
		if from, err := jid.Parse(st.From()); err == nil && from.IsFull() {
			return false
		}
	}
	switch typ {
	case "chat":
		return true
	case stanza.ErrorT:
		if body || im {
			return true // the original content is included
		}
		if !outgoing {
			// The bounce of a message to an account: from a bare JID.
			from, err := jid.Parse(st.From())
			return err == nil && from.Local() != "" && from.IsBare()
		}
		return false
	default: // normal
		return body || im
	}
}

// bestPriority is the highest non-negative priority of the available
// sessions, or -1 when none is available with a non-negative priority
// (RFC 6121 §8.5.2.1.1, as mod.message delivers).
func bestPriority(sessions []module.Session) int {
	best := -1
	for _, s := range sessions {
		if s.Available() && s.Priority() > best {
			best = s.Priority()
		}
	}
	return best
}
