package muc

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

func TestRestrictionJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Restriction
		ok   bool
	}{
		{`false`, CreateAnyone, true},
		{`true`, CreateAdmin, true},
		{`"admin"`, CreateAdmin, true},
		{`"local"`, CreateLocal, true},
		{`"everyone"`, "", false},
		{`1`, "", false},
	} {
		var r Restriction
		err := json.Unmarshal([]byte(tc.in), &r)
		if (err == nil) != tc.ok || (tc.ok && r != tc.want) {
			t.Errorf("%s: got %q, %v", tc.in, r, err)
		}
	}
}

func TestValidate(t *testing.T) {
	m := (&MUC{}).Info().New().(*MUC)
	if err := m.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	m.RoomDefaults.Whois = "nobody"
	if err := m.Validate(); err == nil {
		t.Fatal("bad whois accepted")
	}
}

// historyRoom returns a room with n messages, one a minute, the last one a
// minute ago.
func historyRoom(n int) *room {
	r := newRoom(&service{}, jid.MustParse("garden@conference.localhost"))
	r.cfg.HistoryLength = 100
	now := time.Now()
	for i := range n {
		msg := stanza.New(stanza.NSClient, "message", "type", "groupchat", "id", string(rune('a'+i)))
		msg.AddChild(stanza.New(stanza.NSClient, "body")).AddText("hello")
		r.history = append(r.history, histEntry{msg: msg, when: now.Add(time.Duration(i-n) * time.Minute),
			chars: len(msg.Append(nil, stanza.NSClient))})
	}
	return r
}

func TestHistorySelection(t *testing.T) {
	to := jid.MustParse("romeo@localhost/orchard")
	one := len(historyRoom(1).history[0].msg.Append(nil, stanza.NSClient)) + len(to.String()) + 110
	for _, tc := range []struct {
		name string
		req  string
		want string
	}{
		{"all", ``, "abcde"},
		{"maxstanzas", `<history maxstanzas="2"/>`, "de"},
		{"maxstanzas 0", `<history maxstanzas="0"/>`, ""},
		{"maxchars 0", `<history maxchars="0"/>`, ""},
		{"maxchars two", `<history maxchars="` + itoa(2*one+1) + `"/>`, "de"},
		{"seconds", `<history seconds="150"/>`, "de"},
		{"since", `<history since="` + time.Now().Add(-210*time.Second).UTC().Format(time.RFC3339) + `"/>`, "cde"},
		{"smallest of all", `<history maxstanzas="4" seconds="150"/>`, "de"},
		{"garbage", `<history maxstanzas="x" since="yesterday"/>`, "abcde"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := historyRoom(5)
			var req *stanza.Element
			if tc.req != "" {
				x := stanza.New(NS, "x")
				el, err := parseEl(tc.req)
				if err != nil {
					t.Fatal(err)
				}
				x.AddChild(el)
				req = x.Child(NS, "history")
			}
			(&MUC{}).sendHistory(r, to, req)
			got := ""
			for _, st := range r.out {
				got += st.ID()
				if st.Child(NSDelay, "delay") == nil || st.To() != to.String() {
					t.Errorf("history stanza %s", st)
				}
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			// The stored messages are not modified.
			for _, e := range r.history {
				if e.msg.Child(NSDelay, "delay") != nil || e.msg.To() != "" {
					t.Fatalf("history entry modified: %s", e.msg)
				}
			}
		})
	}
}

func TestHistoryLength(t *testing.T) {
	r := historyRoom(0)
	r.cfg.HistoryLength = 3
	for i := range 5 {
		r.addHistory(stanza.New(stanza.NSClient, "message", "id", string(rune('a'+i))))
	}
	got := ""
	for _, e := range r.history {
		got += e.msg.ID()
	}
	if got != "cde" {
		t.Fatalf("kept %q", got)
	}
}

