package mam

import (
	"context"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// itemType is the Type of archived messages.
const itemType = "message"

// payloads are the child elements (namespace, name; "" name for any) that
// make a chat or normal message worth archiving besides <body/>.
var payloads = []struct{ space, name string }{
	{stanza.NSClient, "subject"},
	{"eu.siacs.conversations.axolotl", "encrypted"}, // OMEMO (legacy)
	{"urn:xmpp:omemo:2", "encrypted"},               // OMEMO 2
	{"urn:xmpp:openpgp:0", "openpgp"},               // XEP-0373
	{"jabber:x:encrypted", "x"},                     // XEP-0027
	{"urn:xmpp:eme:0", "encryption"},                // XEP-0380
	{"jabber:x:conference", "x"},                    // XEP-0249 invitation
	{"urn:xmpp:message-retract:1", "retract"},       // XEP-0424
	{"urn:xmpp:reactions:0", "reactions"},           // XEP-0444
	{"urn:xmpp:jingle-message:0", ""},               // XEP-0353 calls
	{"urn:xmpp:jingle-message:1", ""},
}

// archivable reports whether st is a message this module archives (see
// the package documentation).
func archivable(st *stanza.Element) bool {
	typ := st.Type()
	switch typ {
	case stanza.ErrorT, "groupchat":
		return false
	}
	if st.Child(NSHints, "no-store") != nil || st.Child(NSHints, "no-permanent-store") != nil {
		return false
	}
	if st.Child(NSHints, "store") != nil {
		return true
	}
	if typ != "" && typ != "normal" && typ != "chat" {
		return false // headline
	}
	for c := range st.Elements {
		if isStanzaNS(c.Space) && c.Name == "body" {
			return true
		}
		if c.Space == "http://jabber.org/protocol/muc#user" && c.Child(c.Space, "invite") != nil {
			return true // XEP-0045 mediated invitation
		}
		for _, p := range payloads {
			if (c.Space == p.space || isStanzaNS(c.Space) && isStanzaNS(p.space)) && (p.name == "" || c.Name == p.name) {
				return true
			}
		}
	}
	return false
}

func isStanzaNS(s string) bool { return s == stanza.NSClient || s == stanza.NSServer }

// ownStanzaID returns st's <stanza-id/> claiming to be assigned by by, or nil.
func ownStanzaID(st *stanza.Element, by string) *stanza.Element {
	for c := range st.Elements {
		if c.Space == NSSID && c.Name == "stanza-id" && c.Attr("by") == by {
			return c
		}
	}
	return nil
}

// withoutStanzaIDs returns st without its <stanza-id by='by'/> children: st
// itself when it has none, else a copy of the top element (children are
// shared, st is left as it was).
func withoutStanzaIDs(st *stanza.Element, by string) *stanza.Element {
	if ownStanzaID(st, by) == nil {
		return st
	}
	c := st.ShallowCopy()
	c.Children = make([]stanza.Node, 0, len(st.Children))
	for _, n := range st.Children {
		if n.El != nil && n.El.Space == NSSID && n.El.Name == "stanza-id" && n.El.Attr("by") == by {
			continue
		}
		c.Children = append(c.Children, n)
	}
	return c
}

// withStanzaID returns a copy of st's top element with <stanza-id/> appended.
func withStanzaID(st *stanza.Element, by, id string) *stanza.Element {
	c := st.ShallowCopy()
	c.Children = make([]stanza.Node, len(st.Children), len(st.Children)+1)
	copy(c.Children, st.Children)
	c.AddChild(stanza.New(NSSID, "stanza-id", "by", by, "id", id))
	return c
}

// incoming handles message/bare and message/full: a message for a local
// user is archived in the user's archive and goes on with a stanza-id.
func (m *MAM) incoming(ctx context.Context, ev *event.Event) event.Verdict {
	user := ev.To.Bare()
	by := user.String()
	// XEP-0359 §Business Rules 2: nobody else may claim our archive's ids.
	ev.Stanza = withoutStanzaIDs(ev.Stanza, by)
	st := ev.Stanza
	if !archivable(st) || !m.willBeAccepted(ctx, ev, user) {
		return event.Continue
	}
	return m.store(ctx, ev, user, ev.From)
}

// willBeAccepted reports whether mod.message will deliver or offer for
// offline storage a message of an archivable type for user, rather than
// bounce it: messages to accounts that do not exist, and normal messages
// to a full JID that is not connected, are not archived.
func (m *MAM) willBeAccepted(ctx context.Context, ev *event.Event, user jid.JID) bool {
	if ev.To.IsFull() && m.h.Session(ev.To) != nil {
		return true
	}
	if ev.To.IsFull() && ev.Stanza.Type() != "chat" {
		return false // RFC 6121 §8.5.3.2.1
	}
	if len(m.h.Sessions(user)) > 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, module.StoreTimeout)
	defer cancel()
	ok, err := m.h.Accounts().Exists(ctx, user.Local())
	if err != nil {
		m.h.Logger().Error("account lookup failed", "user", user.String(), "err", err)
		return false
	}
	return ok
}

// outgoing handles pre-message/bare and pre-message/full: a message a local
// client sends is archived in its user's archive. The stanza-id added for
// the carbon copies is removed again by stripOutgoing.
func (m *MAM) outgoing(ctx context.Context, ev *event.Event) event.Verdict {
	if _, ok := module.SessionOf(ev); !ok {
		return event.Continue
	}
	user := ev.From.Bare()
	ev.Stanza = withoutStanzaIDs(ev.Stanza, user.String())
	if ev.To.IsZero() || ev.To.Bare() == user {
		return event.Continue // to oneself: archived once, as incoming
	}
	if ev.To.Local() == "" {
		return event.Continue // to a service, not a conversation
	}
	if !archivable(ev.Stanza) {
		return event.Continue
	}
	return m.store(ctx, ev, user, ev.To)
}

// stripOutgoing removes the stanza-id outgoing added, before the message
// leaves for its recipient (XEP-0313 §Communicating the archive ID).
func (m *MAM) stripOutgoing(_ context.Context, ev *event.Event) event.Verdict {
	if _, ok := module.SessionOf(ev); ok {
		ev.Stanza = withoutStanzaIDs(ev.Stanza, ev.From.Bare().String())
	}
	return event.Continue
}

// store archives ev.Stanza for user (peer is the other party) if user's
// preferences allow it, and replaces ev.Stanza with a copy carrying the
// stanza-id. A failed write bounces the message.
func (m *MAM) store(ctx context.Context, ev *event.Event, user, peer jid.JID) event.Verdict {
	ctx, cancel := context.WithTimeout(ctx, module.StoreTimeout)
	defer cancel()
	ok, err := m.allowed(ctx, user, peer)
	if err != nil {
		m.h.Logger().Error("archive preferences lookup failed", "user", user.String(), "err", err)
		return event.Error(stanza.Err(stanza.InternalServerError))
	}
	if !ok {
		return event.Continue
	}
	st := ev.Stanza
	item := storage.Item{When: m.now(), With: peer.Bare().String(), Type: itemType, Value: st.Append(nil, stanza.NSClient)}
	id, err := m.archive.Append(ctx, user.Local(), item)
	if err != nil {
		m.h.Logger().Error("archiving failed", "user", user.String(), "err", err)
		return event.Error(stanza.Err(stanza.InternalServerError))
	}
	ev.Stanza = withStanzaID(st, user.String(), id)
	return event.Continue
}
