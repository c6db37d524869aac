package muc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// newID returns a random stanza id for stanzas the room originates.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// onMessage handles messages to the service, a room or an occupant JID.
func (m *MUC) onMessage(ctx context.Context, ev *event.Event) event.Verdict {
	st, from, to := ev.Stanza, ev.From, ev.To
	if from.IsZero() {
		return event.Handled
	}
	if to.Local() == "" {
		if stanza.IsError(st) {
			return event.Handled
		}
		return m.replyError(ctx, st, stanza.ErrText(stanza.ServiceUnavailable, "this is a chat service: send messages to rooms"))
	}
	r := m.svc.room(to.Local())
	if stanza.IsError(st) {
		if r != nil {
			m.errorFromOccupant(ctx, r, from, stanza.ParseError(st), false)
		}
		return event.Handled
	}
	if r == nil {
		return m.replyError(ctx, st, stanza.Err(stanza.ItemNotFound)) // §17.2 message rule 3
	}
	r.mu.Lock()
	if r.destroyed || r.locked && r.affiliationOf(from) != affOwner {
		r.mu.Unlock()
		return m.replyError(ctx, st, stanza.Err(stanza.ItemNotFound))
	}
	v0 := r.version
	switch {
	case to.Resource() != "":
		m.privateMessage(r, from, to.Resource(), st)
	case st.Type() == "groupchat":
		m.groupchat(r, from, st)
	default:
		m.roomMessage(r, from, st) // invitations may add members
	}
	changed := r.version != v0
	r.mu.Unlock()
	m.flush(ctx, r)
	if changed {
		m.save(ctx, r)
	}
	return event.Handled
}

// fail queues an error reply to st from the room (mu held).
func (r *room) fail(st *stanza.Element, e stanza.Error) {
	if stanza.IsError(st) {
		return
	}
	e.By = r.jid.String()
	r.send(stanza.ErrorReply(st, e))
}

// groupchat handles a message to all occupants (§7.4) or a subject
// change (§8.1). mu held.
func (m *MUC) groupchat(r *room, from jid.JID, st *stanza.Element) {
	o := r.bySession(from)
	if o == nil {
		r.fail(st, stanza.ErrText(stanza.NotAcceptable, "only occupants may send messages to the room"))
		return
	}
	if o.role < roleParticipant {
		r.fail(st, stanza.ErrText(stanza.Forbidden, "you have no voice in this room")) // §7.4
		return
	}
	subject := st.Child("", "subject")
	isSubject := subject != nil && st.Child("", "body") == nil
	if isSubject {
		if o.role != roleModerator && !r.cfg.ChangeSubject {
			r.fail(st, stanza.ErrText(stanza.Forbidden, "you may not change the subject")) // §8.1
			return
		}
		if len(subject.Text()) > m.MaxSubjectLength {
			r.fail(st, stanza.ErrText(stanza.NotAcceptable, "subject too long"))
			return
		}
	}
	msg := reflected(st, r.occupantJID(o.nick), o.id)
	if msg.ID() == "" {
		msg.SetAttr("id", newID())
	}
	for _, rc := range r.occupants {
		r.sendTo(rc, msg)
	}
	if isSubject {
		r.subject = subject.Text()
		r.subjectNick = o.nick
		r.subjectTime = time.Now().UTC()
		r.changed()
		return
	}
	if st.Child("", "body") != nil {
		r.addHistory(msg)
	}
}

