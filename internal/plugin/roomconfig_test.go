package plugin_test

import (
	"strings"
	"testing"

	"github.com/metronome-xmpp/metronome/internal/plugin"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
)

const (
	mucService = "conference.localhost"
	nsOwner    = "http://jabber.org/protocol/muc#owner"
)

// TestProbeRoomConfig runs the probe on a MUC component (and on localhost)
// and checks the room configuration host functions over XMPP: the probe's
// field is added to the form, fields it does not own are refused, a
// submitted value is kept with the room and shown in the next form and
// readable with sdk.RoomConfig from another host, and a value the probe
// rejects leaves the room unchanged.
func TestProbeRoomConfig(t *testing.T) {
	if _, err := plugin.Activate(settings(probeDir(t))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plugin.Deactivate)
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "disco", "probe"),
		xmpptest.Component(mucService, "muc", "", "probe"))
	srv.CreateUser(t, "romeo@localhost", "pw")
	romeo := srv.Login(t, "romeo@localhost/a", "pw")
	room := "garden@" + mucService

	// Create the room (locked until configured) and ask for the form.
	romeo.Send(t, `<presence to="`+room+`/romeo"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	romeo.Expect(t, `<presence from="`+room+`/romeo"/>`)
	getForm := func(id string) string {
		t.Helper()
		romeo.Send(t, `<iq type="get" to="`+room+`" id="`+id+`"><query xmlns="`+nsOwner+`"/></iq>`)
		for {
			el := romeo.Recv(t)
			if el.Name == "iq" && el.ID() == id {
				if el.Type() != "result" {
					t.Fatalf("form request: %s", el)
				}
				return el.String()
			}
		}
	}
	form := getForm("f1")
	for _, want := range []string{`var="x-probe#level"`, `label="Probe level (` + room + `)"`, `<value>low</value>`,
		`var="x-probe#refused"`, `<value>denied</value>`} {
		if !strings.Contains(form, want) {
			t.Fatalf("form lacks %s:\n%s", want, form)
		}
	}
	for _, bad := range []string{"x-other#field", `var="x-probe"`} {
		if strings.Contains(form, bad) {
			t.Fatalf("form has the refused field %s:\n%s", bad, form)
		}
	}

	submit := func(id, level string) {
		romeo.Send(t, `<iq type="set" to="`+room+`" id="`+id+`"><query xmlns="`+nsOwner+`"><x xmlns="jabber:x:data" type="submit">`+
			`<field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field>`+
			`<field var="x-probe#level"><value>`+level+`</value></field></x></query></iq>`)
	}
	// Accepted: stored with the room.
	submit("s1", "high")
	romeo.Expect(t, `<iq type="result" id="s1"/>`)
	if form := getForm("f2"); !strings.Contains(form, `<value>high</value>`) {
		t.Fatalf("the submitted value is not in the next form:\n%s", form)
	}
	// Readable from the plugin on another host of the server (localhost).
	romeo.Send(t, `<iq type="get" to="localhost" id="r1"><roomconfig xmlns="urn:metronome:probe" room="`+room+`" field="x-probe#level"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="r1"><roomconfig xmlns="urn:metronome:probe"><value>high</value></roomconfig></iq>`)
	// Only the plugin's own fields.
	romeo.Send(t, `<iq type="get" to="localhost" id="r2"><roomconfig xmlns="urn:metronome:probe" room="`+room+`" field="muc#roomconfig_roomname"/></iq>`)
	if el := romeo.Expect(t, `<iq type="error" id="r2"/>`); !strings.Contains(el.String(), "not permitted") {
		t.Fatalf("foreign field read: %s", el)
	}
	romeo.Send(t, `<iq type="get" to="localhost" id="r3"><roomconfig xmlns="urn:metronome:probe" room="nowhere@`+mucService+`" field="x-probe#level"/></iq>`)
	if el := romeo.Expect(t, `<iq type="error" id="r3"/>`); !strings.Contains(el.String(), "not found") {
		t.Fatalf("missing room: %s", el)
	}

	// Rejected: the owner gets the plugin's error, the room keeps "high".
	submit("s2", "forbidden")
	romeo.Expect(t, `<iq type="error" id="s2"><error type="modify"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">probe refuses this level</text></error></iq>`)
	if form := getForm("f3"); !strings.Contains(form, `<value>high</value>`) || strings.Contains(form, "forbidden") {
		t.Fatalf("the rejected submission changed the room:\n%s", form)
	}
}
