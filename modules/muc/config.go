package muc

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Pluggable room configuration.
//
// EventConfigForm is fired on the component's bus (without the room's lock
// held) each time an owner asks for the configuration form. Data is a
// *ConfigForm; To is the room's bare JID and From the owner's full JID.
// Handlers add their own fields with AddField, typically showing the value
// the room stores for them (Value). Handlers return event.Continue.
//
// EventConfigSubmit is fired when an owner submits the form, before
// anything is applied. Data is a *ConfigSubmit; To and From as above.
// Handlers read their fields with Submitted, validate them, and keep them
// with the room with Set (stored with persistent rooms, readable later
// through the "muc" API's RoomConfigValue). A handler that returns
// event.Error(e) rejects the whole submission: the owner gets e and the
// room's configuration does not change.
//
// Other modules must not import this package: they declare the methods they
// use, for instance
//
//	type configForm interface {
//		Room() jid.JID
//		Value(field string) []string
//		AddField(field *stanza.Element)
//	}
const (
	EventConfigForm   = "muc/config-form"
	EventConfigSubmit = "muc/config-submit"
)

// Room lifecycle events on the component's bus: To is the room's bare JID,
// From the entity that caused it (the creator, the owner destroying it, or
// the service's JID), Data is nil. Fired after the fact; the verdict is
// ignored.
const (
	EventRoomCreated   = "muc/room-created"
	EventRoomDestroyed = "muc/room-destroyed"
)

// ProvideName is the name of the API this module publishes on the
// component host (Host.Provide); its methods are those of API.
const ProvideName = "muc"

// ConfigForm is the payload of EventConfigForm.
type ConfigForm struct {
	room, actor jid.JID
	extra       map[string][]string
	fields      []*stanza.Element
}

// Room is the room's bare JID.
func (f *ConfigForm) Room() jid.JID { return f.room }

// Actor is the owner asking for the form.
func (f *ConfigForm) Actor() jid.JID { return f.actor }

// Value is what the room stores for a plugin field (nil if nothing).
func (f *ConfigForm) Value(field string) []string { return slices.Clone(f.extra[field]) }

// AddField appends a <field xmlns='jabber:x:data'/> to the form.
func (f *ConfigForm) AddField(field *stanza.Element) { f.fields = append(f.fields, field) }

// ConfigSubmit is the payload of EventConfigSubmit.
type ConfigSubmit struct {
	room, actor jid.JID
	values      map[string][]string
	extra       map[string][]string
}

// Room is the room's bare JID.
func (s *ConfigSubmit) Room() jid.JID { return s.room }

// Actor is the owner submitting the form.
func (s *ConfigSubmit) Actor() jid.JID { return s.actor }

// Submitted returns the values submitted for field, and whether it was.
func (s *ConfigSubmit) Submitted(field string) ([]string, bool) {
	v, ok := s.values[field]
	return slices.Clone(v), ok
}

// Set stores values for field with the room (nil removes it).
func (s *ConfigSubmit) Set(field string, values []string) {
	if values == nil {
		delete(s.extra, field)
		return
	}
	s.extra[field] = slices.Clone(values)
}

// roomConfig is a room's configuration (§10.2, muc#roomconfig).
type roomConfig struct {
	Name              string              `json:"name,omitempty"`
	Description       string              `json:"description,omitempty"`
	Lang              string              `json:"lang,omitempty"`
	Persistent        bool                `json:"persistent"`
	Public            bool                `json:"public"`
	MembersOnly       bool                `json:"members_only"`
	Moderated         bool                `json:"moderated"`
	PasswordProtected bool                `json:"password_protected"`
	Password          string              `json:"password,omitempty"`
	Whois             string              `json:"whois"`
	AllowPM           string              `json:"allow_pm"`
	ChangeSubject     bool                `json:"change_subject"`
	AllowInvites      bool                `json:"allow_invites"`
	Logging           bool                `json:"logging"`
	MaxUsers          int                 `json:"max_users"`
	HistoryLength     int                 `json:"history_length"`
	PresenceBroadcast []string            `json:"presence_broadcast"`
	GetMemberList     []string            `json:"get_member_list"`
	Extra             map[string][]string `json:"extra,omitempty"`
}

