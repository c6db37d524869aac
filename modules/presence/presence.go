// Package presence implements presence exchange (RFC 6121 §4), the
// routing side of presence subscriptions (RFC 6121 §3) and the server
// rules for presence stanzas (RFC 6121 §8.5): initial, subsequent and
// unavailable presence broadcast, presence probes, directed presence and
// its cancellation when the session ends, and delivery of presence to
// bare and full JIDs.
//
// The subscription state itself (roster items, pending requests,
// pre-approvals) belongs to the roster module, which this module requires
// and reaches through the API it publishes under the name "roster".
//
// It does not implement privacy lists or blocking (those are policy
// modules hooking the same events at PrioPolicy), XEP-0267 server
// presence, nor presence for s2s peers beyond routing stanzas through
// Host.Route.
package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

func init() { module.Register(&Presence{}) }

// NSDelay is XEP-0203 Delayed Delivery, stamped on the last unavailable
// presence sent in answer to a probe (RFC 6121 §4.3.2).
const NSDelay = "urn:xmpp:delay"

// storeTimeout bounds every storage call made from a handler.
const storeTimeout = 10 * time.Second

// directedKey is the session value holding the directed-presence targets.
const directedKey = "mod.presence/directed"

// Subscription-related presence types.
const (
	typeSubscribe    = "subscribe"
	typeSubscribed   = "subscribed"
	typeUnsubscribe  = "unsubscribe"
	typeUnsubscribed = "unsubscribed"
	typeUnavailable  = "unavailable"
	typeProbe        = "probe"
	typeError        = "error"
)

// rosterAPI is what this module uses of the roster module's API.
type rosterAPI interface {
	Subscribed(ctx context.Context, user, contact jid.JID) bool
	Contacts(ctx context.Context, user jid.JID, sub string) ([]jid.JID, error)
	PendingRequests(ctx context.Context, user jid.JID) ([]*stanza.Element, error)
	OutboundSubscription(ctx context.Context, user, contact jid.JID, typ string) (route bool, before, after string, err error)
	InboundSubscription(ctx context.Context, user, contact jid.JID, typ string, st *stanza.Element) (deliver bool, reply, before, after string, err error)
}

// Presence is the module. It has no configuration.
type Presence struct {
	h      module.Host
	roster rosterAPI
	last   storage.KeyVal
	// users serializes the broadcasts of one user's resources (by a hash
	// of the bare JID): two resources going available at once would
	// otherwise each get the other's presence twice, once by its
	// broadcast and once on learning who else is online.
	users [64]sync.Mutex
}

// userLock returns the mutex of user's broadcasts.
func (p *Presence) userLock(user string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(user))
	return &p.users[h.Sum32()%uint32(len(p.users))]
}

// Info implements module.Module.
func (*Presence) Info() module.Info {
	return module.Info{ID: "mod.presence", New: func() module.Module { return new(Presence) }, Requires: []string{"roster"}}
}

// Provision implements module.Provisioner.
func (p *Presence) Provision(h module.Host) error {
	v, ok := h.Lookup("roster")
	if !ok {
		return errors.New("presence: the roster module published no API")
	}
	r, ok := v.(rosterAPI)
	if !ok {
		return fmt.Errorf("presence: the roster API (%T) lacks methods this module needs", v)
	}
	p.h, p.roster = h, r
	p.last = h.Store("presence").KeyVal()
	// The core ignores the verdict of presence/self: refusals happen on
	// pre-presence/self, which it bounces.
	h.Hook("pre-presence/self", event.PrioDefault, p.checkBroadcast)
	h.Hook(module.EventPresenceOut, event.PrioDefault, p.broadcast)
	for _, dest := range []string{"bare", "full", "host"} {
		h.Hook("pre-presence/"+dest, event.PrioDefault, p.outbound)
	}
	h.Hook("presence/bare", event.PrioDefault, p.inbound)
	h.Hook("presence/full", event.PrioDefault, p.inbound)
	h.Hook(module.EventSessionClosed, event.PrioDefault, p.sessionClosed)
	h.Hook(module.EventUserDeleted, event.PrioDefault, p.userDeleted)
	return nil
}

