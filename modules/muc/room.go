package muc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// role is an occupant's role (XEP-0045 §5.1), ordered by privilege.
type role int

const (
	roleNone role = iota
	roleVisitor
	roleParticipant
	roleModerator
)

var roleNames = [...]string{"none", "visitor", "participant", "moderator"}

func (r role) String() string { return roleNames[r] }

func parseRole(s string) (role, bool) {
	for i, n := range roleNames {
		if n == s {
			return role(i), true
		}
	}
	return roleNone, false
}

// affiliation is a user's long-lived relation to a room (§5.2), ordered by
// privilege; outcast is below none.
type affiliation int

const (
	affOutcast affiliation = iota - 1
	affNone
	affMember
	affAdmin
	affOwner
)

func (a affiliation) String() string {
	switch a {
	case affOutcast:
		return "outcast"
	case affMember:
		return "member"
	case affAdmin:
		return "admin"
	case affOwner:
		return "owner"
	}
	return "none"
}

func parseAffiliation(s string) (affiliation, bool) {
	switch s {
	case "outcast":
		return affOutcast, true
	case "none":
		return affNone, true
	case "member":
		return affMember, true
	case "admin":
		return affAdmin, true
	case "owner":
		return affOwner, true
	}
	return affNone, false
}

// affEntry is one affiliation of a bare JID with a room.
type affEntry struct {
	Affiliation string `json:"affiliation"`
	Nick        string `json:"nick,omitempty"`   // reserved nickname
	Reason      string `json:"reason,omitempty"` // ban reason
}

// occupant is one nickname in a room; several sessions (resources) of the
// same user may share it.
type occupant struct {
	nick     string
	bare     jid.JID
	sessions []*session // in joining order
	role     role
	id       string // XEP-0421 occupant id
}

type session struct {
	jid  jid.JID
	pres *stanza.Element // the client's last presence, without MUC extensions
}

// realJID is the occupant's most recent session's full JID.
func (o *occupant) realJID() jid.JID { return o.sessions[len(o.sessions)-1].jid }

func (o *occupant) presence() *stanza.Element { return o.sessions[len(o.sessions)-1].pres }

func (o *occupant) session(full jid.JID) int {
	for i, s := range o.sessions {
		if s.jid.Equal(full) {
			return i
		}
	}
	return -1
}

// histEntry is one message of the discussion history: the message as
// broadcast (from the occupant JID, without 'to').
type histEntry struct {
	msg   *stanza.Element
	when  time.Time
	chars int
}

// pendingIQ is an IQ forwarded to an occupant, waiting for its answer.
type pendingIQ struct {
	requester jid.JID // real full JID of the requester
	id        string  // the requester's id
	target    string  // nick the request went to
	when      time.Time
}

// room is one chat room. Everything is guarded by mu; see MUC.flush for
// how outgoing stanzas leave the room.
//
// Locks of this package (liveMu, service.mu, room.mu, room.saveMu) are
// never held together, and none is held while routing, firing events or
// calling storage (save takes saveMu only after releasing mu).
type room struct {
	svc  *service
	jid  jid.JID
	name string // localpart

	mu          sync.Mutex
	cfg         roomConfig
	affs        map[string]affEntry // bare JID → affiliation
	subject     string
	subjectNick string
	subjectTime time.Time
	created     time.Time
	locked      bool // created and not configured yet (§10.1.1)
	destroyed   bool
	occupants   []*occupant // in joining order
	history     []histEntry
	pending     map[string]pendingIQ
	iqSeq       uint64

	out      []*stanza.Element
	flushing bool

	version int64 // bumped on every change of persistent state
	saveMu  sync.Mutex
	saved   int64 // version last written
}

func newRoom(s *service, j jid.JID) *room {
	return &room{svc: s, jid: j, name: j.Local(), affs: map[string]affEntry{}, created: time.Now().UTC()}
}

// send queues st for routing by the next flush. Call with mu held.
func (r *room) send(st *stanza.Element) { r.out = append(r.out, st) }

// occupantJID is room@service/nick.
func (r *room) occupantJID(nick string) string { return r.jid.String() + "/" + nick }

func (r *room) byNick(nick string) *occupant {
	for _, o := range r.occupants {
		if o.nick == nick {
			return o
		}
	}
	return nil
}

