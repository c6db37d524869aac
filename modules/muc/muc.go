// Package muc implements XEP-0045 Multi-User Chat (version 1.35) as a
// component host ([component."conference.example.org"] module = "muc"),
// with XEP-0410 MUC self-ping (the room answers the ping itself, the
// "self-ping optimisation"), XEP-0421 occupant identifiers on every
// presence and message the rooms send, and XEP-0004 data forms for room
// configuration (muc#roomconfig) and room information (muc#roominfo).
//
// What it covers: entering rooms (presence broadcast, status codes 100,
// 110, 170, 201, 210), nickname conflicts and changes (303), leaving,
// groupchat messages, subjects, private messages, discussion history with
// the maxstanzas/maxchars/seconds/since limits, roles and affiliations with
// the muc#admin protocol (kick, ban, voice, moderator, member/admin/owner
// lists), the muc#owner protocol (instant and reserved rooms, the
// configuration form, destruction), persistent rooms stored in the
// component's storage, members-only, password-protected, moderated,
// hidden/public and non-anonymous/semi-anonymous rooms, mediated
// invitations and declines (§7.8.2), voice requests (§7.13), disco#info and
// disco#items for the service, rooms and occupants, muc#unique room names,
// IQ forwarding to occupants (§17.4 IQ rules 2–3), removal of "ghost"
// occupants on delivery errors (§17.3.3, status 333) and the
// room-creation restriction and size limits of the service.
//
// Other modules extend the configuration form through events (see
// EventConfigForm and EventConfigSubmit in config.go): this is Metronome's
// "pluggable room configuration".
//
// Not implemented: room registration (§7.10, jabber:iq:register on a room),
// voice-request approval forms sent back by moderators (§8.6: they are
// forwarded, not processed), public logging (muc#roomconfig_enablelogging is
// stored and announced with status 170 but nothing is logged), XEP-0313
// archives of rooms, the muc#traffic node and server-to-server occupants'
// special cases beyond ordinary routing. Discussion history lives in memory
// only: it survives reloads, not restarts.
package muc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Namespaces.
const (
	NS           = "http://jabber.org/protocol/muc"
	NSUser       = NS + "#user"
	NSAdmin      = NS + "#admin"
	NSOwner      = NS + "#owner"
	NSUnique     = NS + "#unique"
	NSRequest    = NS + "#request"
	NSRoomConfig = NS + "#roomconfig"
	NSRoomInfo   = NS + "#roominfo"
	NSSelfPing   = NS + "#self-ping-optimization" // XEP-0410 §3.2
	NSOccupantID = "urn:xmpp:occupant-id:0"       // XEP-0421
	NSDelay      = "urn:xmpp:delay"               // XEP-0203
	NSData       = "jabber:x:data"                // XEP-0004
	NSDiscoInfo  = "http://jabber.org/protocol/disco#info"
	NSDiscoItems = "http://jabber.org/protocol/disco#items"
	NSPing       = "urn:xmpp:ping"
)

// Store names on the component host.
const (
	storeRooms   = "muc_rooms"   // KeyVal: room localpart → JSON room state (persistent rooms)
	storeService = "muc_service" // KeyVal: "" → the service secret (occupant ids)
)

func init() { module.Register(new(MUC)) }

// Restriction is restrict_room_creation: who may create rooms.
type Restriction string

// Room creation restrictions.
const (
	CreateAnyone Restriction = ""      // false: anyone who can reach the service
	CreateLocal  Restriction = "local" // users of this server's virtual hosts
	CreateAdmin  Restriction = "admin" // server admins only (true means the same)
)

// UnmarshalJSON accepts false, true (= "admin"), "local" and "admin".
func (r *Restriction) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "false", `""`:
		*r = CreateAnyone
	case "true", `"admin"`:
		*r = CreateAdmin
	case `"local"`:
		*r = CreateLocal
	default:
		return fmt.Errorf(`must be false, "local" or "admin", not %s`, b)
	}
	return nil
}