func isSubscription(typ string) bool {
	switch typ {
	case typeSubscribe, typeSubscribed, typeUnsubscribe, typeUnsubscribed:
		return true
	}
	return false
}

func hasFrom(sub string) bool { return sub == "from" || sub == "both" }

// route sends a stanza through the router, logging (only) failures.
func (p *Presence) route(ctx context.Context, st *stanza.Element) {
	if err := p.h.Route(ctx, st); err != nil {
		p.h.Logger().Debug("presence not routed", "to", st.To(), "err", err)
	}
}

// addressed returns a copy of st (attributes only) with new from and to.
func addressed(st *stanza.Element, from, to string) *stanza.Element {
	c := st.ShallowCopy()
	c.SetAttr("from", from)
	c.SetAttr("to", to)
	return c
}

func newPresence(typ, from, to string) *stanza.Element {
	return stanza.New(stanza.NSClient, "presence", "type", typ, "from", from, "to", to)
}

// ---- outbound: presence a local client sends ----

// broadcast handles presence without 'to' (RFC 6121 §4.2.2, §4.4.2, §4.5.2).
func (p *Presence) broadcast(ctx context.Context, ev *event.Event) event.Verdict {
	sess, ok := module.SessionOf(ev)
	if !ok {
		return event.Continue
	}
	switch ev.Stanza.Type() {
	case "":
		p.available(ctx, sess, ev.Stanza)
	case typeUnavailable:
		p.unavailable(ctx, sess, ev.Stanza, false)
	}
	// Probes and errors without 'to' mean nothing: dropped.
	return event.Handled
}

// checkBroadcast refuses subscription stanzas without 'to': they have no
// contact to apply to (RFC 6121 §3.1.1 requires the contact's bare JID).
func (p *Presence) checkBroadcast(ctx context.Context, ev *event.Event) event.Verdict {
	if isSubscription(ev.Stanza.Type()) {
		return event.Error(stanza.ErrText(stanza.BadRequest, "a subscription stanza needs a 'to' address"))
	}
	return event.Continue
}

func (p *Presence) available(ctx context.Context, sess module.Session, st *stanza.Element) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	full := sess.JID()
	user := full.Bare()
	mu := p.userLock(user.String())
	mu.Lock()
	defer mu.Unlock()
	pres := addressed(st, full.String(), "")
	initial := !sess.Available()
	sess.SetPresence(pres)

	// To every contact subscribed to the user's presence…
	contacts, err := p.roster.Contacts(ctx, user, "from")
	if err != nil {
		p.h.Logger().Error("presence not broadcast", "user", user.String(), "err", err)
	}
	for _, c := range contacts {
		p.route(ctx, addressed(pres, full.String(), c.String()))
	}
	// …and to all of the user's available resources, including this one.
	for _, s := range p.h.Sessions(user) {
		if s.Available() {
			_ = p.h.Deliver(ctx, s, addressed(pres, full.String(), s.JID().String()))
		}
	}
	if !initial {
		return
	}
	// Initial presence: the new resource learns about the others…
	for _, s := range p.h.Sessions(user) {
		if s != sess && s.Available() {
			if op := s.Presence(); op != nil {
				_ = p.h.Deliver(ctx, sess, addressed(op, s.JID().String(), full.String()))
			}
		}
	}
	// …gets the subscription requests still waiting for an answer
	// (RFC 6121 §3.1.3: delivered again on every login until handled)…
	reqs, err := p.roster.PendingRequests(ctx, user)
	if err != nil {
		p.h.Logger().Error("pending subscription requests not delivered", "user", user.String(), "err", err)
	}
	for _, r := range reqs {
		_ = p.h.Deliver(ctx, sess, r)
	}
	// …and the server probes the contacts the user is subscribed to
	// (RFC 6121 §4.2.2). Probes go from the full JID so that the answers
	// reach this resource only: the others already know.
	to, err := p.roster.Contacts(ctx, user, "to")
	if err != nil {
		p.h.Logger().Error("presence probes not sent", "user", user.String(), "err", err)
	}
	for _, c := range to {
		p.route(ctx, newPresence(typeProbe, full.String(), c.String()))
	}
}

