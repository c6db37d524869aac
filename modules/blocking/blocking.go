// Package blocking implements XEP-0191 (Blocking Command, version 1.3).
//
// A user manages a block list with IQs to their own account (no 'to', or
// their bare JID): <blocklist/> get, <block/> and <unblock/> set. Every
// change is pushed to the user's sessions that have retrieved the block list
// (XEP-0191 §3.3). Block list items match senders as XEP-0191 §5 says:
// user@domain/resource, user@domain (any resource), domain/resource, domain
// (the domain and everything at it). Communication between a user's own
// resources is never blocked.
//
// Enforcement, at event.PrioPolicy so that it runs before every delivering
// handler:
//   - outbound (pre-message/*, pre-iq/*, pre-presence/*): a client's stanza
//     to a JID it blocks is not routed but answered with <not-acceptable/>
//     plus <blocked xmlns='urn:xmpp:blocking:errors'/>; errors, IQ results
//     and unavailable presence are dropped silently;
//   - inbound (message/bare|full, iq/bare|full, presence/bare|full): from a
//     blocked JID, presence is dropped, messages are bounced with
//     service-unavailable (error messages dropped), IQ get/set are bounced
//     with service-unavailable (other IQs dropped), so the user appears
//     offline;
//   - presence that modules route on a user's behalf (broadcasts, probes)
//     never passes pre-presence: it is dropped on arrival (presence/bare|full)
//     or on its way out (route/remote) when the sending user blocks the
//     recipient. Unavailable, unsubscribe and unsubscribed presence is let
//     through (see lowersVisibility).
//
// Blocking a JID sends it unavailable presence from each of the user's
// available resources; unblocking sends it their current presence (§3.3,
// §3.4). When the roster module publishes its API (h.Lookup("roster")),
// that only happens for contacts with a subscription of type from or both;
// without it presence goes to every blocked JID that has a localpart.
//
// Known gap: the core fires iq/<dest>/<ns>:<name> before iq/<dest>, so an IQ
// from a blocked JID to the user's bare JID that another module answers on
// the user's behalf (vCard, last activity…) is answered before this module
// sees it.
//
// Not implemented: XEP-0016 privacy lists, XEP-0377 spam reports.
package blocking

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Namespaces of XEP-0191.
const (
	NS       = "urn:xmpp:blocking"
	NSErrors = "urn:xmpp:blocking:errors"
)

const (
	storeName = "blocking"
	// requestedKey is the session value set once the client has retrieved
	// the block list: only those sessions get pushes.
	requestedKey = "blocking.requested"
)

func init() { module.Register(new(Blocking)) }

// Blocking is the blocking command module. It has no options.
type Blocking struct {
	h     module.Host
	store storage.Map

	// cache holds this host's users' lists (an empty map for most users),
	// so that the checks on every stanza do not read storage. version
	// counts writes: a list loaded while a write happened is not cached.
	mu      sync.RWMutex
	cache   map[string]map[string][]byte
	version uint64
}

// maxCached bounds the cache; past it the cache starts over.
const maxCached = 100000

// Info implements module.Module.
func (*Blocking) Info() module.Info {
	return module.Info{ID: "mod.blocking", New: func() module.Module { return new(Blocking) }}
}

// Checker is published with h.Provide("blocking", …) for modules that answer
// on a user's behalf and want to honour the block list.
type Checker interface {
	// Blocked reports whether user (bare) blocks communication with peer.
	Blocked(ctx context.Context, user, peer jid.JID) (bool, error)
}

// Provision wires the module to the host.
func (b *Blocking) Provision(h module.Host) error {
	b.h = h
	b.store = h.Store(storeName).Map()
	b.cache = map[string]map[string][]byte{}
	h.AddFeature(NS)
	h.Provide("blocking", Checker(b))
	module.OnIQ(h, "bare", stanza.Get, NS, "blocklist", event.PrioDefault, module.Bounded(b.handleGet))
	module.OnIQ(h, "bare", stanza.Set, NS, "block", event.PrioDefault, module.Bounded(b.handleBlock))
	module.OnIQ(h, "bare", stanza.Set, NS, "unblock", event.PrioDefault, module.Bounded(b.handleUnblock))
	for _, kind := range []string{stanza.KindMessage, stanza.KindIQ, stanza.KindPresence} {
		for _, dest := range []string{"bare", "full", "host"} {
			h.Hook("pre-"+module.StanzaEvent(kind, dest), event.PrioPolicy, b.outbound)
		}
	}
	// stanza/in fires before any payload or kind handler, so a blocked
	// JID's IQs to the user's bare JID (vCard, last activity...) are refused too.
	h.Hook(module.EventStanzaIn, event.PrioPolicy, b.inbound)
	h.HookGlobal(module.EventRouteRemote, event.PrioPolicy, b.remote)
	module.OnUserDeleted(h, b.userDeleted)
	return nil
}