var (
	whoisValues   = map[string]string{"moderators": "Moderators only", "anyone": "Anyone"}
	allowPMValues = map[string]string{"anyone": "Anyone", "participants": "Participants and moderators",
		"moderators": "Moderators only", "none": "Nobody"}
	allRoles = []string{"moderator", "participant", "visitor"}
)

// fill completes a configuration read from storage by an older version.
func (c *roomConfig) fill() {
	if _, ok := whoisValues[c.Whois]; !ok {
		c.Whois = "moderators"
	}
	if _, ok := allowPMValues[c.AllowPM]; !ok {
		c.AllowPM = "anyone"
	}
	if c.PresenceBroadcast == nil {
		c.PresenceBroadcast = slices.Clone(allRoles)
	}
	if c.GetMemberList == nil {
		c.GetMemberList = []string{"moderator"}
	}
}

// defaultConfig is a new room's configuration.
func (m *MUC) defaultConfig() roomConfig {
	d := m.RoomDefaults
	c := roomConfig{Persistent: d.Persistent, Public: d.Public, MembersOnly: d.MembersOnly,
		Moderated: d.Moderated, Whois: d.Whois, AllowPM: d.AllowPM, ChangeSubject: d.ChangeSubject,
		AllowInvites: d.AllowInvites, MaxUsers: d.MaxUsers, HistoryLength: d.HistoryLength}
	if c.MaxUsers == 0 || (m.MaxOccupants > 0 && c.MaxUsers > m.MaxOccupants) {
		c.MaxUsers = m.MaxOccupants
	}
	if c.HistoryLength == 0 || c.HistoryLength > m.MaxHistory {
		c.HistoryLength = m.MaxHistory
	}
	c.fill()
	return c
}

// ---- XEP-0004 data forms ----

func dataForm(typ, formType string) *stanza.Element {
	x := stanza.New(NSData, "x", "type", typ)
	if formType != "" {
		addField(x, "hidden", "FORM_TYPE", "", formType)
	}
	return x
}

func addField(x *stanza.Element, typ, v, label string, values ...string) *stanza.Element {
	f := x.AddChild(stanza.New(NSData, "field", "type", typ, "var", v, "label", label))
	for _, val := range values {
		f.AddChild(stanza.New(NSData, "value")).AddText(val)
	}
	return f
}

func addOption(f *stanza.Element, label, value string) {
	f.AddChild(stanza.New(NSData, "option", "label", label)).AddChild(stanza.New(NSData, "value")).AddText(value)
}

func boolValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// formValues returns var → values of a submitted form.
func formValues(x *stanza.Element) map[string][]string {
	out := map[string][]string{}
	for f := range x.Elements {
		if f.Space != NSData || f.Name != "field" || f.Attr("var") == "" {
			continue
		}
		vals := []string{}
		for v := range f.Elements {
			if v.Space == NSData && v.Name == "value" {
				vals = append(vals, v.Text())
			}
		}
		out[f.Attr("var")] = vals
	}
	return out
}

