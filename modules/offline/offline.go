// Package offline implements XEP-0160 (Best Practices for Handling Offline
// Messages, version 1.0.1) with XEP-0203 delayed-delivery stamps.
//
// It stores the messages mod.message hands over through its
// "message/offline" event (a chat or normal message for an existing account
// with no available resource of non-negative priority), stamping each with
// <delay xmlns='urn:xmpp:delay' from='host' stamp='…'>Offline Storage</delay>,
// and delivers them, oldest first, to the first session that sends available
// presence with a non-negative priority; delivered messages are deleted.
//
// Following XEP-0160 §3 it stores only normal and chat messages, and not
// those that carry nothing but XEP-0085 chat states (and threads, hints or
// stanza ids); those are dropped silently. A message carrying the XEP-0334
// <no-store/> hint is not stored (it is bounced like any undeliverable
// message); one carrying <store/> is stored whatever its content. When a
// user already has max_messages stored, further messages are bounced with
// service-unavailable (XEP-0160 §2, step 3), unless mod.mam archived them
// (they carry the archive's XEP-0359 stanza-id): then the event goes on to
// mod.mam, which counts the archived message as stored.
//
// Before delivering, the module fires EventFlush; a handler that stops it
// keeps the messages for later sessions (mod.mam does so for sessions that
// already fetched them from the archive).
//
// Not implemented: XEP-0013 flexible offline retrieval, and expiry of old
// messages. Two sessions sending initial presence at the same instant may
// both receive the stored messages.
package offline

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// Namespaces and names used by the module.
const (
	// Feature is the disco#info feature of XEP-0160 §4.
	Feature = "msgoffline"
	// NSDelay is the XEP-0203 namespace.
	NSDelay = "urn:xmpp:delay"
	// NSHints is the XEP-0334 namespace.
	NSHints = "urn:xmpp:hints"
	// NSChatStates is the XEP-0085 namespace.
	NSChatStates = "http://jabber.org/protocol/chatstates"
	// NSSID is the XEP-0359 namespace (origin-id, stanza-id).
	NSSID = "urn:xmpp:sid:0"

	// eventOffline is fired by mod.message (message.EventOffline).
	eventOffline = "message/offline"
	// EventFlush is fired on the user's host before the stored messages
	// are delivered to a session that sent available presence (Origin and
	// Data are the session, To its bare JID). A handler that stops it
	// (Handled) keeps the messages stored and undelivered for this
	// session: mod.mam does so for sessions that already fetched them from
	// the archive.
	EventFlush = "message/offline/flush"
	// EventStored is fired on the user's host once a message is stored
	// (Stanza is the stored copy, To the user's bare JID, From the
	// sender); mod.push notifies the user's push services from it.
	EventStored = "message/offline/stored"
	// storeName is the archive store holding the messages.
	storeName = "offline"
	// DefaultMaxMessages is max_messages when not configured.
	DefaultMaxMessages = 500
)

// prioDeliver runs the presence/self handler before mod.presence's handler
// at event.PrioDefault, which may stop the chain once it has broadcast the
// presence. The handler only reads the stanza and always continues.
const prioDeliver = event.PrioDefault + 100

func init() { module.Register(Offline{}) }

// Offline is the offline message storage module.
type Offline struct {
	// MaxMessages is how many messages one user may have stored; further
	// messages are bounced with service-unavailable.
	MaxMessages int `json:"max_messages"`

	h       module.Host
	archive storage.Archive
	now     func() time.Time
}

// Info implements module.Module.
func (Offline) Info() module.Info {
	return module.Info{ID: "mod.offline", New: func() module.Module {
		return &Offline{MaxMessages: DefaultMaxMessages}
	}}
}

// Validate implements module.Validator.
func (o *Offline) Validate() error {
	if o.MaxMessages < 1 {
		return errors.New("max_messages: must be at least 1 (disable the module to turn offline storage off)")
	}
	return nil
}

// Provision wires the module to the host.
func (o *Offline) Provision(h module.Host) error {
	o.h = h
	o.archive = h.Store(storeName).Archive()
	if o.now == nil {
		o.now = time.Now
	}
	h.AddFeature(Feature)
	h.Hook(eventOffline, event.PrioDefault, module.Bounded(o.store))
	h.Hook(module.EventPresenceOut, prioDeliver, module.Bounded(o.presence))
	module.OnUserDeleted(h, o.userDeleted)
	return nil
}