// reflected builds the message the room sends on behalf of an occupant:
// st's attributes without to/from, from the occupant JID, st's children
// (shared, not copied) except MUC extensions and forged occupant ids, and
// the sender's occupant id (XEP-0421 §4).
func reflected(st *stanza.Element, from, occupantID string) *stanza.Element {
	msg := &stanza.Element{Space: stanza.NSClient, Name: st.Name}
	msg.Attrs = make([]stanza.Attr, 0, len(st.Attrs)+1)
	for _, a := range st.Attrs {
		if a.Space == "" && (a.Name == "to" || a.Name == "from") {
			continue
		}
		msg.Attrs = append(msg.Attrs, a)
	}
	msg.Attrs = append(msg.Attrs, stanza.Attr{Name: "from", Value: from})
	msg.Children = make([]stanza.Node, 0, len(st.Children)+1)
	for _, n := range st.Children {
		if n.El != nil && n.El.Space == NSOccupantID {
			continue
		}
		msg.Children = append(msg.Children, n)
	}
	msg.Children = append(msg.Children, stanza.Node{El: stanza.New(NSOccupantID, "occupant-id", "id", occupantID)})
	return msg
}

// privateMessage relays a message to one occupant (§7.5). mu held.
func (m *MUC) privateMessage(r *room, from jid.JID, nick string, st *stanza.Element) {
	if st.Type() == "groupchat" {
		r.fail(st, stanza.ErrText(stanza.BadRequest, "groupchat messages go to the room's JID")) // §7.5
		return
	}
	o := r.bySession(from)
	if o == nil {
		r.fail(st, stanza.ErrText(stanza.NotAcceptable, "only occupants may send private messages"))
		return
	}
	if !mayPM(r.cfg.AllowPM, o.role) {
		r.fail(st, stanza.ErrText(stanza.Forbidden, "private messages are not allowed in this room"))
		return
	}
	target := r.byNick(nick)
	if target == nil {
		r.fail(st, stanza.ErrText(stanza.ItemNotFound, "no such occupant"))
		return
	}
	msg := reflected(st, r.occupantJID(o.nick), o.id)
	if msg.Child(NSUser, "x") == nil {
		msg.Children = append(msg.Children, stanza.Node{El: stanza.New(NSUser, "x")}) // §7.5
	}
	r.sendTo(target, msg)
}

func mayPM(allow string, rl role) bool {
	switch allow {
	case "anyone":
		return rl >= roleVisitor
	case "participants":
		return rl >= roleParticipant
	case "moderators":
		return rl == roleModerator
	}
	return false
}

// roomMessage handles a non-groupchat message to the room itself:
// mediated invitations and declines (§7.8.2) and voice requests (§7.13).
// mu held.
func (m *MUC) roomMessage(r *room, from jid.JID, st *stanza.Element) {
	if x := st.Child(NSUser, "x"); x != nil {
		if x.Child(NSUser, "invite") != nil {
			m.invite(r, from, st, x)
			return
		}
		if d := x.Child(NSUser, "decline"); d != nil {
			m.decline(r, from, st, d)
			return
		}
	}
	if f := st.Child(NSData, "x"); f != nil {
		if v := formValues(f)["FORM_TYPE"]; len(v) == 1 && v[0] == NSRequest {
			m.voiceRequest(r, from, st)
			return
		}
	}
	r.fail(st, stanza.ErrText(stanza.BadRequest, "messages to all occupants must be of type groupchat")) // §17.2 message rule 1
}