// configForm builds the muc#roomconfig form for r (mu held).
func (m *MUC) configForm(r *room) *stanza.Element {
	c := r.cfg
	x := dataForm("form", NSRoomConfig)
	x.Children = append([]stanza.Node{{El: stanza.New(NSData, "title").AddText("Configuration for " + r.jid.String())}}, x.Children...)
	addField(x, "text-single", "muc#roomconfig_roomname", "Natural-Language Room Name", c.Name)
	addField(x, "text-single", "muc#roomconfig_roomdesc", "Short Description of Room", c.Description)
	addField(x, "text-single", "muc#roomconfig_lang", "Natural Language for Room Discussions", c.Lang)
	addField(x, "boolean", "muc#roomconfig_persistentroom", "Make Room Persistent", boolValue(c.Persistent))
	addField(x, "boolean", "muc#roomconfig_publicroom", "Make Room Publicly Searchable", boolValue(c.Public))
	addField(x, "boolean", "muc#roomconfig_membersonly", "Make Room Members-Only", boolValue(c.MembersOnly))
	addField(x, "boolean", "muc#roomconfig_moderatedroom", "Make Room Moderated", boolValue(c.Moderated))
	addField(x, "boolean", "muc#roomconfig_passwordprotectedroom", "Password Required to Enter", boolValue(c.PasswordProtected))
	addField(x, "text-private", "muc#roomconfig_roomsecret", "Password", c.Password)
	f := addField(x, "list-single", "muc#roomconfig_whois", "Who May Discover Real JIDs", c.Whois)
	for _, v := range []string{"moderators", "anyone"} {
		addOption(f, whoisValues[v], v)
	}
	f = addField(x, "list-single", "muc#roomconfig_allowpm", "Roles that May Send Private Messages", c.AllowPM)
	for _, v := range []string{"anyone", "participants", "moderators", "none"} {
		addOption(f, allowPMValues[v], v)
	}
	addField(x, "boolean", "muc#roomconfig_changesubject", "Allow Occupants to Change Subject", boolValue(c.ChangeSubject))
	addField(x, "boolean", "muc#roomconfig_allowinvites", "Allow Occupants to Invite Others", boolValue(c.AllowInvites))
	addField(x, "boolean", "muc#roomconfig_enablelogging", "Enable Public Logging", boolValue(c.Logging))
	max := "none"
	if c.MaxUsers > 0 {
		max = strconv.Itoa(c.MaxUsers)
	}
	f = addField(x, "list-single", "muc#roomconfig_maxusers", "Maximum Number of Occupants", max)
	for _, n := range []int{5, 10, 20, 30, 50, 100, 200, 500, 1000} {
		if m.MaxOccupants == 0 || n <= m.MaxOccupants {
			addOption(f, strconv.Itoa(n), strconv.Itoa(n))
		}
	}
	if m.MaxOccupants == 0 {
		addOption(f, "No limit", "none")
	}
	addField(x, "text-single", "muc#maxhistoryfetch", "Maximum Number of History Messages Returned by Room", strconv.Itoa(c.HistoryLength))
	f = addField(x, "list-multi", "muc#roomconfig_presencebroadcast", "Roles for which Presence is Broadcasted", c.PresenceBroadcast...)
	for _, v := range allRoles {
		addOption(f, v, v)
	}
	f = addField(x, "list-multi", "muc#roomconfig_getmemberlist", "Roles that May Retrieve the Member List", c.GetMemberList...)
	for _, v := range allRoles {
		addOption(f, v, v)
	}
	var owners, admins []string
	for j, e := range r.affs {
		switch e.Affiliation {
		case "owner":
			owners = append(owners, j)
		case "admin":
			admins = append(admins, j)
		}
	}
	slices.Sort(owners)
	slices.Sort(admins)
	addField(x, "jid-multi", "muc#roomconfig_roomowners", "Full List of Room Owners", owners...)
	addField(x, "jid-multi", "muc#roomconfig_roomadmins", "Full List of Room Admins", admins...)
	return x
}