// store handles message/offline.
func (o *Offline) store(ctx context.Context, ev *event.Event) event.Verdict {
	st := ev.Stanza
	switch st.Type() {
	case "", "normal", "chat":
	default:
		return event.Continue // XEP-0160 §3: groupchat, headline, error are not stored
	}
	if st.Child(NSHints, "no-store") != nil {
		return event.Continue
	}
	if !worthStoring(st) {
		return event.Handled // chat states alone: dropped, not bounced
	}
	user := ev.To.Local()
	_, total, err := o.archive.Find(ctx, user, storage.Query{Limit: 1, Total: true})
	if err != nil {
		o.h.Logger().Error("offline count failed", "user", ev.To.String(), "err", err)
		return event.Error(stanza.Err(stanza.InternalServerError))
	}
	if total >= o.MaxMessages {
		if archived(st, ev.To.Bare().String()) {
			// The archive (mod.mam) has it: let its handler count that as
			// stored rather than bounce a message the user will find.
			return event.Continue
		}
		return event.Error(stanza.Err(stanza.ServiceUnavailable))
	}
	now := o.now().UTC()
	c := st.Copy()
	stamp := now
	if t, ok := ev.Data.(time.Time); ok && !t.IsZero() && t.Before(now) {
		// A message a session never acknowledged (XEP-0198 §4): the
		// time it was first sent.
		stamp = t
	}
	c.AddChild(stanza.New(NSDelay, "delay", "from", o.h.Name(), "stamp", Stamp(stamp))).AddText("Offline Storage")
	item := storage.Item{When: now, With: ev.From.Bare().String(), Type: "message", Value: []byte(c.String())}
	if _, err := o.archive.Append(ctx, user, item); err != nil {
		o.h.Logger().Error("offline store failed", "user", ev.To.String(), "err", err)
		return event.Error(stanza.Err(stanza.InternalServerError))
	}
	o.h.Fire(ctx, &event.Event{Name: EventStored, Origin: ev.Origin, Stanza: c, To: ev.To.Bare(), From: ev.From})
	return event.Handled
}

// archived reports whether st carries the XEP-0359 stanza-id of the
// user's archive (by = the user's bare JID), which mod.mam adds once the
// message is archived and strips from anything else claiming it.
func archived(st *stanza.Element, by string) bool {
	for c := range st.Elements {
		if c.Space == NSSID && c.Name == "stanza-id" && c.Attr("by") == by {
			return true
		}
	}
	return false
}

// worthStoring reports whether a message has content beyond chat states,
// threads, hints and stanza ids (XEP-0160 §3).
func worthStoring(st *stanza.Element) bool {
	if st.Child(NSHints, "store") != nil {
		return true
	}
	for c := range st.Elements {
		switch c.Space {
		case NSChatStates, NSHints, NSSID:
			continue
		case stanza.NSClient, stanza.NSServer:
			if c.Name == "thread" || c.Name == "error" {
				continue
			}
		}
		return true
	}
	return false
}

// Stamp formats t as an XEP-0082 DateTime in UTC.
func Stamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// presence handles presence/self: available presence with a non-negative
// priority flushes the stored messages to that session (XEP-0160 §2, step 5).
func (o *Offline) presence(ctx context.Context, ev *event.Event) event.Verdict {
	st := ev.Stanza
	if st.Type() != "" {
		return event.Continue
	}
	s, ok := module.SessionOf(ev)
	if !ok || priority(st) < 0 {
		return event.Continue
	}
	bare := s.JID().Bare()
	if o.h.Fire(ctx, &event.Event{Name: EventFlush, Origin: s, To: bare, From: bare, Data: s}).Stopped() {
		return event.Continue
	}
	o.flush(ctx, s)
	return event.Continue
}

// priority is the presence's <priority/> (RFC 6121 §4.7.2.3), 0 if absent or invalid.
func priority(p *stanza.Element) int {
	v, err := strconv.Atoi(strings.TrimSpace(p.ChildText("", "priority")))
	if err != nil || v < -128 || v > 127 {
		return 0
	}
	return v
}

// flush delivers every stored message of s's user to s, oldest first, and
// deletes what was delivered.
func (o *Offline) flush(ctx context.Context, s module.Session) {
	user := s.JID().Local()
	items, _, err := o.archive.Find(ctx, user, storage.Query{})
	if err != nil {
		o.h.Logger().Error("offline load failed", "user", s.JID().Bare().String(), "err", err)
		return
	}
	if len(items) == 0 {
		return
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		el, err := xmlstream.ParseNS(it.Value, stanza.NSClient)
		if err != nil {
			// Unreadable: drop it rather than fail on it forever.
			o.h.Logger().Warn("offline message unreadable, dropped", "user", s.JID().Bare().String(), "id", it.ID, "err", err)
			ids = append(ids, it.ID)
			continue
		}
		if err := o.h.Deliver(ctx, s, el); err != nil {
			break // the session is going away: keep the rest
		}
		ids = append(ids, it.ID)
	}
	if len(ids) == 0 {
		return
	}
	if _, err := o.archive.Delete(ctx, user, storage.Query{IDs: ids}); err != nil {
		o.h.Logger().Error("offline delete failed", "user", s.JID().Bare().String(), "err", err)
	}
}

// userDeleted removes a deleted account's messages.
func (o *Offline) userDeleted(ctx context.Context, user jid.JID) {
	if _, err := o.archive.Delete(ctx, user.Local(), storage.Query{}); err != nil {
		o.h.Logger().Error("offline purge failed", "user", user.String(), "err", err)
	}
}