// --- block list storage ---------------------------------------------------

// list returns user's block list: canonical JID string → value. The map
// is shared with the cache: callers must not modify it.
func (b *Blocking) list(ctx context.Context, user jid.JID) (map[string][]byte, error) {
	if user.Domain() != b.h.Name() {
		ctx, cancel := context.WithTimeout(ctx, module.StoreTimeout)
		defer cancel()
		return b.storeFor(user.Domain()).All(ctx, user.Local())
	}
	key := user.String()
	b.mu.RLock()
	l, ok := b.cache[key]
	version := b.version
	b.mu.RUnlock()
	if ok {
		return l, nil
	}
	ctx, cancel := context.WithTimeout(ctx, module.StoreTimeout)
	defer cancel()
	l, err := b.store.All(ctx, user.Local())
	if err != nil {
		return nil, err
	}
	if l == nil {
		l = map[string][]byte{}
	}
	b.mu.Lock()
	if b.version == version {
		if len(b.cache) >= maxCached {
			clear(b.cache)
		}
		b.cache[key] = l
	}
	b.mu.Unlock()
	return l, nil
}

// changed drops user's cached list after a write (successful or not).
func (b *Blocking) changed(user jid.JID) {
	b.mu.Lock()
	b.version++
	delete(b.cache, user.String())
	b.mu.Unlock()
}

// storeFor returns the block list store of a local host. Presence routed on
// behalf of a user of another local host fires only on the recipient's
// host, so it is checked here against the sender's host's lists, opened on
// the same driver with that host's scope. (module.Host has no sanctioned
// way to reach another host's store or module instance: this relies on
// storage.Stores being a plain value.)
func (b *Blocking) storeFor(host string) storage.Map {
	if host == b.h.Name() {
		return b.store
	}
	s := b.h.Store(storeName)
	s.Host = host
	return s.Map()
}

// Blocked implements Checker.
func (b *Blocking) Blocked(ctx context.Context, user, peer jid.JID) (bool, error) {
	if user.Local() == "" || peer.IsZero() || peer.Bare() == user.Bare() {
		return false, nil
	}
	l, err := b.list(ctx, user.Bare())
	if err != nil || len(l) == 0 {
		return false, err
	}
	return matches(l, peer), nil
}

// matches applies the XEP-0191 §5 matching order to peer.
func matches(list map[string][]byte, peer jid.JID) bool {
	has := func(s string) bool { _, ok := list[s]; return ok }
	if has(peer.String()) || has(peer.Bare().String()) || has(peer.Domain()) {
		return true
	}
	if r := peer.Resource(); r != "" {
		if dr, err := peer.DomainJID().WithResource(r); err == nil && has(dr.String()) {
			return true
		}
	}
	return false
}

// --- IQ handlers -----------------------------------------------------------

// owner reports whether the request comes from the account it is addressed to.
func owner(ev *event.Event) bool {
	return !ev.From.IsZero() && ev.From.Bare() == ev.To.Bare()
}

func (b *Blocking) handleGet(ctx context.Context, ev *event.Event) event.Verdict {
	if !owner(ev) {
		return module.ReplyError(ctx, b.h, ev, stanza.Err(stanza.Forbidden))
	}
	l, err := b.list(ctx, ev.To.Bare())
	if err != nil {
		b.h.Logger().Error("block list load failed", "user", ev.To.Bare().String(), "err", err)
		return module.ReplyError(ctx, b.h, ev, stanza.Err(stanza.InternalServerError))
	}
	if s, ok := module.SessionOf(ev); ok {
		s.SetValue(requestedKey, true)
	}
	return module.Reply(ctx, b.h, ev, itemsElement("blocklist", slices.Sorted(maps.Keys(l))))
}

func itemsElement(name string, jids []string) *stanza.Element {
	el := stanza.New(NS, name)
	for _, j := range jids {
		el.AddChild(stanza.New(NS, "item", "jid", j))
	}
	return el
}