// RoomDefaults is the configuration of new rooms ([component."…".muc.room_defaults]).
type RoomDefaults struct {
	Persistent    bool   `json:"persistent"`
	Public        bool   `json:"public"`
	MembersOnly   bool   `json:"members_only"`
	Moderated     bool   `json:"moderated"`
	Whois         string `json:"whois"`    // "moderators" (semi-anonymous) or "anyone" (non-anonymous)
	AllowPM       string `json:"allow_pm"` // "anyone", "participants", "moderators" or "none"
	ChangeSubject bool   `json:"change_subject"`
	AllowInvites  bool   `json:"allow_invites"`
	// HistoryLength is the number of messages kept; 0 means max_history.
	HistoryLength int `json:"history_length"`
	// MaxUsers is the default occupant limit; 0 means max_occupants.
	MaxUsers int `json:"max_users"`
}

// MUC is the module and its configuration ([component."…".muc]).
type MUC struct {
	// Name is the service's disco identity name (and its item name in the
	// parent host's disco#items).
	Name string `json:"name"`
	// RestrictRoomCreation: false, "local" or "admin".
	RestrictRoomCreation Restriction `json:"restrict_room_creation"`
	// MaxOccupants caps every room's size (0: no cap); admins and owners
	// of a room may still enter a full room.
	MaxOccupants int `json:"max_occupants"`
	// MaxRoomsPerUser caps the rooms a user owns (0: no cap; server
	// admins are exempt).
	MaxRoomsPerUser int `json:"max_rooms_per_user"`
	// MaxRooms caps the rooms of the service (0: no cap).
	MaxRooms int `json:"max_rooms"`
	// MaxHistory is the largest history a room may keep.
	MaxHistory int `json:"max_history"`
	// LockNewRooms keeps a new room locked until its owner configures it
	// (XEP-0045 §10.1); false creates instant rooms on first join.
	LockNewRooms bool `json:"lock_new_rooms"`
	// MaxNickLength limits nicknames, in bytes.
	MaxNickLength int `json:"max_nick_length"`
	// MaxSubjectLength limits subjects, in bytes.
	MaxSubjectLength int `json:"max_subject_length"`
	// RoomDefaults configures new rooms.
	RoomDefaults RoomDefaults `json:"room_defaults"`

	h   module.Host
	svc *service
	log *slog.Logger
}

// Info implements module.Module.
func (*MUC) Info() module.Info {
	return module.Info{ID: "mod.muc", New: func() module.Module {
		return &MUC{
			Name:             "Chatrooms",
			MaxOccupants:     500,
			MaxHistory:       50,
			LockNewRooms:     true,
			MaxNickLength:    64,
			MaxSubjectLength: 1024,
			RoomDefaults: RoomDefaults{Public: true, Whois: "moderators", AllowPM: "anyone",
				AllowInvites: false, HistoryLength: 20},
		}
	}}
}

// Validate implements module.Validator.
func (m *MUC) Validate() error {
	switch {
	case m.MaxOccupants < 0:
		return errors.New("max_occupants: must not be negative")
	case m.MaxRoomsPerUser < 0:
		return errors.New("max_rooms_per_user: must not be negative")
	case m.MaxRooms < 0:
		return errors.New("max_rooms: must not be negative")
	case m.MaxHistory < 0:
		return errors.New("max_history: must not be negative")
	case m.MaxNickLength <= 0:
		return errors.New("max_nick_length: must be positive")
	case m.MaxSubjectLength <= 0:
		return errors.New("max_subject_length: must be positive")
	case m.RoomDefaults.HistoryLength < 0:
		return errors.New("room_defaults.history_length: must not be negative")
	case m.RoomDefaults.MaxUsers < 0:
		return errors.New("room_defaults.max_users: must not be negative")
	}
	if _, ok := whoisValues[m.RoomDefaults.Whois]; !ok {
		return fmt.Errorf(`room_defaults.whois: must be "moderators" or "anyone", not %q`, m.RoomDefaults.Whois)
	}
	if _, ok := allowPMValues[m.RoomDefaults.AllowPM]; !ok {
		return fmt.Errorf(`room_defaults.allow_pm: must be "anyone", "participants", "moderators" or "none", not %q`, m.RoomDefaults.AllowPM)
	}
	return nil
}