// applyForm validates a submitted muc#roomconfig form against c and
// returns the new configuration, and the owner and admin lists when
// submitted (nil otherwise). It changes nothing on error.
func (m *MUC) applyForm(c roomConfig, vals map[string][]string) (roomConfig, []jid.JID, []jid.JID, *stanza.Error) {
	c.PresenceBroadcast = slices.Clone(c.PresenceBroadcast)
	c.GetMemberList = slices.Clone(c.GetMemberList)
	if ft, ok := vals["FORM_TYPE"]; ok && (len(ft) != 1 || ft[0] != NSRoomConfig) {
		return c, nil, nil, errp(stanza.ErrText(stanza.BadRequest, "FORM_TYPE must be "+NSRoomConfig))
	}
	bad := func(field, why string) *stanza.Error {
		return errp(stanza.ErrText(stanza.NotAcceptable, field+": "+why))
	}
	single := func(v string) (string, bool, *stanza.Error) {
		vs, ok := vals[v]
		if !ok {
			return "", false, nil
		}
		if len(vs) > 1 {
			return "", false, bad(v, "expects one value")
		}
		if len(vs) == 0 {
			return "", true, nil
		}
		return strings.TrimSpace(vs[0]), true, nil
	}
	strs := map[string]*string{
		"muc#roomconfig_roomname":   &c.Name,
		"muc#roomconfig_roomdesc":   &c.Description,
		"muc#roomconfig_lang":       &c.Lang,
		"muc#roomconfig_roomsecret": &c.Password,
	}
	for v, p := range strs {
		s, ok, e := single(v)
		if e != nil {
			return c, nil, nil, e
		}
		if ok {
			if len(s) > 1024 {
				return c, nil, nil, bad(v, "too long")
			}
			*p = s
		}
	}
	bools := map[string]*bool{
		"muc#roomconfig_persistentroom":        &c.Persistent,
		"muc#roomconfig_publicroom":            &c.Public,
		"muc#roomconfig_membersonly":           &c.MembersOnly,
		"muc#roomconfig_moderatedroom":         &c.Moderated,
		"muc#roomconfig_passwordprotectedroom": &c.PasswordProtected,
		"muc#roomconfig_changesubject":         &c.ChangeSubject,
		"muc#roomconfig_allowinvites":          &c.AllowInvites,
		"muc#roomconfig_enablelogging":         &c.Logging,
	}
	for v, p := range bools {
		s, ok, e := single(v)
		if e != nil {
			return c, nil, nil, e
		}
		if !ok {
			continue
		}
		switch s {
		case "1", "true":
			*p = true
		case "0", "false", "":
			*p = false
		default:
			return c, nil, nil, bad(v, "not a boolean")
		}
	}
	if s, ok, e := single("muc#roomconfig_whois"); e != nil {
		return c, nil, nil, e
	} else if ok {
		if _, known := whoisValues[s]; !known {
			return c, nil, nil, bad("muc#roomconfig_whois", "unknown value")
		}
		c.Whois = s
	}
	if s, ok, e := single("muc#roomconfig_allowpm"); e != nil {
		return c, nil, nil, e
	} else if ok {
		if _, known := allowPMValues[s]; !known {
			return c, nil, nil, bad("muc#roomconfig_allowpm", "unknown value")
		}
		c.AllowPM = s
	}
	if s, ok, e := single("muc#roomconfig_maxusers"); e != nil {
		return c, nil, nil, e
	} else if ok {
		switch n, err := strconv.Atoi(s); {
		case s == "none" || s == "" || s == "0":
			c.MaxUsers = m.MaxOccupants
		case err != nil || n < 0:
			return c, nil, nil, bad("muc#roomconfig_maxusers", "not a number")
		case m.MaxOccupants > 0 && n > m.MaxOccupants:
			return c, nil, nil, bad("muc#roomconfig_maxusers", "above the service's limit of "+strconv.Itoa(m.MaxOccupants))
		default:
			c.MaxUsers = n
		}
	}
	if s, ok, e := single("muc#maxhistoryfetch"); e != nil {
		return c, nil, nil, e
	} else if ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return c, nil, nil, bad("muc#maxhistoryfetch", "not a number")
		}
		c.HistoryLength = min(n, m.MaxHistory)
	}
	for v, p := range map[string]*[]string{"muc#roomconfig_presencebroadcast": &c.PresenceBroadcast,
		"muc#roomconfig_getmemberlist": &c.GetMemberList} {
		vs, ok := vals[v]
		if !ok {
			continue
		}
		out := []string{}
		for _, r := range vs {
			if !slices.Contains(allRoles, r) {
				return c, nil, nil, bad(v, "unknown role "+strconv.Quote(r))
			}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
		*p = out
	}
	if c.PasswordProtected && c.Password == "" {
		return c, nil, nil, bad("muc#roomconfig_roomsecret", "a password-protected room needs a password")
	}
	jids := func(v string) ([]jid.JID, *stanza.Error) {
		vs, ok := vals[v]
		if !ok {
			return nil, nil
		}
		out := []jid.JID{}
		for _, s := range vs {
			if strings.TrimSpace(s) == "" {
				continue
			}
			j, err := jid.Parse(strings.TrimSpace(s))
			if err != nil {
				return nil, errp(stanza.ErrText(stanza.JIDMalformed, v+": "+err.Error()))
			}
			out = append(out, j.Bare())
		}
		return out, nil
	}
	owners, e := jids("muc#roomconfig_roomowners")
	if e != nil {
		return c, nil, nil, e
	}
	admins, e := jids("muc#roomconfig_roomadmins")
	if e != nil {
		return c, nil, nil, e
	}
	if owners != nil && len(owners) == 0 {
		return c, nil, nil, errp(stanza.ErrText(stanza.Conflict, "a room needs at least one owner"))
	}
	if c.Extra != nil {
		c.Extra = maps.Clone(c.Extra)
	}
	return c, owners, admins, nil
}

func errp(e stanza.Error) *stanza.Error { return &e }
