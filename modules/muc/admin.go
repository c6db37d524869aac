package muc

import (
	"slices"
	"sort"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// adminGet answers a muc#admin list request: occupants by role (§8.5,
// §9.8) or users by affiliation (§9.5, §9.8, §10.5, §10.8).
func (m *MUC) adminGet(r *room, from jid.JID, st, q *stanza.Element) {
	item := q.Child(NSAdmin, "item")
	if item == nil {
		r.fail(st, stanza.ErrText(stanza.BadRequest, "an item is required"))
		return
	}
	actor := r.bySession(from)
	actorAff := r.affiliationOf(from)
	out := stanza.New(NSAdmin, "query")
	switch ra, aa := item.Attr("role"), item.Attr("affiliation"); {
	case ra != "" && aa != "":
		r.fail(st, stanza.ErrText(stanza.BadRequest, "role or affiliation, not both"))
		return
	case ra != "":
		rl, ok := parseRole(ra)
		if !ok || rl == roleNone {
			r.fail(st, stanza.ErrText(stanza.BadRequest, "unknown role"))
			return
		}
		if actor == nil || actor.role != roleModerator {
			r.fail(st, stanza.Err(stanza.Forbidden))
			return
		}
		for _, o := range r.occupants {
			if o.role == rl {
				out.AddChild(stanza.New(NSAdmin, "item", "affiliation", o.aff(r).String(),
					"jid", o.realJID().String(), "nick", o.nick, "role", o.role.String()))
			}
		}
	case aa != "":
		a, ok := parseAffiliation(aa)
		if !ok || a == affNone {
			r.fail(st, stanza.ErrText(stanza.BadRequest, "unknown affiliation"))
			return
		}
		allowed := actorAff >= affAdmin ||
			(a == affMember && actor != nil && slices.Contains(r.cfg.GetMemberList, actor.role.String()))
		if !allowed {
			r.fail(st, stanza.Err(stanza.Forbidden))
			return
		}
		var jids []string
		for j, e := range r.affs {
			if e.Affiliation == a.String() {
				jids = append(jids, j)
			}
		}
		sort.Strings(jids)
		for _, j := range jids {
			e := r.affs[j]
			it := out.AddChild(stanza.New(NSAdmin, "item", "affiliation", e.Affiliation, "jid", j))
			if a != affOutcast && e.Nick != "" {
				it.SetAttr("nick", e.Nick)
			}
			if e.Reason != "" {
				it.AddChild(stanza.New(NSAdmin, "reason")).AddText(e.Reason)
			}
		}
	default:
		r.fail(st, stanza.ErrText(stanza.BadRequest, "an item needs a role or an affiliation"))
		return
	}
	r.send(stanza.ResultReply(st, out))
}

// change is one item of a muc#admin set.
type change struct {
	target *occupant // role changes
	role   role
	who    jid.JID // affiliation changes (bare)
	aff    affiliation
	nick   string // reserved nick with an affiliation
	reason string
	isRole bool
}

// adminSet applies a muc#admin set: role changes (kick, voice, moderator)
// and affiliation changes (ban, membership, admin, owner), all or nothing.
func (m *MUC) adminSet(r *room, from jid.JID, st, q *stanza.Element) {
	actor := r.bySession(from)
	actorAff := r.affiliationOf(from)
	actorRole := roleNone
	if actor != nil {
		actorRole = actor.role
	}
	var changes []change
	for item := range q.Elements {
		if item.Space != NSAdmin || item.Name != "item" {
			continue
		}
		c, e := m.parseChange(r, actorRole, actorAff, from, item)
		if e != nil {
			r.fail(st, *e)
			return
		}
		changes = append(changes, c)
	}
	if len(changes) == 0 {
		r.fail(st, stanza.ErrText(stanza.BadRequest, "no item"))
		return
	}
	// A room keeps at least one owner (§10.6).
	owners := map[string]bool{}
	for _, o := range r.owners() {
		owners[o] = true
	}
	for _, c := range changes {
		if !c.isRole {
			owners[c.who.String()] = c.aff == affOwner
		}
	}
	if !slices.Contains(mapValues(owners), true) {
		r.fail(st, stanza.ErrText(stanza.Conflict, "a room needs at least one owner"))
		return
	}

	r.send(stanza.ResultReply(st, nil))
	actorNick := ""
	if actor != nil {
		actorNick = actor.nick
	}
	for _, c := range changes {
		if c.isRole {
			if r.byNick(c.target.nick) != c.target {
				continue // kicked by an earlier item
			}
			m.setRole(r, c.target, c.role, actorNick, c.reason)
			continue
		}
		m.setAffiliation(r, c.who, c.aff, c.nick, actorNick, c.reason)
	}
}

func mapValues(m map[string]bool) []bool {
	out := make([]bool, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// parseChange validates one item of a muc#admin set against the actor's
// privileges (§8, §9, §10 and §17.4 rules 4–6).
func (m *MUC) parseChange(r *room, actorRole role, actorAff affiliation, from jid.JID, item *stanza.Element) (change, *stanza.Error) {
	c := change{reason: item.ChildText(NSAdmin, "reason")}
	ra, aa := item.Attr("role"), item.Attr("affiliation")
	switch {
	case ra != "" && aa != "":
		return c, errp(stanza.ErrText(stanza.BadRequest, "role or affiliation, not both"))
	case ra != "":
		rl, ok := parseRole(ra)
		if !ok {
			return c, errp(stanza.ErrText(stanza.BadRequest, "unknown role"))
		}
		if actorRole != roleModerator {
			return c, errp(stanza.Err(stanza.Forbidden))
		}
		t := r.byNick(item.Attr("nick"))
		if t == nil {
			return c, errp(stanza.ErrText(stanza.ItemNotFound, "no such occupant"))
		}
		ta := t.aff(r)
		switch {
		case rl == roleNone && t.bare.Equal(from.Bare()):
			return c, errp(stanza.ErrText(stanza.Conflict, "you cannot kick yourself")) // §8.2
		case rl == roleNone && (ta >= affAdmin || ta > actorAff):
			return c, errp(stanza.Err(stanza.NotAllowed)) // §8.2
		case rl == roleModerator && actorAff < affAdmin:
			return c, errp(stanza.Err(stanza.NotAllowed)) // §9.6
		case t.role == roleModerator && rl != roleModerator && (actorAff < affAdmin || ta >= affAdmin):
			return c, errp(stanza.Err(stanza.NotAllowed)) // §9.7, §8.4
		}
		c.isRole, c.target, c.role = true, t, rl
		return c, nil
	case aa != "":
		a, ok := parseAffiliation(aa)
		if !ok {
			return c, errp(stanza.ErrText(stanza.BadRequest, "unknown affiliation"))
		}
		j, err := jid.Parse(item.Attr("jid"))
		if err != nil {
			return c, errp(stanza.ErrText(stanza.JIDMalformed, "item jid: "+err.Error()))
		}
		j = j.Bare()
		if actorAff < affAdmin {
			return c, errp(stanza.Err(stanza.Forbidden))
		}
		cur := r.affiliationOf(j)
		if (a >= affAdmin || cur >= affAdmin) && actorAff != affOwner {
			return c, errp(stanza.Err(stanza.NotAllowed)) // §9.1: admins cannot touch admins and owners
		}
		c.who, c.aff, c.nick = j, a, item.Attr("nick")
		if c.nick != "" {
			if o := r.reservedBy(c.nick); o != "" && o != j.String() {
				return c, errp(stanza.ErrText(stanza.Conflict, "nickname reserved by another user"))
			}
		}
		return c, nil
	}
	return c, errp(stanza.ErrText(stanza.BadRequest, "an item needs a role or an affiliation"))
}

// withActor adds <actor nick/> and <reason/> to an item.
func withActor(actorNick, reason string) func(x, item *stanza.Element) {
	return func(_, item *stanza.Element) {
		if actorNick != "" {
			item.AddChild(stanza.New(NSUser, "actor", "nick", actorNick))
		}
		if reason != "" {
			item.AddChild(stanza.New(NSUser, "reason")).AddText(reason)
		}
	}
}

// setRole changes an occupant's role; none kicks it (§8.2, status 307).
func (m *MUC) setRole(r *room, o *occupant, rl role, actorNick, reason string) {
	a := o.aff(r)
	if rl == roleNone {
		m.removeOccupant(r, o, stanza.New(stanza.NSClient, "presence", "type", "unavailable"), roleNone, a,
			[]int{307}, withActor(actorNick, reason))
		return
	}
	o.role = rl
	r.broadcastPresence(o, o.presence(), rl, a, nil, nil, withActor(actorNick, reason))
}

// setAffiliation records an affiliation and applies it to the user's
// occupants: banned (301) or removed from a members-only room (321), or
// their presence updated with the new affiliation and role.
func (m *MUC) setAffiliation(r *room, who jid.JID, a affiliation, nick, actorNick, reason string) {
	key := who.String()
	if a == affNone {
		delete(r.affs, key)
	} else {
		e := affEntry{Affiliation: a.String(), Nick: nick}
		if a == affOutcast {
			e = affEntry{Affiliation: a.String(), Reason: reason}
		} else if nick == "" {
			e.Nick = r.affs[key].Nick
		}
		r.affs[key] = e
	}
	r.changed()
	for _, o := range slices.Clone(r.occupants) {
		if !o.bare.Equal(who) && !(who.Local() == "" && o.bare.Domain() == who.Domain()) {
			continue
		}
		na := r.affiliationOf(o.bare)
		switch {
		case na == affOutcast:
			m.removeOccupant(r, o, stanza.New(stanza.NSClient, "presence", "type", "unavailable"), roleNone, na,
				[]int{301}, withActor(actorNick, reason))
		case r.cfg.MembersOnly && na < affMember:
			m.removeOccupant(r, o, stanza.New(stanza.NSClient, "presence", "type", "unavailable"), roleNone, na,
				[]int{321}, withActor(actorNick, reason))
		default:
			rl := r.defaultRole(na)
			if o.role > rl && na < affAdmin && o.role == roleModerator {
				o.role = rl // lost admin/owner: no longer a moderator
			} else if rl > o.role {
				o.role = rl
			}
			r.broadcastPresence(o, o.presence(), o.role, na, nil, nil, withActor(actorNick, reason))
		}
	}
}