// unavailable broadcasts a session's unavailable presence: explicit
// (RFC 6121 §4.5.2) or because the session ended (closing, §4.5.3).
func (p *Presence) unavailable(ctx context.Context, sess module.Session, st *stanza.Element, closing bool) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	full := sess.JID()
	user := full.Bare()
	pres := addressed(st, full.String(), "")
	wasAvailable := sess.Available()
	covered := map[jid.JID]bool{}
	if wasAvailable {
		contacts, err := p.roster.Contacts(ctx, user, "from")
		if err != nil {
			p.h.Logger().Error("unavailable presence not broadcast", "user", user.String(), "err", err)
		}
		for _, c := range contacts {
			covered[c] = true
			p.route(ctx, addressed(pres, full.String(), c.String()))
		}
		covered[user] = true
		for _, s := range p.h.Sessions(user) {
			if s.Available() && (s != sess || !closing) {
				_ = p.h.Deliver(ctx, s, addressed(pres, full.String(), s.JID().String()))
			}
		}
	}
	// Entities that got directed presence learn that it ended (§4.6.3),
	// unless the broadcast above already told them.
	for _, t := range takeDirected(sess) {
		if tj, err := jid.Parse(t); err == nil && !covered[tj.Bare()] {
			p.route(ctx, addressed(pres, full.String(), t))
		}
	}
	if !closing {
		sess.SetPresence(pres)
	}
	if wasAvailable {
		p.saveLast(ctx, user, pres)
	}
}

// outbound handles presence with 'to' from a local client, before routing.
func (p *Presence) outbound(ctx context.Context, ev *event.Event) event.Verdict {
	sess, ok := module.SessionOf(ev)
	if !ok {
		return event.Continue
	}
	switch typ := ev.Stanza.Type(); {
	case isSubscription(typ):
		return p.outboundSubscription(ctx, sess, ev, typ)
	case typ == "":
		// Directed presence (§4.6.2): remembered so that the target gets
		// unavailable presence when the session goes away.
		addDirected(sess, ev.To.String())
	case typ == typeUnavailable:
		removeDirected(sess, ev.To.String())
	}
	return event.Continue // the core routes it
}