// bySession finds the occupant a real full JID is joined as.
func (r *room) bySession(full jid.JID) *occupant {
	for _, o := range r.occupants {
		if o.session(full) >= 0 {
			return o
		}
	}
	return nil
}

func (r *room) removeOccupant(o *occupant) {
	for i, x := range r.occupants {
		if x == o {
			r.occupants = append(r.occupants[:i], r.occupants[i+1:]...)
			return
		}
	}
}

// affiliationOf returns the affiliation of a bare JID: the JID's own, else
// that of its domain (affiliations may name whole servers, §9.1).
func (r *room) affiliationOf(bare jid.JID) affiliation {
	if e, ok := r.affs[bare.Bare().String()]; ok {
		a, _ := parseAffiliation(e.Affiliation)
		return a
	}
	if e, ok := r.affs[bare.Domain()]; ok {
		a, _ := parseAffiliation(e.Affiliation)
		return a
	}
	return affNone
}

func (o *occupant) aff(r *room) affiliation { return r.affiliationOf(o.bare) }

// reservedBy returns the bare JID that reserved nick through its
// affiliation, or "".
func (r *room) reservedBy(nick string) string {
	for j, e := range r.affs {
		if e.Nick == nick && e.Affiliation != "outcast" {
			return j
		}
	}
	return ""
}

// defaultRole is the role of an entering occupant (§5.1.2).
func (r *room) defaultRole(a affiliation) role {
	switch {
	case a >= affAdmin:
		return roleModerator
	case a == affMember:
		return roleParticipant
	case r.cfg.Moderated:
		return roleVisitor
	}
	return roleParticipant
}

func (r *room) owners() []string {
	var out []string
	for j, e := range r.affs {
		if e.Affiliation == "owner" {
			out = append(out, j)
		}
	}
	sort.Strings(out)
	return out
}

// seesJIDs reports whether an occupant with role rl may see real JIDs.
func (r *room) seesJIDs(rl role) bool {
	return r.cfg.Whois == "anyone" || rl == roleModerator
}

// broadcasts reports whether presence of an occupant with role rl is sent
// to the others (muc#roomconfig_presencebroadcast).
func (r *room) broadcasts(rl role) bool {
	if rl == roleNone {
		return true // departures are always announced
	}
	for _, b := range r.cfg.PresenceBroadcast {
		if b == rl.String() {
			return true
		}
	}
	return false
}

// occupantID is the XEP-0421 id of a user in this room: an HMAC of the
// room and the user's bare JID under the service secret (§4.1), stable and
// different in every room.
func (s *service) occupantID(room, bare jid.JID) string {
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte(room.String()))
	mac.Write([]byte{0})
	mac.Write([]byte(bare.String()))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// presenceOf builds o's presence as a recipient sees it: base's type and
// children (the client's presence, or an unavailable one) with a muc#user
// <x/> carrying the item (role rl, affiliation a, the real JID when
// withJID) and the status codes, and the occupant id. extra items are
// added inside the item (actor, reason) or the x (destroy) by decorate.
func (r *room) presenceOf(o *occupant, withJID, self bool, base *stanza.Element, rl role, a affiliation, codes []int, decorate func(x, item *stanza.Element)) *stanza.Element {
	p := &stanza.Element{Space: stanza.NSClient, Name: stanza.KindPresence}
	p.SetAttr("from", r.occupantJID(o.nick))
	if t := base.Type(); t != "" {
		p.SetAttr("type", t)
	}
	if self && base.ID() != "" {
		p.SetAttr("id", base.ID())
	}
	for _, n := range base.Children {
		if n.El == nil || isMUCExtension(n.El) {
			continue
		}
		p.Children = append(p.Children, n)
	}
	x := stanza.New(NSUser, "x")
	item := x.AddChild(stanza.New(NSUser, "item", "affiliation", a.String(), "role", rl.String()))
	if withJID || self {
		item.SetAttr("jid", o.realJID().String())
	}
	if decorate != nil {
		decorate(x, item)
	}
	for _, c := range codes {
		x.AddChild(stanza.New(NSUser, "status", "code", strconv.Itoa(c)))
	}
	p.AddChild(x)
	p.AddChild(stanza.New(NSOccupantID, "occupant-id", "id", o.id))
	return p
}

