package roster

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// authorized checks that a roster request comes from one of the account's
// own resources (RFC 6121 §2.1.5, §2.3.3: forbidden otherwise).
func authorized(ev *event.Event) bool {
	if _, ok := module.SessionOf(ev); !ok {
		return false
	}
	return ev.From.Bare() == ev.To.Bare()
}

func (r *Roster) internal(ctx context.Context, ev *event.Event, err error) event.Verdict {
	r.h.Logger().Error("roster request failed", "user", ev.From.Bare().String(), "err", err)
	return module.ReplyError(ctx, r.h, ev, stanza.Err(stanza.InternalServerError))
}

// handleGet answers a roster get (RFC 6121 §2.2), with versioning (§2.6.3).
func (r *Roster) handleGet(ctx context.Context, ev *event.Event) event.Verdict {
	if !authorized(ev) {
		return module.ReplyError(ctx, r.h, ev, stanza.Err(stanza.Forbidden))
	}
	sess, _ := module.SessionOf(ev)
	// The resource becomes "interested" (§2.1.6) from now on.
	sess.SetInterested(true)
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	user := ev.From.Bare()
	// Held until the answer and the interim pushes are queued, so that no
	// live push of a newer version can overtake them (XEP-0237 §2.4:
	// pushes in order of modification).
	defer r.lock(user.Local())()
	d, err := r.loadAll(ctx, user.Local())
	if err != nil {
		return r.internal(ctx, ev, err)
	}
	q := ev.Stanza.FirstChild()
	if r.Versioning && q.HasAttr("ver") {
		if since, ok := r.usableVer(q.Attr("ver"), d.meta); ok {
			// §2.6.3: empty result, then one push per item changed since.
			module.Reply(ctx, r.h, ev, nil)
			keys := sortedKeys(d.items)
			slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(d.items[a].Ver, d.items[b].Ver) })
			for _, k := range keys {
				if it := d.items[k]; it.Ver > since {
					r.pushElement(ctx, user, it.element(k), it.Ver, sess)
				}
			}
			return event.Handled
		}
	}
	res := stanza.New(NS, "query")
	if r.Versioning {
		res.SetAttr("ver", verString(d.meta.Ver))
	}
	for _, k := range sortedKeys(d.items) {
		res.AddChild(d.items[k].element(k))
	}
	return module.Reply(ctx, r.h, ev, res)
}

// usableVer reports whether the client's cached version can be brought up
// to date with pushes: it must be one we issued, not newer than the
// current one, and no item may have been removed since (removals leave no
// trace to push).
func (r *Roster) usableVer(v string, m meta) (uint64, bool) {
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > m.Ver || n < m.Del {
		return 0, false
	}
	return n, true
}