// items parses the <item jid='…'/> children of a block/unblock element.
func items(el *stanza.Element) ([]jid.JID, *stanza.Error) {
	var out []jid.JID
	for c := range el.Elements {
		if c.Space != NS || c.Name != "item" {
			continue
		}
		j, err := jid.Parse(c.Attr("jid"))
		if err != nil {
			e := stanza.ErrText(stanza.JIDMalformed, "invalid item jid: "+err.Error())
			return nil, &e
		}
		if !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	return out, nil
}

func (b *Blocking) handleBlock(ctx context.Context, ev *event.Event) event.Verdict {
	if !owner(ev) {
		return module.ReplyError(ctx, b.h, ev, stanza.Err(stanza.Forbidden))
	}
	user := ev.To.Bare()
	list, perr := items(ev.Stanza.FirstChild())
	if perr != nil {
		return module.ReplyError(ctx, b.h, ev, *perr)
	}
	if len(list) == 0 {
		return module.ReplyError(ctx, b.h, ev, stanza.ErrText(stanza.BadRequest, "block needs at least one item"))
	}
	old, err := b.list(ctx, user)
	if err != nil {
		b.h.Logger().Error("block list load failed", "user", user.String(), "err", err)
		return module.ReplyError(ctx, b.h, ev, stanza.Err(stanza.InternalServerError))
	}
	stamp := []byte(time.Now().UTC().Format(time.RFC3339))
	kv := make(map[string][]byte, len(list))
	var added []jid.JID
	for _, j := range list {
		kv[j.String()] = stamp
		if _, ok := old[j.String()]; !ok {
			added = append(added, j)
		}
	}
	err = b.store.SetKeys(ctx, user.Local(), kv)
	b.changed(user)
	if err != nil {
		b.h.Logger().Error("block list save failed", "user", user.String(), "err", err)
		return module.ReplyError(ctx, b.h, ev, stanza.Err(stanza.InternalServerError))
	}
	v := module.Reply(ctx, b.h, ev, nil)
	b.push(ctx, user, itemsElement("block", strs(list)))
	for _, j := range added {
		b.sendPresence(ctx, user, j, true)
	}
	return v
}

func (b *Blocking) handleUnblock(ctx context.Context, ev *event.Event) event.Verdict {
	if !owner(ev) {
		return module.ReplyError(ctx, b.h, ev, stanza.Err(stanza.Forbidden))
	}
	user := ev.To.Bare()
	list, perr := items(ev.Stanza.FirstChild())
	if perr != nil {
		return module.ReplyError(ctx, b.h, ev, *perr)
	}
	old, err := b.list(ctx, user)
	if err != nil {
		b.h.Logger().Error("block list load failed", "user", user.String(), "err", err)
		return module.ReplyError(ctx, b.h, ev, stanza.Err(stanza.InternalServerError))
	}
	var removed []jid.JID
	if len(list) == 0 {
		// Unblock all (§3.5).
		for k := range old {
			if j, err := jid.Parse(k); err == nil {
				removed = append(removed, j)
			}
		}
		err = b.store.DeleteUser(ctx, user.Local())
	} else {
		kv := make(map[string][]byte, len(list))
		for _, j := range list {
			kv[j.String()] = nil
			if _, ok := old[j.String()]; ok {
				removed = append(removed, j)
			}
		}
		err = b.store.SetKeys(ctx, user.Local(), kv)
	}
	b.changed(user)
	if err != nil {
		b.h.Logger().Error("block list save failed", "user", user.String(), "err", err)
		return module.ReplyError(ctx, b.h, ev, stanza.Err(stanza.InternalServerError))
	}
	v := module.Reply(ctx, b.h, ev, nil)
	b.push(ctx, user, itemsElement("unblock", strs(list)))
	for _, j := range removed {
		b.sendPresence(ctx, user, j, false)
	}
	return v
}

func strs(js []jid.JID) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.String()
	}
	return out
}

// push sends payload in an IQ set to every session of user that retrieved
// the block list (XEP-0191 §3.3–3.5).
func (b *Blocking) push(ctx context.Context, user jid.JID, payload *stanza.Element) {
	for _, s := range b.h.Sessions(user) {
		if v, _ := s.Value(requestedKey).(bool); !v {
			continue
		}
		iq := stanza.New(stanza.NSClient, "iq", "type", stanza.Set, "id", "push-"+randomID(), "to", s.JID().String())
		iq.AddChild(payload)
		_ = b.h.Deliver(ctx, s, iq)
	}
}

func randomID() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// subscriptions is the part of the roster module's published API used to
// decide whether a contact may receive the user's presence.
type subscriptions interface {
	// Subscribed reports whether contact (bare) has a "from" or "both"
	// subscription in user's roster.
	Subscribed(ctx context.Context, user, contact jid.JID) bool
}