// Provision implements module.Provisioner.
func (m *MUC) Provision(h module.Host) error {
	if h.Accounts() != nil {
		return errors.New(`muc runs as a component: configure it as [component."<domain>"] module = "muc", not in a host's modules`)
	}
	if err := m.Validate(); err != nil {
		return err
	}
	m.h = h
	m.log = h.Logger()
	svc, err := acquire(h, m)
	if err != nil {
		return err
	}
	m.svc = svc

	h.AddIdentity("conference", "text", m.Name)
	for _, f := range []string{NS, NSUnique, NSDiscoInfo, NSDiscoItems, NSOccupantID, NSPing} {
		h.AddFeature(f)
	}
	for _, kind := range []string{stanza.KindPresence, stanza.KindMessage, stanza.KindIQ} {
		for _, dest := range []string{"host", "bare", "full"} {
			var fn event.Handler
			switch kind {
			case stanza.KindPresence:
				fn = m.onPresence
			case stanza.KindMessage:
				fn = m.onMessage
			default:
				fn = m.onIQ
			}
			h.Hook(module.StanzaEvent(kind, dest), event.PrioDefault, fn)
		}
	}
	h.Provide(ProvideName, API{m: m})
	return nil
}

// Cleanup implements module.CleanerUpper: the last instance of a service
// (shutdown, or the component removed from the configuration) tells every
// occupant that the service is going away (status 332).
func (m *MUC) Cleanup() error {
	if m.svc == nil {
		return nil
	}
	if release(m.svc) {
		m.shutdown(context.Background())
	}
	return nil
}

// service is the state of one MUC domain: its rooms and secret. It outlives
// the module instances of one configuration generation: a reload provisions
// a new instance that adopts the live state (see acquire), so occupants and
// non-persistent rooms survive reloads.
type service struct {
	jid    jid.JID
	secret []byte
	store  storage.KeyVal

	mu    sync.Mutex
	rooms map[string]*room // by room localpart
	refs  int
	key   liveKey
}

// liveKey identifies a service across generations: the storage driver of
// the server (unique per running server) and the component's domain.
type liveKey struct {
	driver any
	host   string
}

var (
	liveMu sync.Mutex
	live   = map[liveKey]*service{}
)

// acquire returns the live service of h's domain, or loads one from storage.
func acquire(h module.Host, m *MUC) (*service, error) {
	stores := h.Store(storeRooms)
	key := liveKey{host: h.Name()}
	if d := stores.Driver; d != nil && reflect.TypeOf(d).Comparable() {
		key.driver = d
	}
	liveMu.Lock()
	defer liveMu.Unlock()
	if key.driver != nil {
		if s := live[key]; s != nil {
			s.refs++
			return s, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := &service{jid: h.JID(), store: stores.KeyVal(), rooms: map[string]*room{}, refs: 1, key: key}
	var err error
	if s.secret, err = loadSecret(ctx, h.Store(storeService).KeyVal()); err != nil {
		return nil, fmt.Errorf("muc: service secret: %w", err)
	}
	if err := s.load(ctx, m); err != nil {
		return nil, err
	}
	if key.driver != nil {
		live[key] = s
	}
	return s, nil
}

// release drops one reference and reports whether it was the last.
func release(s *service) bool {
	liveMu.Lock()
	defer liveMu.Unlock()
	s.refs--
	if s.refs > 0 {
		return false
	}
	if live[s.key] == s {
		delete(live, s.key)
	}
	return true
}

func loadSecret(ctx context.Context, kv storage.KeyVal) ([]byte, error) {
	b, err := kv.Get(ctx, "")
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, kv.Set(ctx, "", b)
}

// load reads the persistent rooms.
func (s *service) load(ctx context.Context, m *MUC) error {
	var names []string
	for name, err := range s.store.Users(ctx) {
		if err != nil {
			return fmt.Errorf("muc: list rooms: %w", err)
		}
		names = append(names, name)
	}
	for _, name := range names {
		b, err := s.store.Get(ctx, name)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("muc: load room %s: %w", name, err)
		}
		var st savedRoom
		if err := json.Unmarshal(b, &st); err != nil {
			m.log.Warn("stored room unreadable; skipped", "room", name, "err", err)
			continue
		}
		rj, err := jid.New(name, s.jid.Domain(), "")
		if err != nil {
			m.log.Warn("stored room has an invalid name; skipped", "room", name, "err", err)
			continue
		}
		r := newRoom(s, rj)
		r.restore(&st)
		s.rooms[name] = r
	}
	return nil
}

// room returns the live room named name, or nil.
func (s *service) room(name string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[name]
}

// allRooms returns the live rooms.
func (s *service) allRooms() []*room {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		out = append(out, r)
	}
	return out
}

