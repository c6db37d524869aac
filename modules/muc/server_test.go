package muc_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/module"
	_ "github.com/metronome-xmpp/metronome/modules/disco"
	_ "github.com/metronome-xmpp/metronome/modules/message"
	_ "github.com/metronome-xmpp/metronome/modules/muc"
	_ "github.com/metronome-xmpp/metronome/modules/presence"
	_ "github.com/metronome-xmpp/metronome/modules/roster"
	"github.com/metronome-xmpp/metronome/storage/sqlite"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

const service = "conference.localhost"

// newServer starts a server with the usual user modules and a MUC
// component; options is TOML for [component."conference.localhost".muc].
func newServer(t *testing.T, options string, extra ...xmpptest.Option) *xmpptest.Server {
	t.Helper()
	opts := append([]xmpptest.Option{
		xmpptest.Modules("roster", "presence", "message", "disco"),
		xmpptest.Component(service, "muc", options),
	}, extra...)
	return xmpptest.NewServer(t, opts...)
}

// user creates an account and logs it in.
func user(t *testing.T, srv *xmpptest.Server, full string) *xmpptest.Client {
	t.Helper()
	j := jid.MustParse(full)
	srv.CreateUser(t, j.Bare().String(), "password")
	return srv.Login(t, full, "password")
}