// outboundSubscription processes a subscription stanza the user sends
// (RFC 6121 §3.1.2, §3.2.2, §3.3.2, §3.4.2): the roster changes, then the
// stanza goes out from the user's bare JID.
func (p *Presence) outboundSubscription(ctx context.Context, sess module.Session, ev *event.Event, typ string) event.Verdict {
	user := sess.JID().Bare()
	contact := ev.To.Bare()
	if contact == user {
		// The account is always subscribed to itself; nothing to do.
		return event.Handled
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	route, before, after, err := p.roster.OutboundSubscription(ctx, user, contact, typ)
	if err != nil {
		var se stanza.Error
		if errors.As(err, &se) {
			return event.Error(se)
		}
		p.h.Logger().Error("subscription not processed", "user", user.String(), "contact", contact.String(), "err", err)
		return event.Error(stanza.Err(stanza.InternalServerError))
	}
	if route {
		p.route(ctx, addressed(ev.Stanza, user.String(), contact.String()))
	}
	p.subscriptionChanged(ctx, user, contact, before, after)
	return event.Handled
}

// subscriptionChanged sends the user's presence to a contact that just
// became a subscriber (§3.1.5), or unavailable presence to one that just
// stopped being one (§3.2.2, §3.3.3).
func (p *Presence) subscriptionChanged(ctx context.Context, user, contact jid.JID, before, after string) {
	gained := !hasFrom(before) && hasFrom(after)
	lost := hasFrom(before) && !hasFrom(after)
	if !gained && !lost {
		return
	}
	for _, s := range p.h.Sessions(user) {
		if !s.Available() {
			continue
		}
		if gained {
			if pr := s.Presence(); pr != nil {
				p.route(ctx, addressed(pr, s.JID().String(), contact.String()))
			}
		} else {
			p.route(ctx, newPresence(typeUnavailable, s.JID().String(), contact.String()))
		}
	}
}

// ---- inbound: presence addressed to a local user (RFC 6121 §8.5) ----

func (p *Presence) inbound(ctx context.Context, ev *event.Event) event.Verdict {
	typ := ev.Stanza.Type()
	switch {
	case isSubscription(typ):
		// §8.5.3: subscription stanzas to a full JID are handled as if
		// addressed to the bare JID.
		return p.inboundSubscription(ctx, ev, typ)
	case typ == typeProbe:
		p.probe(ctx, ev)
		return event.Handled
	case typ == "" || typ == typeUnavailable || typ == typeError:
		if ev.To.IsFull() {
			// §8.5.3.1; no such resource: silently ignored (§8.5.3.2.1).
			if s := p.h.Session(ev.To); s != nil {
				_ = p.h.Deliver(ctx, s, ev.Stanza)
			}
			return event.Handled
		}
		// §8.5.2.1.1: to every available resource; none: ignored.
		p.deliverAvailable(ctx, ev.To.Bare(), ev.Stanza)
		return event.Handled
	}
	return event.Continue
}

func (p *Presence) deliverAvailable(ctx context.Context, user jid.JID, st *stanza.Element) {
	for _, s := range p.h.Sessions(user) {
		if s.Available() {
			_ = p.h.Deliver(ctx, s, st)
		}
	}
}

// inboundSubscription processes a subscription stanza from a contact
// (RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3, §3.4).
func (p *Presence) inboundSubscription(ctx context.Context, ev *event.Event, typ string) event.Verdict {
	if ev.From.IsZero() || ev.To.Local() == "" {
		return event.Handled
	}
	user, contact := ev.To.Bare(), ev.From.Bare()
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	exists, err := p.h.Accounts().Exists(ctx, user.Local())
	if err != nil {
		p.h.Logger().Error("subscription not processed", "user", user.String(), "err", err)
		return event.Handled
	}
	if !exists {
		// §3.1.3: no such user, the request is refused; other
		// subscription stanzas are ignored (§8.5.1).
		if typ == typeSubscribe {
			p.route(ctx, newPresence(typeUnsubscribed, user.String(), contact.String()))
		}
		return event.Handled
	}
	// Delivered and stored from and to the bare JIDs (§3.1.3, §3.1.2).
	in := addressed(ev.Stanza, contact.String(), user.String())
	deliver, reply, before, after, err := p.roster.InboundSubscription(ctx, user, contact, typ, in)
	if err != nil {
		p.h.Logger().Error("subscription not processed", "user", user.String(), "contact", contact.String(), "err", err)
		return event.Handled
	}
	if deliver {
		p.deliverAvailable(ctx, user, in)
	}
	if reply != "" {
		p.route(ctx, newPresence(reply, user.String(), contact.String()))
	}
	p.subscriptionChanged(ctx, user, contact, before, after)
	return event.Handled
}

// probe answers a presence probe on the user's behalf (RFC 6121 §4.3.2).
func (p *Presence) probe(ctx context.Context, ev *event.Event) {
	if ev.From.IsZero() || ev.To.Local() == "" {
		return
	}
	user, prober := ev.To.Bare(), ev.From
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if prober.Bare() != user {
		exists, err := p.h.Accounts().Exists(ctx, user.Local())
		if err != nil {
			p.h.Logger().Error("probe not answered", "user", user.String(), "err", err)
			return
		}
		if !exists || !p.roster.Subscribed(ctx, user, prober.Bare()) {
			// Not entitled to the user's presence: nothing is revealed, and
			// "unsubscribed" lets the prober's server correct its state.
			p.route(ctx, newPresence(typeUnsubscribed, user.String(), prober.Bare().String()))
			return
		}
	}
	n := 0
	for _, s := range p.h.Sessions(user) {
		if !s.Available() {
			continue
		}
		if pr := s.Presence(); pr != nil {
			n++
			p.route(ctx, addressed(pr, s.JID().String(), prober.String()))
		}
	}
	if n == 0 {
		p.route(ctx, p.lastUnavailable(ctx, user, prober))
	}
}

// ---- session end, account deletion ----

func (p *Presence) sessionClosed(ctx context.Context, ev *event.Event) event.Verdict {
	sess, ok := ev.Data.(module.Session)
	if !ok || sess.JID().IsZero() {
		return event.Continue
	}
	p.unavailable(ctx, sess, stanza.New(stanza.NSClient, "presence", "type", typeUnavailable), true)
	return event.Continue
}

func (p *Presence) userDeleted(ctx context.Context, ev *event.Event) event.Verdict {
	ue, ok := ev.Data.(module.UserEvent)
	if !ok || ue.User.Domain() != p.h.Name() {
		return event.Continue
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := p.last.Delete(ctx, ue.User.Local()); err != nil {
		p.h.Logger().Error("last presence not deleted", "user", ue.User.String(), "err", err)
	}
	return event.Continue
}

// ---- last unavailable presence (for probes of offline users) ----

type lastPresence struct {
	XML  string    `json:"xml"`
	When time.Time `json:"when"`
}

func (p *Presence) saveLast(ctx context.Context, user jid.JID, pres *stanza.Element) {
	b, _ := json.Marshal(lastPresence{XML: pres.String(), When: time.Now().UTC()})
	if err := p.last.Set(ctx, user.Local(), b); err != nil {
		p.h.Logger().Warn("last presence not saved", "user", user.String(), "err", err)
	}
}

// lastUnavailable builds the answer to a probe of a user without available
// resources: the last unavailable presence with a XEP-0203 delay stamp of
// when it was sent (§4.3.2), or a bare unavailable presence.
func (p *Presence) lastUnavailable(ctx context.Context, user, to jid.JID) *stanza.Element {
	b, err := p.last.Get(ctx, user.Local())
	if err == nil {
		var lp lastPresence
		if json.Unmarshal(b, &lp) == nil {
			if el, err := xmlstream.ParseNS([]byte(lp.XML), stanza.NSClient); err == nil {
				el.SetAttr("to", to.String())
				if el.From() == "" {
					el.SetAttr("from", user.String())
				}
				el.RemoveChildren(NSDelay, "delay")
				el.AddChild(stanza.New(NSDelay, "delay", "from", p.h.Name(),
					"stamp", lp.When.UTC().Format("2006-01-02T15:04:05.000Z")))
				return el
			}
		}
	} else if !errors.Is(err, storage.ErrNotFound) {
		p.h.Logger().Warn("last presence not loaded", "user", user.String(), "err", err)
	}
	return newPresence(typeUnavailable, user.String(), to.String())
}

// ---- directed presence bookkeeping (per session, §4.6) ----

type directed struct {
	mu      sync.Mutex
	targets []string // in the order they were first sent to
}

func directedOf(sess module.Session, create bool) *directed {
	if d, ok := sess.Value(directedKey).(*directed); ok {
		return d
	}
	if !create {
		return nil
	}
	d := new(directed)
	sess.SetValue(directedKey, d)
	return d
}

func addDirected(sess module.Session, to string) {
	d := directedOf(sess, true)
	d.mu.Lock()
	if !slices.Contains(d.targets, to) {
		d.targets = append(d.targets, to)
	}
	d.mu.Unlock()
}

func removeDirected(sess module.Session, to string) {
	if d := directedOf(sess, false); d != nil {
		d.mu.Lock()
		d.targets = slices.DeleteFunc(d.targets, func(t string) bool { return t == to })
		d.mu.Unlock()
	}
}

func takeDirected(sess module.Session) []string {
	d := directedOf(sess, false)
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.targets
	d.targets = nil
	return t
}
