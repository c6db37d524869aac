// Package roster implements roster management (RFC 6121 §2), the
// presence subscription state machine (RFC 6121 §3 and Appendix A),
// subscription pre-approval (RFC 6121 §3.4) and roster versioning
// (RFC 6121 §2.6, formerly XEP-0237 v1.3, "strictly increasing sequence"
// strategy).
//
// The module answers jabber:iq:roster get/set requests of a user's own
// resources, pushes changes to interested resources and publishes, with
// Host.Provide("roster", …), an API the presence module (and others) use
// to read subscriptions and to apply the state transitions of
// subscription stanzas. Routing presence stanzas is not done here: that is
// the presence module's job, which calls OutboundSubscription and
// InboundSubscription and acts on their answers.
//
// It does not implement shared roster groups, XEP-0144 roster item
// exchange nor XEP-0321 remote roster management.
package roster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

func init() { module.Register(&Roster{}) }

// ErrRosterFull is returned when adding an item would exceed max_items. It
// is a stanza error so that callers can bounce it as it is.
var ErrRosterFull error = stanza.Error{Type: stanza.Cancel, Condition: stanza.NotAllowed, Text: "the roster is full"}

// ErrNotLocal is returned for a user that is not on this module's host.
var ErrNotLocal = errors.New("roster: user is not on this host")

// storeTimeout bounds every storage call made from a handler.
const storeTimeout = 10 * time.Second

// Roster is the module. Its exported methods are the API published under
// the name "roster" (Host.Provide); consumers define their own small
// interface and type-assert the value returned by Host.Lookup("roster").
type Roster struct {
	// Versioning enables roster versioning (RFC 6121 §2.6).
	Versioning bool `json:"versioning"`
	// MaxItems limits the number of items per roster (0: no limit).
	MaxItems int `json:"max_items"`
	// MaxNameLength is the longest accepted item name, in characters.
	MaxNameLength int `json:"max_name_length"`
	// MaxGroupLength is the longest accepted group name, in characters.
	MaxGroupLength int `json:"max_group_length"`

	h      module.Host
	store  storage.Map
	pushID atomic.Uint64
	// locks serialise read-modify-write cycles on one user's roster
	// (item, pending request and version counter together). Striped by a
	// hash of the user so that memory does not grow with users; a stripe
	// is never held while another is taken (see README, Storage).
	locks [64]sync.Mutex
}

// Info implements module.Module.
func (*Roster) Info() module.Info {
	return module.Info{ID: "mod.roster", New: func() module.Module {
		return &Roster{Versioning: true, MaxNameLength: 1024, MaxGroupLength: 1024}
	}}
}

// Validate implements module.Validator.
func (r *Roster) Validate() error {
	if r.MaxItems < 0 {
		return fmt.Errorf("max_items: must not be negative, got %d", r.MaxItems)
	}
	if r.MaxNameLength < 1 {
		return fmt.Errorf("max_name_length: must be positive, got %d", r.MaxNameLength)
	}
	if r.MaxGroupLength < 1 {
		return fmt.Errorf("max_group_length: must be positive, got %d", r.MaxGroupLength)
	}
	return nil
}

// Provision implements module.Provisioner.
func (r *Roster) Provision(h module.Host) error {
	r.h = h
	r.store = h.Store("roster").Map()
	if r.Versioning {
		h.AddStreamFeature(stanza.New(NSRosterVer, "ver"), false)
	}
	h.AddStreamFeature(stanza.New(NSPreApproval, "sub"), false)
	module.OnIQ(h, "bare", stanza.Get, NS, "query", event.PrioDefault, r.handleGet)
	module.OnIQ(h, "bare", stanza.Set, NS, "query", event.PrioDefault, r.handleSet)
	// Roster requests to the host or to a full JID are not ours to answer
	// on the account's behalf (RFC 6121 §2.1.5 is about the bare JID).
	h.Hook(module.EventUserDeleted, event.PrioDefault, r.userDeleted)
	h.Provide("roster", r)
	return nil
}

func (r *Roster) lock(user string) func() {
	f := fnv.New32a()
	_, _ = f.Write([]byte(user))
	m := &r.locks[f.Sum32()%uint32(len(r.locks))]
	m.Lock()
	return m.Unlock
}

