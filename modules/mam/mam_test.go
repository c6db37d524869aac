package mam

import (
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

func parse(t testing.TB, s string) *stanza.Element {
	t.Helper()
	el, err := xmlstream.ParseNS([]byte(s), stanza.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func TestArchivable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, msg string
		want      bool
	}{
		{"chat body", `<message type="chat"><body>x</body></message>`, true},
		{"no type body", `<message><body>x</body></message>`, true},
		{"normal subject", `<message type="normal"><subject>x</subject></message>`, true},
		{"chat state", `<message type="chat"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`, false},
		{"receipt", `<message><received xmlns="urn:xmpp:receipts" id="a"/></message>`, false},
		{"marker", `<message type="chat"><displayed xmlns="urn:xmpp:chat-markers:0" id="a"/></message>`, false},
		{"omemo", `<message type="chat"><encrypted xmlns="eu.siacs.conversations.axolotl"/></message>`, true},
		{"omemo 2", `<message type="chat"><encrypted xmlns="urn:xmpp:omemo:2"/></message>`, true},
		{"openpgp", `<message type="chat"><openpgp xmlns="urn:xmpp:openpgp:0">x</openpgp></message>`, true},
		{"direct invitation", `<message><x xmlns="jabber:x:conference" jid="r@muc"/></message>`, true},
		{"mediated invitation", `<message><x xmlns="http://jabber.org/protocol/muc#user"><invite from="a@b"/></x></message>`, true},
		{"muc user without invite", `<message><x xmlns="http://jabber.org/protocol/muc#user"/></message>`, false},
		{"retraction", `<message type="chat"><retract xmlns="urn:xmpp:message-retract:1" id="x"/></message>`, true},
		{"reaction", `<message type="chat"><reactions xmlns="urn:xmpp:reactions:0" id="x"/></message>`, true},
		{"call", `<message type="chat"><propose xmlns="urn:xmpp:jingle-message:0" id="x"/></message>`, true},
		{"headline", `<message type="headline"><body>x</body></message>`, false},
		{"headline stored", `<message type="headline"><body>x</body><store xmlns="urn:xmpp:hints"/></message>`, true},
		{"groupchat", `<message type="groupchat"><body>x</body></message>`, false},
		{"groupchat store", `<message type="groupchat"><body>x</body><store xmlns="urn:xmpp:hints"/></message>`, false},
		{"error", `<message type="error"><body>x</body><error type="cancel"/></message>`, false},
		{"no-store", `<message type="chat"><body>x</body><no-store xmlns="urn:xmpp:hints"/></message>`, false},
		{"no-permanent-store", `<message type="chat"><body>x</body><no-permanent-store xmlns="urn:xmpp:hints"/></message>`, false},
		{"store wins", `<message type="chat"><gone xmlns="http://jabber.org/protocol/chatstates"/><store xmlns="urn:xmpp:hints"/></message>`, true},
		{"no-store wins over store", `<message type="chat"><body>x</body><store xmlns="urn:xmpp:hints"/><no-store xmlns="urn:xmpp:hints"/></message>`, false},
		{"body in another namespace", `<message type="chat"><body xmlns="urn:example"/></message>`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := archivable(parse(t, tc.msg)); got != tc.want {
				t.Errorf("archivable = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPrefsDecide(t *testing.T) {
	t.Parallel()
	p := Prefs{Default: PolicyRoster,
		Always: []string{"romeo@example.org", "nurse@example.org/kitchen"},
		Never:  []string{"tybalt@example.org", "romeo@example.org/garden"}}
	for _, tc := range []struct {
		target          string
		archive, listed bool
	}{
		{"romeo@example.org", true, true},
		{"romeo@example.org/orchard", true, true},
		{"romeo@example.org/garden", false, true}, // full match wins over bare
		{"nurse@example.org/kitchen", true, true},
		{"nurse@example.org/hall", false, false},
		{"nurse@example.org", false, false},
		{"tybalt@example.org/street", false, true},
		{"mercutio@example.org", false, false},
	} {
		a, ok := p.decide(jid.MustParse(tc.target))
		if a != tc.archive || ok != tc.listed {
			t.Errorf("decide(%s) = %v, %v; want %v, %v", tc.target, a, ok, tc.archive, tc.listed)
		}
	}
}

func TestParseRequest(t *testing.T) {
	t.Parallel()
	q := parse(t, `<query xmlns="urn:xmpp:mam:2" queryid="f27"><x xmlns="jabber:x:data" type="submit">`+
		`<field var="FORM_TYPE" type="hidden"><value>urn:xmpp:mam:2</value></field>`+
		`<field var="with"><value>juliet@capulet.lit</value></field>`+
		`<field var="start"><value>2010-06-07T00:00:00Z</value></field>`+
		`<field var="end"><value>2010-07-07T13:23:54.123+02:00</value></field>`+
		`<field var="after-id"><value>a</value></field><field var="before-id"><value>b</value></field>`+
		`<field var="ids"><value>x</value><value>y</value><value>x</value></field></x>`+
		`<set xmlns="http://jabber.org/protocol/rsm"><max>10</max><before/></set><flip-page/></query>`)
	r, err := parseRequest(q)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2010, 7, 7, 11, 23, 54, 123e6, time.UTC)
	if r.queryID != "f27" || r.with.String() != "juliet@capulet.lit" || !r.start.Equal(time.Date(2010, 6, 7, 0, 0, 0, 0, time.UTC)) ||
		!r.end.Equal(end) || r.afterID != "a" || r.beforeID != "b" || len(r.ids) != 2 || r.max != 10 || !r.hasBefore || r.before != "" || !r.flip {
		t.Errorf("parsed %+v", r)
	}
	for _, tc := range []struct {
		name, inner string
		want        stanza.Condition
	}{
		{"unknown field", `<x xmlns="jabber:x:data" type="submit"><field var="include-groupchat"><value>true</value></field></x>`, stanza.FeatureNotImplemented},
		{"wrong FORM_TYPE", `<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE"><value>urn:xmpp:mam:1</value></field></x>`, stanza.BadRequest},
		{"form type", `<x xmlns="jabber:x:data" type="cancel"/>`, stanza.BadRequest},
		{"bad with", `<x xmlns="jabber:x:data"><field var="with"><value>@@</value></field></x>`, stanza.JIDMalformed},
		{"bad start", `<x xmlns="jabber:x:data"><field var="start"><value>2010-06-07</value></field></x>`, stanza.BadRequest},
		{"bad max", `<set xmlns="http://jabber.org/protocol/rsm"><max>ten</max></set>`, stanza.BadRequest},
		{"empty after", `<set xmlns="http://jabber.org/protocol/rsm"><after/></set>`, stanza.BadRequest},
		{"index", `<set xmlns="http://jabber.org/protocol/rsm"><index>2</index></set>`, stanza.FeatureNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRequest(parse(t, `<query xmlns="urn:xmpp:mam:2">`+tc.inner+`</query>`))
			if err == nil || err.Condition != tc.want {
				t.Errorf("error %v, want %s", err, tc.want)
			}
		})
	}
}

func TestStamp(t *testing.T) {
	t.Parallel()
	if s := Stamp(time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))); s != "2024-01-02T02:04:05Z" {
		t.Error(s)
	}
	if s := Stamp(time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC)); s != "2024-01-02T03:04:05.006Z" {
		t.Error(s)
	}
}
