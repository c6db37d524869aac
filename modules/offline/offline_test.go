package offline

import (
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

func parse(t *testing.T, s string) *stanza.Element {
	t.Helper()
	el, err := xmlstream.ParseNS([]byte(s), stanza.NSClient)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return el
}

func TestWorthStoring(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		msg  string
		want bool
	}{
		{"body", `<message><body>hi</body></message>`, true},
		{"subject only", `<message><subject>hi</subject></message>`, true},
		{"empty", `<message/>`, false},
		{"chat state", `<message><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`, false},
		{"chat state and thread", `<message><active xmlns="http://jabber.org/protocol/chatstates"/><thread>x</thread></message>`, false},
		{"chat state and origin-id", `<message><paused xmlns="http://jabber.org/protocol/chatstates"/><origin-id xmlns="urn:xmpp:sid:0" id="1"/></message>`, false},
		{"chat state with store hint", `<message><gone xmlns="http://jabber.org/protocol/chatstates"/><store xmlns="urn:xmpp:hints"/></message>`, true},
		{"receipt", `<message><received xmlns="urn:xmpp:receipts" id="a"/></message>`, true},
		{"encrypted", `<message><encrypted xmlns="eu.siacs.conversations.axolotl"/></message>`, true},
		{"body and chat state", `<message><body>x</body><active xmlns="http://jabber.org/protocol/chatstates"/></message>`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := worthStoring(parse(t, tc.msg)); got != tc.want {
				t.Errorf("worthStoring(%s) = %v, want %v", tc.msg, got, tc.want)
			}
		})
	}
}

func TestPriority(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		presence string
		want     int
	}{
		{`<presence/>`, 0},
		{`<presence><priority>5</priority></presence>`, 5},
		{`<presence><priority> -1 </priority></presence>`, -1},
		{`<presence><priority>128</priority></presence>`, 0},
		{`<presence><priority>x</priority></presence>`, 0},
	} {
		if got := priority(parse(t, tc.presence)); got != tc.want {
			t.Errorf("priority(%s) = %d, want %d", tc.presence, got, tc.want)
		}
	}
}

func TestStamp(t *testing.T) {
	t.Parallel()
	ts := time.Date(2002, 9, 10, 23, 8, 25, 123, time.FixedZone("x", 3600))
	if got, want := Stamp(ts), "2002-09-10T22:08:25Z"; got != want {
		t.Errorf("Stamp = %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	m := Offline{}.Info().New().(*Offline)
	if m.MaxMessages != DefaultMaxMessages {
		t.Errorf("default max_messages = %d, want %d", m.MaxMessages, DefaultMaxMessages)
	}
	if err := m.Validate(); err != nil {
		t.Errorf("Validate default: %v", err)
	}
	m.MaxMessages = 0
	if err := m.Validate(); err == nil {
		t.Error("Validate accepted max_messages = 0")
	}
}