// handleSet processes a roster set: add, update (RFC 6121 §2.3, §2.4) or
// remove (§2.5) one item.
func (r *Roster) handleSet(ctx context.Context, ev *event.Event) event.Verdict {
	if !authorized(ev) {
		return module.ReplyError(ctx, r.h, ev, stanza.Err(stanza.Forbidden))
	}
	var items []*stanza.Element
	for c := range ev.Stanza.FirstChild().Elements {
		if c.Space == NS && c.Name == "item" {
			items = append(items, c)
		}
	}
	if len(items) != 1 {
		return module.ReplyError(ctx, r.h, ev, stanza.ErrText(stanza.BadRequest, "a roster set must contain exactly one item"))
	}
	el := items[0]
	if !el.HasAttr("jid") {
		return module.ReplyError(ctx, r.h, ev, stanza.ErrText(stanza.BadRequest, "the item has no jid"))
	}
	contact, err := jid.Parse(el.Attr("jid"))
	if err != nil {
		return module.ReplyError(ctx, r.h, ev, stanza.ErrText(stanza.JIDMalformed, err.Error()))
	}
	user := ev.From.Bare()
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	// §2.1.2.5: every subscription value other than "remove" is ignored.
	if el.Attr("subscription") == "remove" {
		return r.remove(ctx, ev, user, contact.String())
	}
	if contact.Bare() == user {
		// Not an RFC 6121 rule but a policy (as in Prosody): the user is
		// implicitly subscribed to its own presence, a roster item for the
		// account itself would only confuse the state machine.
		return module.ReplyError(ctx, r.h, ev, stanza.ErrText(stanza.NotAllowed, "the account itself cannot be a roster item"))
	}
	name := el.Attr("name")
	if utf8.RuneCountInString(name) > r.MaxNameLength {
		return module.ReplyError(ctx, r.h, ev, stanza.ErrText(stanza.NotAcceptable, "the name is too long"))
	}
	var groups []string
	for g := range el.Elements {
		if g.Space != NS || g.Name != "group" {
			continue
		}
		t := g.Text()
		switch {
		case t == "":
			return module.ReplyError(ctx, r.h, ev, stanza.ErrText(stanza.NotAcceptable, "empty group name"))
		case utf8.RuneCountInString(t) > r.MaxGroupLength:
			return module.ReplyError(ctx, r.h, ev, stanza.ErrText(stanza.NotAcceptable, "group name too long"))
		case slices.Contains(groups, t):
			return module.ReplyError(ctx, r.h, ev, stanza.ErrText(stanza.BadRequest, "duplicate group "+t))
		}
		groups = append(groups, t)
	}
	c := contact.String()
	u := user.Local()
	unlock := r.lock(u)
	it, m, err := r.getItemMeta(ctx, u, c)
	if err == nil && it == nil && r.MaxItems > 0 {
		var n int
		if n, err = r.count(ctx, u); err == nil && n >= r.MaxItems {
			unlock()
			return module.ReplyError(ctx, r.h, ev, stanza.ErrText(stanza.NotAllowed, "the roster is full"))
		}
	}
	if err != nil {
		unlock()
		return r.internal(ctx, ev, err)
	}
	var nit item
	if it != nil {
		nit = *it
	} else {
		nit.Sub = SubNone
	}
	// §2.1.2: 'ask', 'approved' and 'subscription' of a roster set are
	// ignored; only the name and the groups are the client's to change.
	nit.Name = name
	nit.Groups = groups
	m.Ver++
	nit.Ver = m.Ver
	err = r.store.SetKeys(ctx, u, map[string][]byte{c: encode(&nit), keyMeta: encode(m)})
	if err != nil {
		unlock()
		return r.internal(ctx, ev, err)
	}
	// §2.3.2: push to every interested resource, then the result. Pushes
	// are queued under the lock so that they leave in version order.
	r.push(ctx, user, c, &nit, m.Ver)
	unlock()
	return module.Reply(ctx, r.h, ev, nil)
}

func (r *Roster) getItemMeta(ctx context.Context, user, contact string) (*item, meta, error) {
	it, err := r.getItem(ctx, user, contact)
	if err != nil {
		return nil, meta{}, err
	}
	m, err := r.getMeta(ctx, user)
	return it, m, err
}

// remove deletes an item (RFC 6121 §2.5): the subscriptions in both
// directions are cancelled, the removal is pushed, and the contact stops
// receiving the user's presence.
func (r *Roster) remove(ctx context.Context, ev *event.Event, user jid.JID, c string) event.Verdict {
	u := user.Local()
	unlock := r.lock(u)
	it, pend, m, err := r.loadOne(ctx, u, c)
	if err != nil {
		unlock()
		return r.internal(ctx, ev, err)
	}
	if it == nil {
		unlock()
		// §2.5.3.
		return module.ReplyError(ctx, r.h, ev, stanza.Err(stanza.ItemNotFound))
	}
	m.Ver++
	m.Del = m.Ver
	kv := map[string][]byte{c: nil, keyMeta: encode(m)}
	if pend != nil {
		kv[keyPendingPrefix+c] = nil
	}
	err = r.store.SetKeys(ctx, u, kv)
	if err != nil {
		unlock()
		return r.internal(ctx, ev, err)
	}
	r.push(ctx, user, c, nil, m.Ver)
	// Routing happens without the lock: the contact may be local and its
	// roster's lock may be the same stripe.
	unlock()
	s := it.state(pend != nil)
	// §2.5.2: the subscriptions in both directions are cancelled.
	r.cancel(ctx, user, c, s)
	if hasFrom(s.sub()) {
		// The contact loses its subscription: it must learn that the
		// user's resources are, as far as it is concerned, unavailable
		// (RFC 6121 §3.2.2).
		for _, sess := range r.h.Sessions(user) {
			if sess.Available() {
				p := stanza.New(stanza.NSClient, "presence", "type", "unavailable", "from", sess.JID().String(), "to", c)
				_ = r.h.Route(ctx, p)
			}
		}
	}
	return module.Reply(ctx, r.h, ev, nil)
}
