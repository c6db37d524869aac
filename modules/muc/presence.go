package muc

import (
	"context"
	"crypto/subtle"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// ghostConditions are the delivery errors after which an occupant is
// considered gone (XEP-0045 §17.3.3 "Ghost Users"); service-unavailable is
// what a server answers for a resource that is no longer connected.
var ghostConditions = map[stanza.Condition]bool{
	stanza.Gone: true, stanza.ItemNotFound: true, stanza.RecipientUnavailable: true,
	stanza.Redirect: true, stanza.RemoteServerNotFound: true, stanza.RemoteServerTimeout: true,
	stanza.ServiceUnavailable: true,
}

// onPresence handles presence to the service, a room or an occupant JID.
func (m *MUC) onPresence(ctx context.Context, ev *event.Event) event.Verdict {
	st, from, to := ev.Stanza, ev.From, ev.To
	if to.Local() == "" || from.IsZero() {
		return event.Handled // presence to the service itself: nothing to do
	}
	typ := st.Type()
	switch typ {
	case "", "unavailable", "error":
	default:
		// Subscriptions and probes are not joins or exits (§17.2 rules 1,
		// 2, 4); the room does not share presence otherwise.
		return event.Handled
	}
	r := m.svc.room(to.Local())
	if typ == "error" {
		if r != nil {
			m.errorFromOccupant(ctx, r, from, stanza.ParseError(st), true)
		}
		return event.Handled
	}
	if to.Resource() == "" {
		if typ == "unavailable" && r != nil {
			// Some clients leave by addressing the room itself.
			r.mu.Lock()
			o := r.bySession(from)
			r.mu.Unlock()
			if o != nil {
				m.leave(ctx, r, from, st)
			}
			return event.Handled
		}
		// §7.2.1: a join needs a nickname.
		return m.replyError(ctx, st, stanza.Err(stanza.JIDMalformed))
	}
	if typ == "unavailable" {
		if r != nil {
			m.leave(ctx, r, from, st) // §17.2 rule 5: ignored for non-occupants
		}
		return event.Handled
	}
	return m.available(ctx, ev)
}

// validNick applies §17.1: not empty, not only spaces, and the service's
// length limit.
func (m *MUC) validNick(nick string) bool {
	if len(nick) > m.MaxNickLength {
		return false
	}
	return strings.TrimFunc(nick, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) != ""
}

// available handles available presence to an occupant JID: a join, a
// re-join (resynchronisation), a nickname change or a status change.
func (m *MUC) available(ctx context.Context, ev *event.Event) event.Verdict {
	st, from, to := ev.Stanza, ev.From, ev.To
	nick := to.Resource()
	x := st.Child(NS, "x")
	for attempt := 0; attempt < 3; attempt++ {
		r, created, verdict := m.roomForJoin(ctx, ev, x != nil)
		if r == nil {
			return verdict
		}
		r.mu.Lock()
		if r.destroyed {
			r.mu.Unlock()
			continue // destroyed meanwhile: look again
		}
		cur := r.bySession(from)
		switch {
		case cur != nil && cur.nick != nick:
			m.changeNick(r, cur, from, nick, st)
		case cur != nil && x != nil:
			m.sendJoinState(r, cur, from, st, nil)
		case cur != nil:
			m.statusChange(r, cur, from, st)
		case x == nil:
			// §7.2.23: presence without <x/> from a non-occupant is a
			// desynchronised client (or groupchat 1.0): tell it it is not in.
			m.kickNonOccupant(r, from, st)
		default:
			m.join(ctx, r, from, nick, st, x, created)
		}
		r.mu.Unlock()
		m.flush(ctx, r)
		if created {
			m.h.Fire(ctx, &event.Event{Name: EventRoomCreated, To: r.jid, From: from})
			m.save(ctx, r)
		}
		return event.Handled
	}
	return m.replyError(ctx, st, stanza.Err(stanza.ResourceConstraint))
}

// roomForJoin returns the room an available presence is for, creating it
// when allowed (§10.1.1). created reports a new room. With a nil room, the
// verdict is the answer already given.
func (m *MUC) roomForJoin(ctx context.Context, ev *event.Event, mucJoin bool) (r *room, created bool, v event.Verdict) {
	st, from, to := ev.Stanza, ev.From, ev.To
	if !m.validNick(to.Resource()) {
		return nil, false, m.replyError(ctx, st, stanza.ErrText(stanza.JIDMalformed, "invalid nickname"))
	}
	if r = m.svc.room(to.Local()); r != nil {
		return r, false, event.Handled
	}
	if !mucJoin {
		return nil, false, m.replyError(ctx, st, stanza.Err(stanza.ItemNotFound))
	}
	if e := m.mayCreate(from); e != nil {
		return nil, false, m.replyError(ctx, st, *e)
	}
	m.svc.mu.Lock()
	defer m.svc.mu.Unlock()
	if r = m.svc.rooms[to.Local()]; r != nil {
		return r, false, event.Handled
	}
	if m.MaxRooms > 0 && len(m.svc.rooms) >= m.MaxRooms {
		return nil, false, m.replyError(ctx, st, stanza.ErrText(stanza.ResourceConstraint, "this service has too many rooms"))
	}
	r = newRoom(m.svc, to.Bare())
	r.cfg = m.defaultConfig()
	r.locked = m.LockNewRooms
	r.affs[from.Bare().String()] = affEntry{Affiliation: "owner"}
	r.changed()
	m.svc.rooms[r.name] = r
	return r, true, event.Handled
}

// mayCreate applies restrict_room_creation and max_rooms_per_user.
func (m *MUC) mayCreate(from jid.JID) *stanza.Error {
	bare := from.Bare()
	admin := m.h.IsAdmin(bare)
	switch m.RestrictRoomCreation {
	case CreateAdmin:
		if !admin {
			return errp(stanza.ErrText(stanza.NotAllowed, "only server admins may create rooms"))
		}
	case CreateLocal:
		if bare.Local() == "" || !m.h.IsLocal(from.Domain()) || from.Domain() == m.h.Name() {
			return errp(stanza.ErrText(stanza.NotAllowed, "only local users may create rooms"))
		}
	}
	if m.MaxRoomsPerUser > 0 && !admin {
		n := 0
		for _, r := range m.svc.allRooms() {
			r.mu.Lock()
			if r.affiliationOf(bare) == affOwner {
				n++
			}
			r.mu.Unlock()
		}
		if n >= m.MaxRoomsPerUser {
			return errp(stanza.ErrText(stanza.NotAllowed, "you own too many rooms already"))
		}
	}
	return nil
}

// join adds a new occupant (or a new session of an occupant) after the
// checks of §7.2. Called with r.mu held.
func (m *MUC) join(ctx context.Context, r *room, from jid.JID, nick string, st, x *stanza.Element, created bool) {
	bare := from.Bare()
	a := r.affiliationOf(bare)
	fail := func(e stanza.Error) {
		e.By = r.jid.String()
		r.send(stanza.ErrorReply(st, e))
	}
	existing := r.byNick(nick)
	switch {
	case r.locked && a != affOwner:
		fail(stanza.Err(stanza.ItemNotFound)) // §7.2.11
		return
	case a == affOutcast:
		fail(stanza.Err(stanza.Forbidden)) // §7.2.8
		return
	case r.cfg.MembersOnly && a < affMember:
		fail(stanza.Err(stanza.RegistrationRequired)) // §7.2.7
		return
	case existing != nil && !existing.bare.Equal(bare):
		fail(stanza.Err(stanza.Conflict)) // §7.2.9
		return
	}
	if owner := r.reservedBy(nick); owner != "" && owner != bare.String() {
		fail(stanza.Err(stanza.Conflict)) // reserved by another user
		return
	}
	if r.cfg.PasswordProtected && a < affAdmin {
		given := x.ChildText(NS, "password")
		if subtle.ConstantTimeCompare([]byte(given), []byte(r.cfg.Password)) != 1 {
			fail(stanza.Err(stanza.NotAuthorized)) // §7.2.6
			return
		}
	}
	if existing == nil && r.cfg.MaxUsers > 0 && len(r.occupants) >= r.cfg.MaxUsers && a < affAdmin {
		fail(stanza.Err(stanza.ServiceUnavailable)) // §7.2.10
		return
	}
	pres := clientPresence(st)
	if existing != nil {
		// Another resource of the same user takes the same nickname: it
		// shares the occupant (multi-session nick).
		existing.sessions = append(existing.sessions, &session{jid: from, pres: pres})
		m.sendJoinState(r, existing, from, st, x)
		return
	}
	o := &occupant{nick: nick, bare: bare, role: r.defaultRole(a), id: r.svc.occupantID(r.jid, bare),
		sessions: []*session{{jid: from, pres: pres}}}
	r.occupants = append(r.occupants, o)

	// §7.2.3: the others' presence first, then the new occupant's to
	// everyone, self-presence last among the presences.
	m.sendOthers(r, o, from)
	var selfCodes []int
	if r.cfg.Whois == "anyone" {
		selfCodes = append(selfCodes, 100)
	}
	if r.cfg.Logging {
		selfCodes = append(selfCodes, 170)
	}
	if created {
		selfCodes = append(selfCodes, 201)
	}
	r.broadcastPresence(o, withID(pres, st.ID()), o.role, a, nil, selfCodes, nil)
	if created && r.locked {
		return // no history nor subject in a room that does not exist yet
	}
	m.sendHistory(r, from, x.Child(NS, "history"))
	m.sendSubject(r, from)
}

// withID returns p with the id of the join presence, so that the
// self-presence reflects it (§7.2.3 note).
func withID(p *stanza.Element, id string) *stanza.Element {
	return p.ShallowCopy().SetAttr("id", id)
}

// clientPresence keeps what the room reflects of a client's presence: its
// children except MUC extensions (§17.2 rule 6).
func clientPresence(st *stanza.Element) *stanza.Element {
	p := &stanza.Element{Space: stanza.NSClient, Name: stanza.KindPresence}
	for _, n := range st.Children {
		if n.El != nil && !isMUCExtension(n.El) {
			p.Children = append(p.Children, n)
		}
	}
	return p
}

// sendOthers sends the presence of every other occupant to one session.
func (m *MUC) sendOthers(r *room, o *occupant, to jid.JID) {
	sees := r.seesJIDs(o.role)
	for _, other := range r.occupants {
		if other == o || !r.broadcasts(other.role) {
			continue
		}
		p := r.presenceOf(other, sees, false, other.presence(), other.role, other.aff(r), nil, nil)
		p.SetAttr("to", to.String())
		r.send(p)
	}
}

// sendJoinState sends everything a joining session gets (§7.2.3, §17.2
// rule 3: a join from an occupant is a resynchronisation).
func (m *MUC) sendJoinState(r *room, o *occupant, to jid.JID, st, x *stanza.Element) {
	if i := o.session(to); i >= 0 {
		o.sessions[i].pres = clientPresence(st)
	}
	m.sendOthers(r, o, to)
	var codes []int
	if r.cfg.Whois == "anyone" {
		codes = append(codes, 100)
	}
	codes = append(codes, 110)
	self := r.presenceOf(o, true, true, withID(o.presence(), st.ID()), o.role, o.aff(r), codes, nil)
	self.SetAttr("to", to.String())
	r.send(self)
	var hist *stanza.Element
	if x == nil {
		x = st.Child(NS, "x")
	}
	if x != nil {
		hist = x.Child(NS, "history")
	}
	m.sendHistory(r, to, hist)
	m.sendSubject(r, to)
}

// statusChange reflects a presence update of an occupant (§7.7).
func (m *MUC) statusChange(r *room, o *occupant, from jid.JID, st *stanza.Element) {
	i := o.session(from)
	o.sessions[i].pres = clientPresence(st)
	if i != len(o.sessions)-1 {
		// The most recent session speaks for the occupant.
		s := o.sessions[i]
		o.sessions = append(append(o.sessions[:i], o.sessions[i+1:]...), s)
	}
	r.broadcastPresence(o, o.presence(), o.role, o.aff(r), nil, nil, nil)
}

// changeNick renames an occupant (§7.6).
func (m *MUC) changeNick(r *room, o *occupant, from jid.JID, nick string, st *stanza.Element) {
	fail := func(e stanza.Error) {
		e.By = r.jid.String()
		r.send(stanza.ErrorReply(st, e))
	}
	if other := r.byNick(nick); other != nil {
		fail(stanza.Err(stanza.Conflict))
		return
	}
	if owner := r.reservedBy(nick); owner != "" && owner != o.bare.String() {
		fail(stanza.Err(stanza.Conflict))
		return
	}
	a := o.aff(r)
	old := stanza.New(stanza.NSClient, "presence", "type", "unavailable")
	r.broadcastPresence(o, old, o.role, a, []int{303}, nil, func(_, item *stanza.Element) {
		item.SetAttr("nick", nick)
	})
	o.nick = nick
	i := o.session(from)
	o.sessions[i].pres = clientPresence(st)
	r.broadcastPresence(o, o.presence(), o.role, a, nil, nil, nil)
}

// kickNonOccupant answers presence without <x/> from a non-occupant
// (§7.2.23): an explicit removal with codes 110, 307 and 333.
func (m *MUC) kickNonOccupant(r *room, from jid.JID, st *stanza.Element) {
	p := stanza.New(stanza.NSClient, "presence", "type", "unavailable", "from", st.To(), "to", from.String())
	x := p.AddChild(stanza.New(NSUser, "x"))
	item := x.AddChild(stanza.New(NSUser, "item", "affiliation", "none", "role", "none"))
	item.AddChild(stanza.New(NSUser, "reason")).AddText("You are not in the room.")
	for _, c := range []int{110, 307, 333} {
		x.AddChild(stanza.New(NSUser, "status", "code", strconv.Itoa(c)))
	}
	r.send(p)
}

// leave handles unavailable presence from an occupant's session (§7.14).
func (m *MUC) leave(ctx context.Context, r *room, from jid.JID, st *stanza.Element) {
	r.mu.Lock()
	o := r.bySession(from)
	if o == nil || r.destroyed {
		r.mu.Unlock()
		return
	}
	m.removeSession(r, o, from, clientPresence(st).SetAttr("type", "unavailable"), nil, nil)
	empty := m.emptied(r)
	r.mu.Unlock()
	m.flush(ctx, r)
	if empty {
		m.dispose(ctx, r, r.svc.jid)
	}
}

// removeSession removes one session of o; when it was the last one the
// occupant leaves and everyone is told (with codes and decorate), else
// only that session gets its unavailable self-presence. Called with mu held.
func (m *MUC) removeSession(r *room, o *occupant, from jid.JID, base *stanza.Element, codes []int, decorate func(x, item *stanza.Element)) {
	i := o.session(from)
	if len(o.sessions) > 1 {
		p := r.presenceOf(o, true, true, base, roleNone, o.aff(r), append([]int{110}, codes...), decorate)
		p.SetAttr("to", from.String())
		r.send(p)
		o.sessions = append(o.sessions[:i], o.sessions[i+1:]...)
		return
	}
	m.removeOccupant(r, o, base, roleNone, o.aff(r), codes, decorate)
}

// removeOccupant announces o's departure to everyone (o included) and
// removes it. Called with mu held.
func (m *MUC) removeOccupant(r *room, o *occupant, base *stanza.Element, rl role, a affiliation, codes []int, decorate func(x, item *stanza.Element)) {
	r.broadcastPresence(o, base, rl, a, codes, nil, decorate)
	r.removeOccupant(o)
}

// emptied reports whether r should go away now: a temporary (or still
// locked) room without occupants (§10.9 note). It marks r destroyed.
// Called with mu held.
func (m *MUC) emptied(r *room) bool {
	if len(r.occupants) > 0 || (r.cfg.Persistent && !r.locked) || r.destroyed {
		return false
	}
	r.destroyed = true
	return true
}

// dispose forgets a destroyed room and its stored state.
func (m *MUC) dispose(ctx context.Context, r *room, actor jid.JID) {
	r.svc.remove(r)
	r.mu.Lock()
	wasStored := r.saved > 0
	r.changed()
	r.mu.Unlock()
	if wasStored {
		m.save(ctx, r)
	}
	m.h.Fire(ctx, &event.Event{Name: EventRoomDestroyed, To: r.jid, From: actor})
}

// errorFromOccupant removes an occupant whose server bounced what the room
// sent it (§17.3.3, status 333). presence errors always count; message
// errors only when they are delivery errors.
func (m *MUC) errorFromOccupant(ctx context.Context, r *room, from jid.JID, e stanza.Error, presence bool) {
	if !presence && !ghostConditions[e.Condition] {
		return
	}
	r.mu.Lock()
	o := r.bySession(from)
	if o == nil || r.destroyed {
		r.mu.Unlock()
		return
	}
	m.removeSession(r, o, from, stanza.New(stanza.NSClient, "presence", "type", "unavailable"), []int{333}, nil)
	empty := m.emptied(r)
	r.mu.Unlock()
	m.flush(ctx, r)
	if empty {
		m.dispose(ctx, r, r.svc.jid)
	}
}

// ---- history and subject ----

// addHistory keeps a broadcast message (mu held).
func (r *room) addHistory(msg *stanza.Element) {
	n := r.cfg.HistoryLength
	if n <= 0 {
		r.history = r.history[:0]
		return
	}
	e := histEntry{msg: msg, when: time.Now().UTC(), chars: len(msg.Append(nil, stanza.NSClient))}
	if len(r.history) >= n {
		copy(r.history, r.history[len(r.history)-n+1:])
		r.history = r.history[:n-1]
	}
	r.history = append(r.history, e)
}

// sendHistory sends the discussion history to one session, limited by the
// room's length and the request's <history/> attributes (§7.2.14): the
// fewest messages meeting all of them, whole stanzas only.
func (m *MUC) sendHistory(r *room, to jid.JID, req *stanza.Element) {
	maxStanzas := r.cfg.HistoryLength
	maxChars := -1
	var since time.Time
	if req != nil {
		if v, err := strconv.Atoi(req.Attr("maxstanzas")); err == nil && v >= 0 {
			maxStanzas = min(maxStanzas, v)
		}
		if v, err := strconv.Atoi(req.Attr("maxchars")); err == nil && v >= 0 {
			maxChars = v
		}
		if v, err := strconv.Atoi(req.Attr("seconds")); err == nil && v >= 0 {
			since = time.Now().Add(-time.Duration(v) * time.Second)
		}
		if v := req.Attr("since"); v != "" {
			if t, err := time.Parse(time.RFC3339, v); err == nil && t.After(since) {
				since = t
			}
		}
	}
	first := len(r.history)
	chars := 0
	for i := len(r.history) - 1; i >= 0 && len(r.history)-i <= maxStanzas; i-- {
		e := r.history[i]
		if !since.IsZero() && e.when.Before(since) {
			break
		}
		// The delay element and the 'to' add to what the client receives.
		size := e.chars + len(to.String()) + 110
		if maxChars >= 0 && chars+size > maxChars {
			break
		}
		chars += size
		first = i
	}
	for _, e := range r.history[first:] {
		c := e.msg.ShallowCopy()
		c.Children = append(c.Children[:len(c.Children):len(c.Children)], stanza.Node{El: delay(r.jid, e.when)})
		c.SetAttr("to", to.String())
		r.send(c)
	}
}

func delay(from jid.JID, when time.Time) *stanza.Element {
	return stanza.New(NSDelay, "delay", "from", from.String(), "stamp", when.UTC().Format("2006-01-02T15:04:05.000Z"))
}

// sendSubject sends the current subject to one session (§7.2.15): from the
// occupant JID of who set it (the room's JID if unknown), with a delay
// element, or an empty subject.
func (m *MUC) sendSubject(r *room, to jid.JID) {
	from := r.jid.String()
	if r.subjectNick != "" {
		from = r.occupantJID(r.subjectNick)
	}
	msg := stanza.New(stanza.NSClient, "message", "type", "groupchat", "from", from, "to", to.String(), "id", newID())
	msg.AddChild(stanza.New(stanza.NSClient, "subject")).AddText(r.subject)
	if !r.subjectTime.IsZero() {
		msg.AddChild(delay(r.jid, r.subjectTime))
	}
	r.send(msg)
}
