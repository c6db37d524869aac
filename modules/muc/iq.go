package muc

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// maxPendingIQs bounds the IQs a room forwards to occupants and waits for.
const maxPendingIQs = 1000

// pendingTTL is how long the room remembers a forwarded IQ.
const pendingTTL = 2 * time.Minute

// onIQ handles IQs to the service, rooms and occupants.
func (m *MUC) onIQ(ctx context.Context, ev *event.Event) event.Verdict {
	st, from, to := ev.Stanza, ev.From, ev.To
	if from.IsZero() {
		return event.Handled
	}
	typ := st.Type()
	request := typ == stanza.Get || typ == stanza.Set
	if to.Local() == "" {
		if !request {
			return event.Continue // answers to the service's own requests (core)
		}
		return m.serviceIQ(ctx, st)
	}
	r := m.svc.room(to.Local())
	if r == nil {
		if !request {
			return event.Handled
		}
		return m.replyError(ctx, st, stanza.Err(stanza.ItemNotFound))
	}
	if to.Resource() != "" {
		m.occupantIQ(ctx, r, from, to.Resource(), st)
		return event.Handled
	}
	if !request {
		return event.Handled
	}
	p := st.FirstChild()
	r.mu.Lock()
	if r.destroyed {
		r.mu.Unlock()
		return m.replyError(ctx, st, stanza.Err(stanza.ItemNotFound))
	}
	v0 := r.version
	switch {
	case p.Space == NSDiscoInfo && p.Name == "query" && typ == stanza.Get:
		m.roomInfo(r, from, st, p)
	case p.Space == NSDiscoItems && p.Name == "query" && typ == stanza.Get:
		m.roomItems(r, from, st, p)
	case p.Space == NSAdmin && p.Name == "query" && typ == stanza.Get:
		m.adminGet(r, from, st, p)
	case p.Space == NSAdmin && p.Name == "query":
		m.adminSet(r, from, st, p)
	case p.Space == NSOwner && p.Name == "query" && typ == stanza.Get:
		m.ownerGet(ctx, r, from, st)
		return event.Handled // ownerGet unlocks and flushes
	case p.Space == NSOwner && p.Name == "query":
		m.ownerSet(ctx, r, from, st, p)
		return event.Handled // ownerSet unlocks, flushes and saves
	case p.Space == NSPing && p.Name == "ping" && typ == stanza.Get:
		r.send(stanza.ResultReply(st, nil))
	default:
		r.fail(st, stanza.Err(stanza.ServiceUnavailable))
	}
	changed := r.version != v0
	destroyed := m.emptied(r)
	r.mu.Unlock()
	m.flush(ctx, r)
	if changed {
		m.save(ctx, r)
	}
	if destroyed {
		m.dispose(ctx, r, from)
	}
	return event.Handled
}

// serviceIQ answers IQs to the service's domain.
func (m *MUC) serviceIQ(ctx context.Context, st *stanza.Element) event.Verdict {
	p := st.FirstChild()
	reply := func(payload *stanza.Element) event.Verdict {
		if err := m.h.Route(ctx, stanza.ResultReply(st, payload)); err != nil {
			m.log.Debug("reply not routed", "err", err)
		}
		return event.Handled
	}
	get := st.Type() == stanza.Get
	switch {
	case p.Space == NSDiscoInfo && p.Name == "query" && get:
		if p.Attr("node") != "" {
			return m.replyError(ctx, st, stanza.Err(stanza.ItemNotFound))
		}
		q := stanza.New(NSDiscoInfo, "query")
		di := m.h.Disco()
		for _, id := range di.Identities {
			q.AddChild(stanza.New(NSDiscoInfo, "identity", "category", id.Category, "type", id.Type, "name", id.Name))
		}
		for _, f := range di.Features {
			q.AddChild(stanza.New(NSDiscoInfo, "feature", "var", f))
		}
		for _, x := range di.Extensions {
			q.AddChild(x.Copy())
		}
		return reply(q)
	case p.Space == NSDiscoItems && p.Name == "query" && get:
		if p.Attr("node") != "" {
			return m.replyError(ctx, st, stanza.Err(stanza.ItemNotFound))
		}
		return reply(m.publicRooms())
	case p.Space == NSUnique && p.Name == "unique" && get:
		// §10.1.4: a name nobody uses.
		for {
			name := newID()
			if m.svc.room(name) == nil {
				return reply(stanza.New(NSUnique, "unique").AddText(name))
			}
		}
	case p.Space == NSPing && p.Name == "ping" && get:
		return reply(nil)
	}
	return m.replyError(ctx, st, stanza.Err(stanza.ServiceUnavailable))
}