// isMUCExtension reports whether el is something clients must not
// reflect through the room: MUC elements and occupant ids (XEP-0045 §17.2
// rule 6, XEP-0421 §4).
func isMUCExtension(el *stanza.Element) bool {
	switch el.Space {
	case NS, NSUser, NSOccupantID:
		return true
	}
	return false
}

// broadcastPresence sends o's presence to every occupant's sessions: the
// variant with the real JID to those allowed to see it, and the self
// variant (status 110 plus selfCodes) to o's own sessions. Presence of
// roles that are not broadcast goes to o only.
func (r *room) broadcastPresence(o *occupant, base *stanza.Element, rl role, a affiliation, codes, selfCodes []int, decorate func(x, item *stanza.Element)) {
	var withJID, without *stanza.Element
	if r.broadcasts(rl) || r.broadcasts(o.role) {
		for _, rc := range r.occupants {
			if rc == o {
				continue
			}
			var t *stanza.Element
			if r.seesJIDs(rc.role) {
				if withJID == nil {
					withJID = r.presenceOf(o, true, false, base, rl, a, codes, decorate)
				}
				t = withJID
			} else {
				if without == nil {
					without = r.presenceOf(o, false, false, base, rl, a, codes, decorate)
				}
				t = without
			}
			r.sendTo(rc, t)
		}
	}
	self := r.presenceOf(o, true, true, base, rl, a, append(append([]int{110}, selfCodes...), codes...), decorate)
	r.sendTo(o, self)
}

// sendTo queues t for each session of rc. t is shared: each copy only
// gets its own attribute slice with 'to' (no deep copy per recipient).
func (r *room) sendTo(rc *occupant, t *stanza.Element) {
	for _, s := range rc.sessions {
		r.sendToJID(s.jid, t)
	}
}

// sendToJID queues a copy of the template t (which has no 'to') for to:
// a new element with its own attributes and t's children.
func (r *room) sendToJID(to jid.JID, t *stanza.Element) {
	c := &stanza.Element{Space: t.Space, Name: t.Name, Children: t.Children}
	c.Attrs = make([]stanza.Attr, len(t.Attrs), len(t.Attrs)+1)
	copy(c.Attrs, t.Attrs)
	c.Attrs = append(c.Attrs, stanza.Attr{Name: "to", Value: to.String()})
	r.send(c)
}

// ---- persistence ----

// savedRoom is the stored state of a persistent room.
type savedRoom struct {
	Config       roomConfig          `json:"config"`
	Affiliations map[string]affEntry `json:"affiliations"`
	Subject      string              `json:"subject,omitempty"`
	SubjectNick  string              `json:"subject_nick,omitempty"`
	SubjectTime  time.Time           `json:"subject_time,omitzero"`
	Created      time.Time           `json:"created"`
}

func (r *room) restore(st *savedRoom) {
	r.cfg = st.Config
	r.cfg.fill()
	if st.Affiliations != nil {
		r.affs = st.Affiliations
	}
	r.subject, r.subjectNick, r.subjectTime = st.Subject, st.SubjectNick, st.SubjectTime
	r.created = st.Created
	r.version, r.saved = 1, 1
}

// changed marks persistent state as modified. Call with mu held.
func (r *room) changed() { r.version++ }

// snapshot returns the state to store (nil: delete) and its version. Call
// with mu held.
func (r *room) snapshot() ([]byte, int64) {
	if !r.cfg.Persistent || r.destroyed || r.locked {
		return nil, r.version
	}
	affs := make(map[string]affEntry, len(r.affs))
	for k, v := range r.affs {
		affs[k] = v
	}
	b, _ := json.Marshal(savedRoom{Config: r.cfg, Affiliations: affs, Subject: r.subject,
		SubjectNick: r.subjectNick, SubjectTime: r.subjectTime, Created: r.created})
	return b, r.version
}

// save writes r's persistent state (or deletes it) if it changed.
func (m *MUC) save(ctx context.Context, r *room) {
	r.mu.Lock()
	b, v := r.snapshot()
	r.mu.Unlock()
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	if v <= r.saved {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	if b == nil && r.saved == 0 {
		r.saved = v // never stored: nothing to delete
		return
	}
	if b == nil {
		err = r.svc.store.Delete(ctx, r.name)
	} else {
		err = r.svc.store.Set(ctx, r.name, b)
	}
	if err != nil {
		m.log.Error("room not saved", "room", r.jid.String(), "err", err)
		return
	}
	r.saved = v
}