// enter joins room as nick and reads the stanzas of the join up to the
// subject (which ends every join of an unlocked room).
func enter(t *testing.T, c *xmpptest.Client, room, nick string) []*stanza.Element {
	t.Helper()
	c.Send(t, `<presence to="`+room+`/`+nick+`"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	var got []*stanza.Element
	for {
		el := c.Recv(t)
		got = append(got, el)
		if el.Name == "presence" && el.Type() == "error" {
			return got
		}
		if el.Name == "message" && el.Child("", "subject") != nil && el.Child("", "body") == nil {
			return got
		}
		if x := el.Child("http://jabber.org/protocol/muc#user", "x"); x != nil && el.Name == "presence" {
			for s := range x.Elements {
				if s.Attr("code") == "201" {
					return got // a new, locked room: no subject yet
				}
			}
		}
	}
}

// create makes an instant room owned by c, as nick.
func create(t *testing.T, c *xmpptest.Client, room, nick string) {
	t.Helper()
	enter(t, c, room, nick)
	c.Send(t, `<iq type="set" to="`+room+`" id="create"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>`)
	c.Expect(t, `<iq type="result" id="create"/>`)
}

func TestLoginToComponentRefused(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	if _, ok := srv.Core.Accounts(service); ok {
		t.Fatal("the component has an account manager")
	}
	if err := srv.Core.CreateUser(context.Background(), jid.MustParse("romeo@"+service), "x"); err == nil {
		t.Fatal("created an account on the component")
	}
	raw := srv.DialRaw(t)
	raw.Write(t, xmpptest.StreamOpen(service))
	if got := raw.ReadUntilClose(t); !strings.Contains(got, "host-unknown") {
		t.Fatalf("stream to the component: %q", got)
	}
}

// TestPersistentRoomSurvivesRestart stores a persistent room in SQLite,
// restarts the server on the same database and finds the room, its
// configuration, affiliations and subject again.
func TestPersistentRoomSurvivesRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "muc.db")
	d1, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, "", xmpptest.Driver(d1))
	romeo := user(t, srv, "romeo@localhost/orchard")
	enter(t, romeo, "garden@"+service, "Romeo")
	romeo.Send(t, `<iq type="set" to="garden@conference.localhost" id="c1"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit">
		<field var="muc#roomconfig_persistentroom"><value>1</value></field>
		<field var="muc#roomconfig_roomname"><value>The Garden</value></field>
		<field var="muc#roomconfig_membersonly"><value>1</value></field></x></query></iq>`)
	romeo.Expect(t, `<iq type="result" id="c1"/>`)
	romeo.Send(t, `<iq type="set" to="garden@conference.localhost" id="a1"><query xmlns="http://jabber.org/protocol/muc#admin"><item jid="juliet@localhost" affiliation="member" nick="Juliet"/></query></iq>`)
	romeo.Expect(t, `<iq type="result" id="a1"/>`)
	romeo.Send(t, `<message to="garden@conference.localhost" type="groupchat" id="s1"><subject>Fair Verona</subject></message>`)
	romeo.Expect(t, `<message id="s1"><subject>Fair Verona</subject></message>`)
	// A temporary room does not survive, nor a destroyed persistent one.
	create(t, romeo, "attic@"+service, "Romeo")
	create(t, romeo, "cellar@"+service, "Romeo")
	romeo.Send(t, `<iq type="set" to="cellar@conference.localhost" id="c2"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"><field var="muc#roomconfig_persistentroom"><value>1</value></field></x></query></iq>`)
	romeo.Expect(t, `<iq type="result" id="c2"/>`)
	romeo.Expect(t, `<message from="cellar@conference.localhost"><x xmlns="http://jabber.org/protocol/muc#user"><status code="104"/></x></message>`)
	romeo.Send(t, `<iq type="set" to="cellar@conference.localhost" id="c3"><query xmlns="http://jabber.org/protocol/muc#owner"><destroy/></query></iq>`)
	romeo.Expect(t, `<presence type="unavailable" from="cellar@conference.localhost/Romeo"/>`)
	romeo.Expect(t, `<iq type="result" id="c3"/>`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Core.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}

	d2, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	srv2 := newServer(t, "", xmpptest.Driver(d2))
	juliet := user(t, srv2, "juliet@localhost/balcony")
	got := enter(t, juliet, "garden@"+service, "Juliet")
	if len(got) != 2 {
		t.Fatalf("join got %d stanzas: %v", len(got), got)
	}
	if err := xmpptest.Match(stanzaOf(t, `<presence from="garden@conference.localhost/Juliet"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="member" role="participant"/><status code="110"/></x></presence>`), got[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := xmpptest.Match(stanzaOf(t, `<message from="garden@conference.localhost/Romeo"><subject>Fair Verona</subject><delay xmlns="urn:xmpp:delay"/></message>`), got[1], nil); err != nil {
		t.Fatal(err)
	}
	juliet.Send(t, `<iq type="get" to="conference.localhost" id="d1"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	items := juliet.Expect(t, `<iq type="result" id="d1"><query xmlns="http://jabber.org/protocol/disco#items"><item jid="garden@conference.localhost" name="The Garden"/></query></iq>`)
	if n := len(items.FirstChild().Children); n != 1 {
		t.Fatalf("rooms after restart: %s", items)
	}
	// Still members-only.
	nurse := user(t, srv2, "nurse@localhost/kitchen")
	got = enter(t, nurse, "garden@"+service, "Nurse")
	if got[0].Type() != "error" || got[0].Child("", "error").Child("", "registration-required") == nil {
		t.Fatalf("non-member got %s", got[0])
	}
}

func stanzaOf(t *testing.T, s string) *stanza.Element {
	t.Helper()
	el, err := xmpptestParse(s)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

// TestReloadKeepsRooms reloads the configuration: occupants and temporary
// rooms stay, and the new instance serves them.
func TestReloadKeepsRooms(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	romeo := user(t, srv, "romeo@localhost/orchard")
	juliet := user(t, srv, "juliet@localhost/balcony")
	create(t, romeo, "garden@"+service, "Romeo")
	enter(t, juliet, "garden@"+service, "Juliet")
	romeo.Expect(t, `<presence from="garden@conference.localhost/Juliet"/>`)

	opts := *srv.Core.Options()
	if err := srv.Core.Reload(&opts); err != nil {
		t.Fatal(err)
	}
	juliet.Send(t, `<message to="garden@conference.localhost" type="groupchat" id="m1"><body>still here</body></message>`)
	juliet.Expect(t, `<message id="m1" from="garden@conference.localhost/Juliet"><body>still here</body></message>`)
	romeo.Expect(t, `<message id="m1" from="garden@conference.localhost/Juliet"><body>still here</body></message>`)
	// The parent host still lists the service after the reload.
	romeo.Send(t, `<iq type="get" to="localhost" id="d1"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="d1"><query xmlns="http://jabber.org/protocol/disco#items"><item jid="conference.localhost"/></query></iq>`)

	// Removing the component tells the occupants (332).
	opts2 := opts
	opts2.Components = nil
	if err := srv.Core.Reload(&opts2); err != nil {
		t.Fatal(err)
	}
	juliet.Expect(t, `<presence type="unavailable" from="garden@conference.localhost/Juliet"><x xmlns="http://jabber.org/protocol/muc#user"><status code="110"/><status code="332"/></x></presence>`)
	juliet.Send(t, `<message to="garden@conference.localhost" type="groupchat" id="m2"><body>hello?</body></message>`)
	juliet.Expect(t, `<message type="error" id="m2"><error><remote-server-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
}

// TestIQForwarding checks that an IQ to an occupant JID reaches the
// occupant from the requester's occupant JID, and the answer comes back
// with the requester's id (XEP-0045 §17.4 rule 3), real JIDs hidden.
func TestIQForwarding(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	romeo := user(t, srv, "romeo@localhost/orchard")
	juliet := user(t, srv, "juliet@localhost/balcony")
	create(t, romeo, "garden@"+service, "Romeo")
	enter(t, juliet, "garden@"+service, "Juliet")
	romeo.Expect(t, `<presence from="garden@conference.localhost/Juliet"/>`)

	juliet.Send(t, `<iq type="get" to="garden@conference.localhost/Romeo" id="v1"><query xmlns="jabber:iq:version"/></iq>`)
	fwd := romeo.Expect(t, `<iq type="get" from="garden@conference.localhost/Juliet" to="romeo@localhost/orchard"><query xmlns="jabber:iq:version"/></iq>`)
	if fwd.ID() == "v1" || fwd.ID() == "" {
		t.Fatalf("forwarded id %q", fwd.ID())
	}
	romeo.Send(t, `<iq type="result" to="garden@conference.localhost/Juliet" id="`+fwd.ID()+`"><query xmlns="jabber:iq:version"><name>Montague</name></query></iq>`)
	juliet.Expect(t, `<iq type="result" id="v1" from="garden@conference.localhost/Romeo" to="juliet@localhost/balcony"><query xmlns="jabber:iq:version"><name>Montague</name></query></iq>`)
	// A forged answer (unknown id) is dropped.
	romeo.Send(t, `<iq type="result" to="garden@conference.localhost/Juliet" id="`+fwd.ID()+`"/>`)
	juliet.ExpectNothing(t)
}

func TestRestrictRoomCreation(t *testing.T) {
	t.Parallel()
	srv := newServer(t, `restrict_room_creation = "admin"`)
	romeo := user(t, srv, "romeo@localhost/orchard")
	admin := user(t, srv, "admin@localhost/desk")
	got := enter(t, romeo, "garden@"+service, "Romeo")
	if err := xmpptest.Match(stanzaOf(t, `<presence type="error"><error type="cancel"><not-allowed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`), got[0], nil); err != nil {
		t.Fatal(err)
	}
	create(t, admin, "garden@"+service, "Admin")
	// Once it exists anyone may enter.
	got = enter(t, romeo, "garden@"+service, "Romeo")
	if got[len(got)-1].Name != "message" {
		t.Fatalf("join: %v", got)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	srv := newServer(t, `max_rooms_per_user = 1
max_occupants = 2`)
	romeo := user(t, srv, "romeo@localhost/orchard")
	juliet := user(t, srv, "juliet@localhost/balcony")
	nurse := user(t, srv, "nurse@localhost/kitchen")
	create(t, romeo, "garden@"+service, "Romeo")
	got := enter(t, romeo, "attic@"+service, "Romeo")
	if got[0].Type() != "error" || !strings.Contains(got[0].String(), "not-allowed") {
		t.Fatalf("second room: %s", got[0])
	}
	enter(t, juliet, "garden@"+service, "Juliet")
	romeo.Expect(t, `<presence from="garden@conference.localhost/Juliet"/>`)
	got = enter(t, nurse, "garden@"+service, "Nurse")
	if got[0].Type() != "error" || !strings.Contains(got[0].String(), "service-unavailable") {
		t.Fatalf("third occupant: %s", got[0])
	}
	// maxusers above the service's limit is refused.
	romeo.Send(t, `<iq type="set" to="garden@conference.localhost" id="c1"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"><field var="muc#roomconfig_maxusers"><value>50</value></field></x></query></iq>`)
	romeo.Expect(t, `<iq type="error" id="c1"><error><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
}

// TestMultiSessionNick joins the same nickname from two resources of one
// user: one occupant; the others see it once; leaving from one resource
// keeps the occupant.
func TestMultiSessionNick(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	romeo := user(t, srv, "romeo@localhost/orchard")
	romeo2 := srv.Login(t, "romeo@localhost/street", "password")
	juliet := user(t, srv, "juliet@localhost/balcony")
	create(t, romeo, "garden@"+service, "Romeo")
	enter(t, juliet, "garden@"+service, "Juliet")
	romeo.Expect(t, `<presence from="garden@conference.localhost/Juliet"/>`)
	got := enter(t, romeo2, "garden@"+service, "Romeo")
	if len(got) != 3 { // Juliet, self, subject
		t.Fatalf("second session got %v", got)
	}
	juliet.ExpectNothing(t)
	juliet.Send(t, `<message to="garden@conference.localhost" type="groupchat" id="m1"><body>hi</body></message>`)
	juliet.Expect(t, `<message id="m1"/>`)
	romeo.Expect(t, `<message id="m1" to="romeo@localhost/orchard"/>`)
	romeo2.Expect(t, `<message id="m1" to="romeo@localhost/street"/>`)
	romeo2.Send(t, `<presence to="garden@conference.localhost/Romeo" type="unavailable"/>`)
	romeo2.Expect(t, `<presence type="unavailable" from="garden@conference.localhost/Romeo"><x xmlns="http://jabber.org/protocol/muc#user"><status code="110"/></x></presence>`)
	juliet.ExpectNothing(t)
}

// ext is a test module loaded on the component host: it adds a field to
// the configuration form and validates it (pluggable room configuration).
type ext struct{}

func (ext) Info() module.Info {
	return module.Info{ID: "mod.muc_test_ext", New: func() module.Module { return new(ext) }}
}

// The payload interfaces a real extension would declare.
type configForm interface {
	Value(field string) []string
	AddField(field *stanza.Element)
}

type configSubmit interface {
	Submitted(field string) ([]string, bool)
	Set(field string, values []string)
}

func (ext) Provision(h module.Host) error {
	h.Hook("muc/config-form", event.PrioDefault, func(_ context.Context, ev *event.Event) event.Verdict {
		f := ev.Data.(configForm)
		v := f.Value("x-color")
		fe := stanza.New("jabber:x:data", "field", "var", "x-color", "type", "text-single", "label", "Colour")
		for _, s := range v {
			fe.AddChild(stanza.New("jabber:x:data", "value")).AddText(s)
		}
		f.AddField(fe)
		return event.Continue
	})
	h.Hook("muc/config-submit", event.PrioDefault, func(_ context.Context, ev *event.Event) event.Verdict {
		s := ev.Data.(configSubmit)
		v, ok := s.Submitted("x-color")
		if !ok {
			return event.Continue
		}
		if len(v) != 1 || (v[0] != "red" && v[0] != "green") {
			return event.Error(stanza.ErrText(stanza.NotAcceptable, "x-color: red or green"))
		}
		s.Set("x-color", v)
		return event.Continue
	})
	return nil
}

func init() { module.Register(ext{}) }

func TestPluggableConfig(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message"),
		xmpptest.Component(service, "muc", "", "muc_test_ext"))
	romeo := user(t, srv, "romeo@localhost/orchard")
	create(t, romeo, "garden@"+service, "Romeo")
	romeo.Send(t, `<iq type="set" to="garden@conference.localhost" id="c1"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"><field var="x-color"><value>blue</value></field><field var="muc#roomconfig_roomname"><value>Blue</value></field></x></query></iq>`)
	romeo.Expect(t, `<iq type="error" id="c1"><error type="modify"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">x-color: red or green</text></error></iq>`)
	romeo.Send(t, `<iq type="set" to="garden@conference.localhost" id="c2"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"><field var="x-color"><value>green</value></field></x></query></iq>`)
	romeo.Expect(t, `<iq type="result" id="c2"/>`)
	romeo.Expect(t, `<message type="groupchat"><x xmlns="http://jabber.org/protocol/muc#user"><status code="104"/></x></message>`)
	romeo.Send(t, `<iq type="get" to="garden@conference.localhost" id="c3"><query xmlns="http://jabber.org/protocol/muc#owner"/></iq>`)
	form := romeo.Expect(t, `<iq type="result" id="c3"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data"><field var="muc#roomconfig_roomname"/><field var="x-color"><value>green</value></field></x></query></iq>`)
	if strings.Contains(form.String(), "Blue") {
		t.Fatal("the rejected submission was applied")
	}
}