// publicRooms lists the public, unlocked rooms (§6.3).
func (m *MUC) publicRooms() *stanza.Element {
	type item struct{ jid, name string }
	var items []item
	for _, r := range m.svc.allRooms() {
		r.mu.Lock()
		if r.cfg.Public && !r.locked && !r.destroyed {
			name := r.cfg.Name
			if name == "" {
				name = r.name
			}
			items = append(items, item{r.jid.String(), name})
		}
		r.mu.Unlock()
	}
	sort.Slice(items, func(i, j int) bool { return items[i].jid < items[j].jid })
	q := stanza.New(NSDiscoItems, "query")
	for _, it := range items {
		q.AddChild(stanza.New(NSDiscoItems, "item", "jid", it.jid, "name", it.name))
	}
	return q
}

// roomFeatures are the disco features describing r's type (§6.4, §15.6).
func (r *room) features() []string {
	pick := func(b bool, yes, no string) string {
		if b {
			return yes
		}
		return no
	}
	c := r.cfg
	fs := []string{NS, NSDiscoInfo, NSDiscoItems, NSOccupantID, NSSelfPing, NSPing,
		pick(c.Public, "muc_public", "muc_hidden"),
		pick(c.Persistent, "muc_persistent", "muc_temporary"),
		pick(c.MembersOnly, "muc_membersonly", "muc_open"),
		pick(c.Moderated, "muc_moderated", "muc_unmoderated"),
		pick(c.Whois == "anyone", "muc_nonanonymous", "muc_semianonymous"),
		pick(c.PasswordProtected, "muc_passwordprotected", "muc_unsecured"),
	}
	sort.Strings(fs)
	return fs
}

// roomInfo answers disco#info on a room (§6.4) with the muc#roominfo form.
func (m *MUC) roomInfo(r *room, from jid.JID, st, p *stanza.Element) {
	if p.Attr("node") != "" {
		r.fail(st, stanza.Err(stanza.ItemNotFound))
		return
	}
	if r.locked && r.affiliationOf(from) != affOwner {
		r.fail(st, stanza.Err(stanza.ItemNotFound))
		return
	}
	name := r.cfg.Name
	if name == "" {
		name = r.name
	}
	q := stanza.New(NSDiscoInfo, "query")
	q.AddChild(stanza.New(NSDiscoInfo, "identity", "category", "conference", "type", "text", "name", name))
	for _, f := range r.features() {
		q.AddChild(stanza.New(NSDiscoInfo, "feature", "var", f))
	}
	x := dataForm("result", NSRoomInfo)
	addField(x, "text-single", "muc#roominfo_description", "Description", r.cfg.Description)
	addField(x, "text-single", "muc#roominfo_occupants", "Number of occupants", strconv.Itoa(len(r.occupants)))
	addField(x, "text-single", "muc#roominfo_subject", "Subject", r.subject)
	addField(x, "boolean", "muc#roominfo_subjectmod", "Occupants may change the subject", boolValue(r.cfg.ChangeSubject))
	if r.cfg.Lang != "" {
		addField(x, "text-single", "muc#roominfo_lang", "Language of discussion", r.cfg.Lang)
	}
	addField(x, "text-single", "muc#maxhistoryfetch", "Maximum number of history messages", strconv.Itoa(r.cfg.HistoryLength))
	if r.cfg.Whois == "anyone" {
		addField(x, "jid-multi", "muc#roominfo_contactjid", "Contact addresses", r.owners()...)
	}
	addField(x, "text-single", "muc#roomconfig_roomname", "Name", r.cfg.Name)
	q.AddChild(x)
	r.send(stanza.ResultReply(st, q))
}