func (r *Roster) local(user jid.JID) (string, error) {
	if user.Domain() != r.h.Name() || user.Local() == "" {
		return "", fmt.Errorf("%w: %s", ErrNotLocal, user)
	}
	return user.Local(), nil
}

// loadOne reads one contact's item, its pending request and the roster meta.
func (r *Roster) loadOne(ctx context.Context, user, contact string) (*item, []byte, meta, error) {
	var m meta
	it, err := r.getItem(ctx, user, contact)
	if err != nil {
		return nil, nil, m, err
	}
	pend, err := r.store.Get(ctx, user, keyPendingPrefix+contact)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, nil, m, fmt.Errorf("roster: load pending %s of %s: %w", contact, user, err)
	}
	if m, err = r.getMeta(ctx, user); err != nil {
		return nil, nil, m, err
	}
	return it, pend, m, nil
}

func (r *Roster) getItem(ctx context.Context, user, contact string) (*item, error) {
	b, err := r.store.Get(ctx, user, contact)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("roster: load %s of %s: %w", contact, user, err)
	}
	it, err := decodeItem(b)
	if err != nil {
		return nil, fmt.Errorf("roster: decode %s of %s: %w", contact, user, err)
	}
	return it, nil
}

func (r *Roster) getMeta(ctx context.Context, user string) (meta, error) {
	var m meta
	b, err := r.store.Get(ctx, user, keyMeta)
	if errors.Is(err, storage.ErrNotFound) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("roster: load version of %s: %w", user, err)
	}
	if err := jsonUnmarshal(b, &m); err != nil {
		return m, fmt.Errorf("roster: decode version of %s: %w", user, err)
	}
	return m, nil
}

// rosterData is a whole roster as loaded from the store.
type rosterData struct {
	items   map[string]*item
	pending map[string][]byte
	meta    meta
}

func (r *Roster) loadAll(ctx context.Context, user string) (*rosterData, error) {
	all, err := r.store.All(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("roster: load roster of %s: %w", user, err)
	}
	d := &rosterData{items: map[string]*item{}, pending: map[string][]byte{}}
	for k, v := range all {
		switch {
		case k == keyMeta:
			if err := jsonUnmarshal(v, &d.meta); err != nil {
				return nil, fmt.Errorf("roster: decode version of %s: %w", user, err)
			}
		case strings.HasPrefix(k, keyPendingPrefix):
			d.pending[strings.TrimPrefix(k, keyPendingPrefix)] = v
		case strings.HasPrefix(k, "@"):
			// Reserved for future use.
		default:
			it, err := decodeItem(v)
			if err != nil {
				return nil, fmt.Errorf("roster: decode %s of %s: %w", k, user, err)
			}
			d.items[k] = it
		}
	}
	return d, nil
}

func (r *Roster) count(ctx context.Context, user string) (int, error) {
	d, err := r.loadAll(ctx, user)
	if err != nil {
		return 0, err
	}
	return len(d.items), nil
}

// push sends a roster push for one item (nil: removed) to every
// interested resource of user (RFC 6121 §2.1.6).
func (r *Roster) push(ctx context.Context, user jid.JID, contact string, it *item, ver uint64) {
	var el *stanza.Element
	if it == nil {
		el = stanza.New(NS, "item", "jid", contact, "subscription", "remove")
	} else {
		el = it.element(contact)
	}
	r.pushElement(ctx, user, el, ver, nil)
}

// pushElement sends a push of el to the interested resources of user, or
// only to only (when not nil).
func (r *Roster) pushElement(ctx context.Context, user jid.JID, el *stanza.Element, ver uint64, only module.Session) {
	sessions := r.h.Sessions(user)
	if only != nil {
		sessions = []module.Session{only}
	}
	for _, s := range sessions {
		if !s.Interested() {
			continue
		}
		q := stanza.New(NS, "query")
		if r.Versioning {
			q.SetAttr("ver", verString(ver))
		}
		q.AddChild(el)
		iq := stanza.New(stanza.NSClient, "iq", "type", stanza.Set,
			"id", "push"+strconv.FormatUint(r.pushID.Add(1), 36), "to", s.JID().String())
		iq.AddChild(q)
		_ = r.h.Deliver(ctx, s, iq)
	}
}