func TestApplyForm(t *testing.T) {
	m := (&MUC{}).Info().New().(*MUC)
	m.MaxOccupants = 100
	base := m.defaultConfig()
	for _, tc := range []struct {
		name string
		vals map[string][]string
		bad  stanza.Condition
		chk  func(c roomConfig) bool
	}{
		{"empty (instant room)", map[string][]string{}, "", func(c roomConfig) bool { return c.Whois == "moderators" }},
		{"name", map[string][]string{"muc#roomconfig_roomname": {" Garden "}}, "", func(c roomConfig) bool { return c.Name == "Garden" }},
		{"bool true", map[string][]string{"muc#roomconfig_persistentroom": {"true"}}, "", func(c roomConfig) bool { return c.Persistent }},
		{"bool bad", map[string][]string{"muc#roomconfig_persistentroom": {"yes"}}, stanza.NotAcceptable, nil},
		{"two values", map[string][]string{"muc#roomconfig_roomname": {"a", "b"}}, stanza.NotAcceptable, nil},
		{"maxusers none", map[string][]string{"muc#roomconfig_maxusers": {"none"}}, "", func(c roomConfig) bool { return c.MaxUsers == 100 }},
		{"maxusers over", map[string][]string{"muc#roomconfig_maxusers": {"101"}}, stanza.NotAcceptable, nil},
		{"history capped", map[string][]string{"muc#maxhistoryfetch": {"1000"}}, "", func(c roomConfig) bool { return c.HistoryLength == m.MaxHistory }},
		{"broadcast", map[string][]string{"muc#roomconfig_presencebroadcast": {"moderator", "moderator"}}, "", func(c roomConfig) bool {
			return len(c.PresenceBroadcast) == 1
		}},
		{"broadcast bad", map[string][]string{"muc#roomconfig_presencebroadcast": {"king"}}, stanza.NotAcceptable, nil},
		{"password needed", map[string][]string{"muc#roomconfig_passwordprotectedroom": {"1"}}, stanza.NotAcceptable, nil},
		{"form type", map[string][]string{"FORM_TYPE": {"urn:x"}}, stanza.BadRequest, nil},
		{"owners empty", map[string][]string{"muc#roomconfig_roomowners": {}}, stanza.Conflict, nil},
		{"owners bad jid", map[string][]string{"muc#roomconfig_roomowners": {"@@"}}, stanza.JIDMalformed, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _, e := m.applyForm(base, tc.vals)
			if tc.bad != "" {
				if e == nil || e.Condition != tc.bad {
					t.Fatalf("got %v, want %s", e, tc.bad)
				}
				return
			}
			if e != nil {
				t.Fatal(e)
			}
			if !tc.chk(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
	if base.Name != "" || len(base.PresenceBroadcast) != 3 {
		t.Fatal("applyForm modified its input")
	}
}

func TestOccupantIDStable(t *testing.T) {
	s := &service{secret: []byte("0123456789abcdef0123456789abcdef")}
	room1, room2 := jid.MustParse("a@conf.example"), jid.MustParse("b@conf.example")
	u := jid.MustParse("romeo@example")
	again := &service{secret: s.secret} // e.g. after a restart
	if s.occupantID(room1, u) != again.occupantID(room1, u) {
		t.Fatal("not stable")
	}
	if s.occupantID(room1, u) == s.occupantID(room2, u) {
		t.Fatal("same id in two rooms")
	}
	if n := len(s.occupantID(room1, u)); n == 0 || n > 128 {
		t.Fatalf("length %d", n)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func parseEl(s string) (*stanza.Element, error) { return xmlstream.ParseNS([]byte(s), NS) }

// BenchmarkGroupchatFanout measures what the room does per message for 100
// occupants before routing: one reflected template, then a shallow copy
// with its own 'to' per recipient (children shared, no deep copies).
func BenchmarkGroupchatFanout(b *testing.B) {
	s := &service{secret: make([]byte, 32)}
	r := newRoom(s, jid.MustParse("garden@conference.localhost"))
	r.cfg = (&MUC{}).Info().New().(*MUC).defaultConfig()
	for i := range 100 {
		u := jid.MustParse("user" + strconv.Itoa(i) + "@localhost/res")
		r.occupants = append(r.occupants, &occupant{nick: "n" + strconv.Itoa(i), bare: u.Bare(), role: roleParticipant,
			id: s.occupantID(r.jid, u.Bare()), sessions: []*session{{jid: u, pres: stanza.New(stanza.NSClient, "presence")}}})
	}
	msg, err := xmlstream.ParseNS([]byte(`<message from="user0@localhost/res" to="garden@conference.localhost" type="groupchat" id="m1"><body>Wherefore art thou Romeo?</body></message>`), stanza.NSClient)
	if err != nil {
		b.Fatal(err)
	}
	m := &MUC{MaxSubjectLength: 1024}
	from := jid.MustParse("user0@localhost/res")
	b.ReportAllocs()
	for b.Loop() {
		m.groupchat(r, from, msg)
		r.out = r.out[:0]
	}
}