// roomItems answers disco#items on a room: the occupant JIDs for public
// rooms, or for occupants (§6.5); nothing otherwise.
func (m *MUC) roomItems(r *room, from jid.JID, st, p *stanza.Element) {
	if p.Attr("node") != "" {
		r.fail(st, stanza.Err(stanza.ItemNotFound))
		return
	}
	if r.locked && r.affiliationOf(from) != affOwner {
		r.fail(st, stanza.Err(stanza.ItemNotFound))
		return
	}
	q := stanza.New(NSDiscoItems, "query")
	if r.cfg.Public || r.bySession(from) != nil {
		for _, o := range r.occupants {
			q.AddChild(stanza.New(NSDiscoItems, "item", "jid", r.occupantJID(o.nick)))
		}
	}
	r.send(stanza.ResultReply(st, q))
}

// occupantIQ handles IQs to an occupant JID: the self-ping of XEP-0410
// answered by the room, requests forwarded to the occupant (§17.4 rule 3),
// and the answers to forwarded requests.
func (m *MUC) occupantIQ(ctx context.Context, r *room, from jid.JID, nick string, st *stanza.Element) {
	typ := st.Type()
	r.mu.Lock()
	defer func() {
		r.mu.Unlock()
		m.flush(ctx, r)
	}()
	if r.destroyed {
		if typ == stanza.Get || typ == stanza.Set {
			r.fail(st, stanza.Err(stanza.ItemNotFound))
		}
		return
	}
	sender := r.bySession(from)
	if typ == stanza.Result || typ == stanza.ErrorT {
		m.forwardAnswer(r, sender, nick, st)
		return
	}
	if sender == nil {
		// XEP-0410 §3.2: not-acceptable tells a client it is not joined.
		r.fail(st, stanza.Err(stanza.NotAcceptable))
		return
	}
	p := st.FirstChild()
	if sender.nick == nick && p.Space == NSPing && p.Name == "ping" && typ == stanza.Get {
		r.send(stanza.ResultReply(st, nil)) // XEP-0410 self-ping optimisation
		return
	}
	target := r.byNick(nick)
	if target == nil {
		r.fail(st, stanza.Err(stanza.ItemNotFound))
		return
	}
	r.expirePending()
	if len(r.pending) >= maxPendingIQs {
		r.fail(st, stanza.Err(stanza.ResourceConstraint))
		return
	}
	r.iqSeq++
	id := "muc" + strconv.FormatUint(r.iqSeq, 36) + "-" + newID()[:6]
	if r.pending == nil {
		r.pending = map[string]pendingIQ{}
	}
	r.pending[id] = pendingIQ{requester: from, id: st.ID(), target: nick, when: time.Now()}
	fwd := reflectedIQ(st, r.occupantJID(sender.nick), target.realJID().String(), id)
	r.send(fwd)
}

// forwardAnswer relays the answer of an occupant to a forwarded IQ.
func (m *MUC) forwardAnswer(r *room, sender *occupant, nick string, st *stanza.Element) {
	pi, ok := r.pending[st.ID()]
	if !ok || sender == nil || sender.nick != pi.target {
		return
	}
	delete(r.pending, st.ID())
	if r.byNick(nick) == nil {
		return
	}
	r.send(reflectedIQ(st, r.occupantJID(pi.target), pi.requester.String(), pi.id))
}

// reflectedIQ copies an IQ with new addresses and id; children are shared.
func reflectedIQ(st *stanza.Element, from, to, id string) *stanza.Element {
	c := &stanza.Element{Space: stanza.NSClient, Name: stanza.KindIQ, Children: slices.Clip(st.Children)}
	c.SetAttr("type", st.Type())
	c.SetAttr("id", id)
	c.SetAttr("from", from)
	c.SetAttr("to", to)
	return c
}

func (r *room) expirePending() {
	cut := time.Now().Add(-pendingTTL)
	for k, p := range r.pending {
		if p.when.Before(cut) {
			delete(r.pending, k)
		}
	}
}