// userDeleted removes the roster of a deleted account, after cancelling
// its subscriptions with its contacts (XEP-0077 §3.2 recommends it).
func (r *Roster) userDeleted(ctx context.Context, ev *event.Event) event.Verdict {
	ue, ok := ev.Data.(module.UserEvent)
	if !ok {
		return event.Continue
	}
	user, err := r.local(ue.User)
	if err != nil {
		return event.Continue
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	unlock := r.lock(user)
	d, err := r.loadAll(ctx, user)
	if err == nil {
		err = r.store.DeleteUser(ctx, user)
	}
	unlock()
	if err != nil {
		r.h.Logger().Error("roster not deleted", "user", ue.User.String(), "err", err)
		return event.Continue
	}
	bare := ue.User.Bare()
	for c, it := range d.items {
		_, hadPending := d.pending[c]
		r.cancel(ctx, bare, c, it.state(hadPending))
	}
	for c := range d.pending {
		if _, ok := d.items[c]; !ok {
			r.cancel(ctx, bare, c, state{PendingIn: true})
		}
	}
	return event.Continue
}

// cancel routes the unsubscribe/unsubscribed stanzas that end every
// subscription (or request) between user and contact (RFC 6121 §2.5.2).
func (r *Roster) cancel(ctx context.Context, user jid.JID, contact string, s state) {
	if hasTo(s.sub()) || s.Ask {
		r.send(ctx, user, contact, TypeUnsubscribe)
	}
	if hasFrom(s.sub()) || s.PendingIn {
		r.send(ctx, user, contact, TypeUnsubscribed)
	}
}

func (r *Roster) send(ctx context.Context, from jid.JID, to, typ string) {
	p := stanza.New(stanza.NSClient, "presence", "from", from.String(), "to", to, "type", typ)
	if err := r.h.Route(ctx, p); err != nil {
		r.h.Logger().Debug("presence not routed", "to", to, "err", err)
	}
}

// ---- API published with Host.Provide("roster", …) ----

// Item returns the subscription ("none", "to", "from" or "both") of
// contact (a bare JID) in user's roster; ok is false if there is no item.
func (r *Roster) Item(ctx context.Context, user, contact jid.JID) (subscription string, ok bool, err error) {
	u, err := r.local(user)
	if err != nil {
		return "", false, err
	}
	it, err := r.getItem(ctx, u, contact.Bare().String())
	if err != nil || it == nil {
		return "", false, err
	}
	return it.Sub, true, nil
}

// Subscribed reports whether contact is subscribed to user's presence
// (subscription "from" or "both"). Storage errors count as not subscribed.
func (r *Roster) Subscribed(ctx context.Context, user, contact jid.JID) bool {
	sub, ok, err := r.Item(ctx, user, contact)
	return err == nil && ok && hasFrom(sub)
}

// SubscribedTo reports whether user is subscribed to contact's presence
// (subscription "to" or "both").
func (r *Roster) SubscribedTo(ctx context.Context, user, contact jid.JID) bool {
	sub, ok, err := r.Item(ctx, user, contact)
	return err == nil && ok && hasTo(sub)
}

// Contacts returns the contacts of user's roster, sorted, whose
// subscription includes sub: "from" (from or both: the contacts that
// receive the user's presence), "to" (to or both: the contacts whose
// presence the user receives) or "" (every item).
func (r *Roster) Contacts(ctx context.Context, user jid.JID, sub string) ([]jid.JID, error) {
	u, err := r.local(user)
	if err != nil {
		return nil, err
	}
	d, err := r.loadAll(ctx, u)
	if err != nil {
		return nil, err
	}
	var out []jid.JID
	for _, k := range sortedKeys(d.items) {
		it := d.items[k]
		if (sub == SubFrom && !hasFrom(it.Sub)) || (sub == SubTo && !hasTo(it.Sub)) {
			continue
		}
		j, err := jid.Parse(k)
		if err != nil {
			continue
		}
		out = append(out, j)
	}
	return out, nil
}

// PendingRequests returns the stored inbound subscription requests of
// user (RFC 6121 §3.1.3), as the presence stanzas that were received,
// sorted by contact.
func (r *Roster) PendingRequests(ctx context.Context, user jid.JID) ([]*stanza.Element, error) {
	u, err := r.local(user)
	if err != nil {
		return nil, err
	}
	d, err := r.loadAll(ctx, u)
	if err != nil {
		return nil, err
	}
	var out []*stanza.Element
	for _, c := range sortedKeys(d.pending) {
		el, err := xmlstream.ParseNS(d.pending[c], stanza.NSClient)
		if err != nil {
			r.h.Logger().Warn("stored subscription request unreadable", "user", u, "contact", c, "err", err)
			continue
		}
		out = append(out, el)
	}
	return out, nil
}

// OutboundSubscription applies a subscription stanza of type typ
// ("subscribe", "subscribed", "unsubscribe" or "unsubscribed") that user
// sends to contact (RFC 6121 §3, Appendix A.2), stores the result and
// pushes the changed item to user's interested resources. route reports
// whether the caller must route the stanza (from user's bare JID) to
// contact; before and after are the subscription before and after, so
// that the caller can send presence when the contact gains ("from"/"both")
// or loses its subscription to the user.
func (r *Roster) OutboundSubscription(ctx context.Context, user, contact jid.JID, typ string) (route bool, before, after string, err error) {
	u, err := r.local(user)
	if err != nil {
		return false, "", "", err
	}
	c := contact.Bare().String()
	unlock := r.lock(u)
	defer unlock()
	it, pend, m, err := r.loadOne(ctx, u, c)
	if err != nil {
		return false, "", "", err
	}
	cur := it.state(pend != nil)
	next, route := outbound(cur, typ)
	if !cur.Exists && next.Exists && r.MaxItems > 0 {
		if n, err := r.count(ctx, u); err != nil {
			return false, "", "", err
		} else if n >= r.MaxItems {
			return false, "", "", ErrRosterFull
		}
	}
	if err := r.commit(ctx, user, c, it, cur, next, nil, m); err != nil {
		return false, "", "", err
	}
	return route, cur.sub(), next.sub(), nil
}

// InboundSubscription applies a subscription stanza of type typ that
// contact sent to user (RFC 6121 §3, Appendix A.3). st is the stanza as
// received; it is stored when it leaves a request pending, so that
// PendingRequests can deliver it again. deliver reports whether the
// caller must deliver st to user's available resources; reply is the
// type of presence the caller must route back from user's bare JID to
// contact ("subscribed" when the contact is already or pre-approved) or
// "". before and after are as for OutboundSubscription.
func (r *Roster) InboundSubscription(ctx context.Context, user, contact jid.JID, typ string, st *stanza.Element) (deliver bool, reply, before, after string, err error) {
	u, err := r.local(user)
	if err != nil {
		return false, "", "", "", err
	}
	c := contact.Bare().String()
	unlock := r.lock(u)
	defer unlock()
	it, pend, m, err := r.loadOne(ctx, u, c)
	if err != nil {
		return false, "", "", "", err
	}
	cur := it.state(pend != nil)
	next, deliver, reply := inbound(cur, typ)
	var stored []byte
	if next.PendingIn && typ == TypeSubscribe && st != nil {
		stored = st.Append(nil, stanza.NSClient)
	}
	if err := r.commit(ctx, user, c, it, cur, next, stored, m); err != nil {
		return false, "", "", "", err
	}
	return deliver, reply, cur.sub(), next.sub(), nil
}

// commit stores the transition cur → next of contact c in user's roster
// (with the pending request pend when next is pending and pend is not
// nil) and pushes the item if it changed. The caller holds the user's lock.
func (r *Roster) commit(ctx context.Context, user jid.JID, c string, it *item, cur, next state, pend []byte, m meta) error {
	kv := map[string][]byte{}
	if cur.PendingIn && !next.PendingIn {
		kv[keyPendingPrefix+c] = nil
	}
	if next.PendingIn && pend != nil {
		kv[keyPendingPrefix+c] = pend
	}
	changed := itemChanged(cur, next)
	var nit *item
	if changed {
		m.Ver++
		nit = it.apply(next)
		nit.Ver = m.Ver
		kv[c] = encode(nit)
		kv[keyMeta] = encode(m)
	}
	if len(kv) == 0 {
		return nil
	}
	if err := r.store.SetKeys(ctx, user.Local(), kv); err != nil {
		return fmt.Errorf("roster: save %s of %s: %w", c, user, err)
	}
	if changed {
		r.push(ctx, user, c, nit, m.Ver)
	}
	return nil
}