// sendPresence sends, from each available resource of user, unavailable
// presence (blocked) or the current presence (unblocked) to j.
func (b *Blocking) sendPresence(ctx context.Context, user, j jid.JID, blocked bool) {
	if j.Local() == "" || j.Bare() == user {
		return // domains and the user's own JIDs
	}
	if v, ok := b.h.Lookup("roster"); ok {
		if r, ok := v.(subscriptions); ok {
			if !r.Subscribed(ctx, user, j.Bare()) {
				return
			}
		}
	}
	for _, s := range b.h.Sessions(user) {
		if !s.Available() {
			continue
		}
		var p *stanza.Element
		if blocked {
			p = stanza.New(stanza.NSClient, "presence", "type", "unavailable")
		} else if cur := s.Presence(); cur != nil {
			p = cur.ShallowCopy()
		} else {
			continue
		}
		p.SetAttr("from", s.JID().String())
		p.SetAttr("to", j.String())
		if err := b.h.Route(ctx, p); err != nil {
			b.h.Logger().Debug("presence to blocked jid not routed", "to", j.String(), "err", err)
		}
	}
}

// --- enforcement -----------------------------------------------------------

var errBlocked = stanza.Error{Type: stanza.Cancel, Condition: stanza.NotAcceptable, App: stanza.New(NSErrors, "blocked")}

// silent reports whether a stanza must be dropped rather than bounced.
func silent(st *stanza.Element) bool {
	switch st.Name {
	case stanza.KindIQ:
		return st.Type() != stanza.Get && st.Type() != stanza.Set
	case stanza.KindPresence:
		return st.Type() == "unavailable" || st.Type() == "error"
	}
	return stanza.IsError(st)
}

// lowersVisibility reports whether a presence a module routes on a user's
// behalf only takes something away from the recipient: unavailable
// presence (sent on purpose when blocking, §3.3) and the unsubscribe and
// unsubscribed stanzas of a roster removal, which keep both sides'
// subscription states in step. These pass even to a blocked JID.
func lowersVisibility(st *stanza.Element) bool {
	switch st.Type() {
	case "unavailable", "unsubscribe", "unsubscribed":
		return true
	}
	return false
}

// outbound handles pre-<kind>/<dest>: a client sending to a JID it blocks.
func (b *Blocking) outbound(ctx context.Context, ev *event.Event) event.Verdict {
	s, ok := module.SessionOf(ev)
	if !ok || ev.To.IsZero() {
		return event.Continue
	}
	blocked, err := b.Blocked(ctx, s.JID().Bare(), ev.To)
	if err != nil {
		b.h.Logger().Error("block list check failed", "user", s.JID().Bare().String(), "err", err)
		return event.Continue
	}
	if !blocked {
		return event.Continue
	}
	if silent(ev.Stanza) {
		return event.Handled
	}
	return event.Error(errBlocked)
}

// inbound handles <kind>/bare and <kind>/full on the recipient's host.
func (b *Blocking) inbound(ctx context.Context, ev *event.Event) event.Verdict {
	user := ev.To.Bare()
	from := ev.From
	if from.IsZero() || from.Bare() == user {
		return event.Continue
	}
	st := ev.Stanza
	if st.Name == stanza.KindPresence && !lowersVisibility(st) && from.Local() != "" && b.h.IsLocal(from.Domain()) {
		// Presence a module routed on behalf of a local user who blocks
		// the recipient (a broadcast or probe: those skip pre-presence).
		if blocked, _ := b.Blocked(ctx, from.Bare(), user); blocked {
			return event.Handled
		}
	}
	blocked, err := b.Blocked(ctx, user, from)
	if err != nil {
		b.h.Logger().Error("block list check failed", "user", user.String(), "err", err)
		return event.Continue
	}
	if !blocked {
		return event.Continue
	}
	switch {
	case st.Name == stanza.KindPresence, silent(st):
		return event.Handled
	default:
		return event.Error(stanza.Err(stanza.ServiceUnavailable))
	}
}

// remote handles route/remote (global bus): presence a module routes from
// one of this host's users to a remote JID the user blocks.
func (b *Blocking) remote(ctx context.Context, ev *event.Event) event.Verdict {
	st := ev.Stanza
	if st.Name != stanza.KindPresence || lowersVisibility(st) || ev.From.Domain() != b.h.Name() || ev.From.Local() == "" {
		return event.Continue
	}
	if blocked, _ := b.Blocked(ctx, ev.From.Bare(), ev.To); blocked {
		return event.Handled
	}
	return event.Continue
}

func (b *Blocking) userDeleted(ctx context.Context, user jid.JID) {
	defer b.changed(user)
	if err := b.store.DeleteUser(ctx, user.Local()); err != nil {
		b.h.Logger().Error("block list purge failed", "user", user.String(), "err", err)
	}
}
