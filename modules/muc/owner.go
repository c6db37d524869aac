package muc

import (
	"context"
	"maps"
	"slices"
	"strconv"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// ownerGet sends the configuration form (§10.2), with the fields other
// modules add through EventConfigForm. Called with r.mu held; it releases
// it and flushes.
func (m *MUC) ownerGet(ctx context.Context, r *room, from jid.JID, st *stanza.Element) {
	if r.affiliationOf(from) != affOwner {
		r.fail(st, stanza.Err(stanza.Forbidden)) // §10.2
		r.mu.Unlock()
		m.flush(ctx, r)
		return
	}
	form := m.configForm(r)
	cf := &ConfigForm{room: r.jid, actor: from, extra: maps.Clone(r.cfg.Extra)}
	r.mu.Unlock()
	m.h.Fire(ctx, &event.Event{Name: EventConfigForm, To: r.jid, From: from, Data: cf})
	for _, f := range cf.fields {
		form.AddChild(f)
	}
	q := stanza.New(NSOwner, "query")
	q.AddChild(form)
	r.mu.Lock()
	r.send(stanza.ResultReply(st, q))
	r.mu.Unlock()
	m.flush(ctx, r)
}

// ownerSet handles a configuration submission or cancellation (§10.1,
// §10.2) and room destruction (§10.9). Called with r.mu held; it releases
// it, flushes and saves.
func (m *MUC) ownerSet(ctx context.Context, r *room, from jid.JID, st, q *stanza.Element) {
	finish := func(changed, gone bool) {
		r.mu.Unlock()
		m.flush(ctx, r)
		if changed {
			m.save(ctx, r)
		}
		if gone {
			m.dispose(ctx, r, from)
		}
	}
	if r.affiliationOf(from) != affOwner {
		r.fail(st, stanza.Err(stanza.Forbidden))
		finish(false, false)
		return
	}
	if d := q.Child(NSOwner, "destroy"); d != nil {
		if alt := d.Attr("jid"); alt != "" {
			if _, err := jid.Parse(alt); err != nil {
				r.fail(st, stanza.ErrText(stanza.JIDMalformed, "destroy jid: "+err.Error()))
				finish(false, false)
				return
			}
		}
		m.destroy(r, d)
		r.send(stanza.ResultReply(st, nil))
		finish(false, true)
		return
	}
	x := q.Child(NSData, "x")
	if x == nil {
		r.fail(st, stanza.ErrText(stanza.BadRequest, "expected a data form or <destroy/>"))
		finish(false, false)
		return
	}
	switch x.Attr("type") {
	case "cancel":
		r.send(stanza.ResultReply(st, nil))
		if r.locked {
			// §10.1.3: cancelling the initial configuration destroys the room.
			m.destroy(r, nil)
			finish(false, true)
			return
		}
		finish(false, false)
		return
	case "submit":
	default:
		r.fail(st, stanza.ErrText(stanza.BadRequest, "the form must be of type submit or cancel"))
		finish(false, false)
		return
	}
	vals := formValues(x)
	cfg, owners, admins, e := m.applyForm(r.cfg, vals)
	if e != nil {
		r.fail(st, *e)
		finish(false, false)
		return
	}
	// Plugins see the submission without the room's lock (they may call
	// the module's API).
	sub := &ConfigSubmit{room: r.jid, actor: from, values: vals, extra: maps.Clone(cfg.Extra)}
	if sub.extra == nil {
		sub.extra = map[string][]string{}
	}
	r.mu.Unlock()
	v := m.h.Fire(ctx, &event.Event{Name: EventConfigSubmit, To: r.jid, From: from, Data: sub})
	r.mu.Lock()
	if e, ok := v.Err(); ok {
		r.fail(st, e)
		finish(false, false)
		return
	}
	if r.destroyed || r.affiliationOf(from) != affOwner {
		r.fail(st, stanza.Err(stanza.Forbidden))
		finish(false, false)
		return
	}
	if len(sub.extra) > 0 {
		cfg.Extra = sub.extra
	} else {
		cfg.Extra = nil
	}
	old := r.cfg
	wasLocked := r.locked
	r.cfg = cfg
	r.locked = false
	r.changed()
	if len(r.history) > cfg.HistoryLength {
		r.history = slices.Delete(r.history, 0, len(r.history)-cfg.HistoryLength)
	}
	actorNick := ""
	if o := r.bySession(from); o != nil {
		actorNick = o.nick
	}
	m.applyLists(r, owners, affOwner, actorNick)
	m.applyLists(r, admins, affAdmin, actorNick)
	r.send(stanza.ResultReply(st, nil))
	if !wasLocked {
		m.notifyConfig(r, old, cfg)
	}
	if cfg.MembersOnly && !old.MembersOnly {
		// §9.3: non-members leave a room that becomes members-only (322).
		for _, o := range slices.Clone(r.occupants) {
			if a := o.aff(r); a < affMember {
				m.removeOccupant(r, o, stanza.New(stanza.NSClient, "presence", "type", "unavailable"),
					roleNone, a, []int{322}, nil)
			}
		}
	}
	finish(true, m.emptied(r))
}

// applyLists makes list (when submitted) the exact set of users with
// affiliation a.
func (m *MUC) applyLists(r *room, list []jid.JID, a affiliation, actorNick string) {
	if list == nil {
		return
	}
	want := map[string]bool{}
	for _, j := range list {
		want[j.String()] = true
		if r.affiliationOf(j) != a {
			m.setAffiliation(r, j, a, "", actorNick, "")
		}
	}
	for k, e := range maps.Clone(r.affs) {
		if e.Affiliation == a.String() && !want[k] {
			if j, err := jid.Parse(k); err == nil {
				m.setAffiliation(r, j, affNone, "", actorNick, "")
			}
		}
	}
}

// notifyConfig tells the occupants that the configuration changed (§10.2.1):
// status 104, and 170/171 and 172/173 for logging and anonymity changes.
func (m *MUC) notifyConfig(r *room, old, cfg roomConfig) {
	codes := []int{104}
	if cfg.Logging != old.Logging {
		codes = append(codes, map[bool]int{true: 170, false: 171}[cfg.Logging])
	}
	if cfg.Whois != old.Whois {
		codes = append(codes, map[bool]int{true: 172, false: 173}[cfg.Whois == "anyone"])
	}
	msg := stanza.New(stanza.NSClient, "message", "type", "groupchat", "from", r.jid.String(), "id", newID())
	x := msg.AddChild(stanza.New(NSUser, "x"))
	for _, c := range codes {
		x.AddChild(stanza.New(NSUser, "status", "code", strconv.Itoa(c)))
	}
	for _, o := range r.occupants {
		r.sendTo(o, msg)
	}
}

// destroy removes every occupant with a <destroy/> notice (§10.9) and marks
// the room destroyed. d is the owner's <destroy/> (nil: none). mu held.
func (m *MUC) destroy(r *room, d *stanza.Element) {
	notice := stanza.New(NSUser, "destroy")
	if d != nil {
		notice.SetAttr("jid", d.Attr("jid"))
		if reason := d.ChildText(NSOwner, "reason"); reason != "" {
			notice.AddChild(stanza.New(NSUser, "reason")).AddText(reason)
		}
		if pw := d.ChildText(NSOwner, "password"); pw != "" {
			notice.AddChild(stanza.New(NSUser, "password")).AddText(pw)
		}
	}
	for _, o := range r.occupants {
		p := stanza.New(stanza.NSClient, "presence", "type", "unavailable", "from", r.occupantJID(o.nick))
		x := p.AddChild(stanza.New(NSUser, "x"))
		x.AddChild(stanza.New(NSUser, "item", "affiliation", "none", "role", "none"))
		x.AddChild(notice)
		p.AddChild(stanza.New(NSOccupantID, "occupant-id", "id", o.id))
		r.sendTo(o, p)
	}
	r.occupants = nil
	r.history = nil
	r.destroyed = true
}

// API is what the module publishes on the component host under
// ProvideName, for other modules (which declare the methods they use).
type API struct{ m *MUC }

// Rooms lists the bare JIDs of the service's rooms, sorted.
func (a API) Rooms() []jid.JID {
	rs := a.m.svc.allRooms()
	out := make([]jid.JID, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.jid)
	}
	slices.SortFunc(out, func(x, y jid.JID) int {
		switch xs, ys := x.String(), y.String(); {
		case xs < ys:
			return -1
		case xs > ys:
			return 1
		}
		return 0
	})
	return out
}

// RoomConfigValue returns what a room stores for a plugin configuration
// field (see EventConfigSubmit), nil if nothing or no such room.
func (a API) RoomConfigValue(room jid.JID, field string) []string {
	r := a.m.svc.room(room.Local())
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cfg.Extra[field])
}