// invite relays mediated invitations (§7.8.2). mu held.
func (m *MUC) invite(r *room, from jid.JID, st, x *stanza.Element) {
	o := r.bySession(from)
	if o == nil {
		r.fail(st, stanza.ErrText(stanza.NotAcceptable, "only occupants may invite"))
		return
	}
	a := o.aff(r)
	if r.cfg.MembersOnly && !r.cfg.AllowInvites && a < affAdmin && o.role != roleModerator {
		r.fail(st, stanza.ErrText(stanza.Forbidden, "only admins may invite to this room"))
		return
	}
	if !r.cfg.MembersOnly && !r.cfg.AllowInvites && o.role < roleParticipant {
		r.fail(st, stanza.ErrText(stanza.Forbidden, "visitors may not invite"))
		return
	}
	type invitation struct {
		to jid.JID
		el *stanza.Element
	}
	var invs []invitation
	for inv := range x.Elements {
		if inv.Space != NSUser || inv.Name != "invite" {
			continue
		}
		to, err := jid.Parse(inv.Attr("to"))
		if err != nil {
			r.fail(st, stanza.ErrText(stanza.JIDMalformed, "invite: "+err.Error()))
			return
		}
		invs = append(invs, invitation{to, inv})
	}
	for _, it := range invs {
		to, inv := it.to, it.el
		if r.cfg.MembersOnly && r.affiliationOf(to) < affMember {
			// §7.8.2: in a members-only room the invitee becomes a member.
			r.affs[to.Bare().String()] = affEntry{Affiliation: "member"}
			r.changed()
		}
		msg := stanza.New(stanza.NSClient, "message", "from", r.jid.String(), "to", to.String(), "id", newID())
		ux := msg.AddChild(stanza.New(NSUser, "x"))
		i := ux.AddChild(stanza.New(NSUser, "invite", "from", from.String()))
		if reason := inv.ChildText(NSUser, "reason"); reason != "" {
			i.AddChild(stanza.New(NSUser, "reason")).AddText(reason)
		}
		if inv.Child(NSUser, "continue") != nil {
			i.AddChild(inv.Child(NSUser, "continue"))
		}
		if r.cfg.PasswordProtected {
			ux.AddChild(stanza.New(NSUser, "password")).AddText(r.cfg.Password)
		}
		body := from.Bare().String() + " invites you to the room " + r.jid.String()
		if reason := inv.ChildText(NSUser, "reason"); reason != "" {
			body += ": " + reason
		}
		msg.AddChild(stanza.New(stanza.NSClient, "body")).AddText(body)
		r.send(msg)
	}
}

// decline relays a declined invitation to the inviter (§7.8.2).
func (m *MUC) decline(r *room, from jid.JID, st, d *stanza.Element) {
	to, err := jid.Parse(d.Attr("to"))
	if err != nil {
		r.fail(st, stanza.ErrText(stanza.JIDMalformed, "decline: "+err.Error()))
		return
	}
	msg := stanza.New(stanza.NSClient, "message", "from", r.jid.String(), "to", to.String(), "id", newID())
	dx := msg.AddChild(stanza.New(NSUser, "x")).AddChild(stanza.New(NSUser, "decline", "from", from.Bare().String()))
	if reason := d.ChildText(NSUser, "reason"); reason != "" {
		dx.AddChild(stanza.New(NSUser, "reason")).AddText(reason)
	}
	r.send(msg)
}

// voiceRequest forwards a visitor's request for voice to the moderators
// (§7.13, §8.6), with the occupant's nick and JID filled in.
func (m *MUC) voiceRequest(r *room, from jid.JID, st *stanza.Element) {
	o := r.bySession(from)
	if o == nil {
		r.fail(st, stanza.ErrText(stanza.NotAcceptable, "only occupants may request voice"))
		return
	}
	if o.role != roleVisitor {
		r.fail(st, stanza.ErrText(stanza.NotAcceptable, "you have voice already"))
		return
	}
	x := dataForm("form", NSRequest)
	x.Children = append([]stanza.Node{{El: stanza.New(NSData, "title").AddText("Voice request")}}, x.Children...)
	x.AddChild(stanza.New(NSData, "instructions")).AddText("To approve this request for voice, select the \"Grant voice\" checkbox and submit this form.")
	addField(x, "list-single", "muc#role", "Requested role", "participant")
	addField(x, "jid-single", "muc#jid", "User ID", o.realJID().String())
	addField(x, "text-single", "muc#roomnick", "Room Nickname", o.nick)
	addField(x, "boolean", "muc#request_allow", "Grant voice to this person?", "false")
	for _, mod := range r.occupants {
		if mod.role != roleModerator {
			continue
		}
		msg := stanza.New(stanza.NSClient, "message", "from", r.jid.String(), "id", newID())
		msg.AddChild(x)
		r.sendTo(mod, msg)
	}
}
