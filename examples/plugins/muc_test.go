package plugins_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/config"
	"github.com/metronome-xmpp/metronome/internal/plugin"
	"github.com/metronome-xmpp/metronome/internal/plugin/plugintest"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/standard"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// TestWordfilterRoomSwitch runs wordfilter on localhost and on a MUC
// component of an in-process server: the room owner finds the plugin's
// field in the room configuration form, turns it off, and the filter stops
// censoring that room while it goes on in another one.
func TestWordfilterRoomSwitch(t *testing.T) {
	root := plugintest.ModuleRoot(t)
	wasm, err := os.ReadFile(plugintest.Build(t, "examples/plugins/wordfilter"))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile(filepath.Join(root, "examples", "plugins", "wordfilter", plugin.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := plugin.InstallLocal(dir, manifest, wasm, "test", "", false); err != nil {
		t.Fatal(err)
	}
	s := config.Default().Plugins
	s.Directory = dir
	s.CallTimeout = 2 * time.Second // generous: -race slows the host side
	if _, err := plugin.Activate(s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plugin.Deactivate)

	const service = "conference.localhost"
	srv := xmpptest.NewServer(t,
		xmpptest.Modules("roster", "presence", "message", "disco", "wordfilter"),
		xmpptest.Component(service, "muc", "", "wordfilter"),
		xmpptest.Config("[modules.wordfilter]\nwords = [\"darn\"]"))
	srv.CreateUser(t, "romeo@localhost", "pw")
	srv.CreateUser(t, "juliet@localhost", "pw")
	romeo := srv.Login(t, "romeo@localhost/orchard", "pw")
	juliet := srv.Login(t, "juliet@localhost/balcony", "pw")

	garden, street := "garden@"+service, "street@"+service
	for _, room := range []string{garden, street} {
		createRoom(t, romeo, room, "romeo")
		join(t, juliet, room, "juliet")
	}
	say := func(room, body string) {
		t.Helper()
		romeo.Send(t, `<message to="`+room+`" type="groupchat"><body>`+body+`</body></message>`)
	}
	say(garden, "Darn this feud")
	expectRoomBody(t, juliet, garden, "**** this feud")

	// The owner's form has the plugin's field, on by default.
	field := func(id string) string {
		t.Helper()
		romeo.Send(t, `<iq type="get" to="`+garden+`" id="`+id+`"><query xmlns="http://jabber.org/protocol/muc#owner"/></iq>`)
		el := expectIQ(t, romeo, id)
		if q := el.Child("http://jabber.org/protocol/muc#owner", "query"); q != nil && q.Child("jabber:x:data", "x") != nil {
			for f := range q.Child("jabber:x:data", "x").Elements {
				if f.Attr("var") == "x-wordfilter#enabled" {
					if f.Attr("type") != "boolean" {
						t.Fatalf("field type %q: %s", f.Attr("type"), f)
					}
					return f.ChildText("jabber:x:data", "value")
				}
			}
		}
		t.Fatalf("the form lacks x-wordfilter#enabled: %s", el)
		return ""
	}
	if v := field("f1"); v != "1" {
		t.Fatalf("x-wordfilter#enabled = %q, want 1", v)
	}
	submit := func(id, value string) {
		t.Helper()
		romeo.Send(t, `<iq type="set" to="`+garden+`" id="`+id+`"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit">`+
			`<field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field>`+
			`<field var="x-wordfilter#enabled"><value>`+value+`</value></field></x></query></iq>`)
	}
	submit("s0", "maybe")
	if el := expectIQ(t, romeo, "s0"); el.Type() != "error" || !strings.Contains(el.String(), "<not-acceptable") {
		t.Fatalf("a value that is not a boolean: %s", el)
	}
	submit("s1", "0")
	if el := expectIQ(t, romeo, "s1"); el.Type() != "result" {
		t.Fatalf("turning the filter off: %s", el)
	}
	if v := field("f2"); v != "0" {
		t.Fatalf("after turning it off, x-wordfilter#enabled = %q, want 0", v)
	}

	// Off in the garden, still on in the street.
	say(garden, "Darn again")
	expectRoomBody(t, juliet, garden, "Darn again")
	say(street, "Darn the street")
	expectRoomBody(t, juliet, street, "**** the street")

	// And on again.
	submit("s2", "1")
	if el := expectIQ(t, romeo, "s2"); el.Type() != "result" {
		t.Fatalf("turning the filter on: %s", el)
	}
	say(garden, "darn once more")
	expectRoomBody(t, juliet, garden, "**** once more")
}

// createRoom enters a new room and makes it an instant room.
func createRoom(t *testing.T, c *xmpptest.Client, room, nick string) {
	t.Helper()
	join(t, c, room, nick)
	c.Send(t, `<iq type="set" to="`+room+`" id="create"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>`)
	if el := expectIQ(t, c, "create"); el.Type() != "result" {
		t.Fatalf("creating %s: %s", room, el)
	}
}

// expectIQ waits for the iq with id, skipping other stanzas (room
// messages and presence).
func expectIQ(t *testing.T, c *xmpptest.Client, id string) *stanza.Element {
	t.Helper()
	for {
		if el := c.Recv(t); el.Name == "iq" && el.ID() == id {
			return el
		}
	}
}

// join enters a room and waits for the self-presence (status 110).
func join(t *testing.T, c *xmpptest.Client, room, nick string) {
	t.Helper()
	c.Send(t, `<presence to="`+room+`/`+nick+`"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	for {
		el := c.Recv(t)
		if el.Name == "presence" && el.Type() == "error" {
			t.Fatalf("joining %s: %s", room, el)
		}
		if el.Name == "presence" && el.Attr("from") == room+"/"+nick && strings.Contains(el.String(), `code="110"`) {
			return
		}
	}
}

// expectRoomBody waits for the next groupchat message with a body from room
// and checks the body.
func expectRoomBody(t *testing.T, c *xmpptest.Client, room, want string) {
	t.Helper()
	for {
		el := c.Recv(t)
		if el.Name != "message" || el.Type() != "groupchat" || el.ChildText("", "body") == "" ||
			!strings.HasPrefix(el.Attr("from"), room+"/") {
			continue // presence, subjects, status messages
		}
		if got := el.ChildText("", "body"); got != want {
			t.Fatalf("%s received body %q from %s, want %q:\n%s", c.JID, got, room, want, el)
		}
		return
	}
}