// remove forgets r (destroyed or emptied) if it is still the live room of its name.
func (s *service) remove(r *room) {
	s.mu.Lock()
	if s.rooms[r.name] == r {
		delete(s.rooms, r.name)
	}
	s.mu.Unlock()
}

// shutdown sends status 332 to every occupant (XEP-0045 §18.2).
func (m *MUC) shutdown(ctx context.Context) {
	for _, r := range m.svc.allRooms() {
		r.mu.Lock()
		for _, o := range r.occupants {
			for _, s := range o.sessions {
				p := r.presenceOf(o, true, true, stanza.New(stanza.NSClient, "presence", "type", "unavailable"), roleNone, o.aff(r), []int{110, 332}, nil)
				p.SetAttr("to", s.jid.String())
				r.send(p)
			}
		}
		r.occupants = nil
		r.mu.Unlock()
		m.flush(ctx, r)
	}
}

// flush routes the stanzas r queued, in order. Stanzas are queued under
// the room's lock and routed without it, because routing may come back to
// the room on the same goroutine (a bounce from an occupant's server); the
// flushing flag makes sure only one goroutine routes a room's queue at a
// time, so every occupant sees the room's traffic in the order the room
// produced it.
func (m *MUC) flush(ctx context.Context, r *room) {
	r.mu.Lock()
	if r.flushing {
		r.mu.Unlock()
		return
	}
	r.flushing = true
	for len(r.out) > 0 {
		batch := r.out
		r.out = nil
		r.mu.Unlock()
		for i, st := range batch {
			if err := m.h.Route(ctx, st); err != nil {
				m.log.Debug("stanza not routed", "room", r.jid.String(), "err", err)
			}
			batch[i] = nil
		}
		r.mu.Lock()
	}
	r.flushing = false
	r.mu.Unlock()
}

// replyError answers st (addressed to the service or a room) with e,
// outside any room. Errors are never answered (RFC 6120 §8.3.1).
func (m *MUC) replyError(ctx context.Context, st *stanza.Element, e stanza.Error) event.Verdict {
	if stanza.IsError(st) || (st.Name == stanza.KindIQ && st.Type() != stanza.Get && st.Type() != stanza.Set) {
		return event.Handled
	}
	if e.By == "" {
		e.By = byOf(st.To())
	}
	if err := m.h.Route(ctx, stanza.ErrorReply(st, e)); err != nil {
		m.log.Debug("error reply not routed", "err", err)
	}
	return event.Handled
}

// byOf is the 'by' of an error generated for a stanza to to: the room's
// bare JID (XEP-0045 examples), or the service.
func byOf(to string) string {
	j, err := jid.Parse(to)
	if err != nil {
		return ""
	}
	return j.Bare().String()
}
