package push_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/xmpp/jid"

	_ "github.com/metronome-xmpp/metronome/modules/disco"
	_ "github.com/metronome-xmpp/metronome/modules/message"
	_ "github.com/metronome-xmpp/metronome/modules/offline"
	_ "github.com/metronome-xmpp/metronome/modules/presence"
	_ "github.com/metronome-xmpp/metronome/modules/push"
	_ "github.com/metronome-xmpp/metronome/modules/roster"
)

var mods = xmpptest.Modules("roster", "presence", "message", "offline", "disco", "push")

// TestScripts runs the golden conversations in testdata/.
func TestScripts(t *testing.T) {
	t.Parallel()
	xmpptest.RunScripts(t, "testdata", mods)
}

// publish is the pattern of a notification to the app server push@localhost/app.
func publish(node, count, sender string) string {
	return `<iq type="set" from="localhost" to="push@localhost/app" id="{any}">` +
		`<pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="` + node + `"><item>` +
		`<notification xmlns="urn:xmpp:push:0"><x xmlns="jabber:x:data">` +
		`<field var="FORM_TYPE"><value>urn:xmpp:push:summary</value></field>` +
		`<field var="message-count"><value>` + count + `</value></field>` +
		`<field var="last-message-sender"><value>` + sender + `</value></field>` +
		`</x></notification></item></publish></pubsub></iq>`
}

func setup(t *testing.T, opts ...xmpptest.Option) (srv *xmpptest.Server, romeo, app *xmpptest.Client) {
	t.Helper()
	srv = xmpptest.NewServer(t, append([]xmpptest.Option{mods}, opts...)...)
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	srv.CreateUser(t, "push@localhost", "password")
	romeo = srv.Login(t, "romeo@localhost/orchard", "password")
	app = srv.Login(t, "push@localhost/app", "password")
	return srv, romeo, app
}

// enable registers push@localhost/app for juliet from a short-lived session.
func enable(t *testing.T, srv *xmpptest.Server, node, extra string) {
	t.Helper()
	j := srv.Login(t, "juliet@localhost/phone", "password")
	j.Send(t, `<iq type="set" id="e1"><enable xmlns="urn:xmpp:push:0" jid="push@localhost/app" node="`+node+`">`+extra+`</enable></iq>`)
	j.Expect(t, `<iq type="result" id="e1"/>`)
	j.Close()
}

// answer replies to a publish with a result, as an app server does.
func answer(t *testing.T, app *xmpptest.Client, iq string) {
	t.Helper()
	app.Send(t, `<iq type="result" id="`+iq+`" to="localhost"/>`)
}

// TestNotify: messages stored offline publish a summary with a growing
// count; the count starts over once the user binds a resource; disable
// stops the notifications.
func TestNotify(t *testing.T) {
	t.Parallel()
	srv, romeo, app := setup(t)
	enable(t, srv, "n1", "")

	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m1"><body>secret one</body></message>`)
	p := app.Expect(t, publish("n1", "1", "romeo@localhost"))
	if got := p.String(); contains(got, "secret") || contains(got, "last-message-body") {
		t.Errorf("publish carries the body by default: %s", got)
	}
	answer(t, app, p.ID())
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m2"><body>two</body></message>`)
	answer(t, app, app.Expect(t, publish("n1", "2", "romeo@localhost")).ID())

	// Juliet comes online (and reads her messages): the count starts over.
	j := srv.Login(t, "juliet@localhost/balcony", "password")
	j.Send(t, `<presence/>`)
	j.Expect(t, `<message id="m1"/>`)
	j.Expect(t, `<message id="m2"/>`)
	j.Expect(t, `<presence/>`)
	j.Close()
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m3"><body>three</body></message>`)
	answer(t, app, app.Expect(t, publish("n1", "1", "romeo@localhost")).ID())

	j = srv.Login(t, "juliet@localhost/balcony", "password")
	j.Send(t, `<iq type="set" id="d1"><disable xmlns="urn:xmpp:push:0" jid="push@localhost/app"/></iq>`)
	j.Expect(t, `<iq type="result" id="d1"/>`)
	j.Close()
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m4"><body>four</body></message>`)
	romeo.ExpectNothing(t)
	app.ExpectNothing(t)
}

// TestNotifyHibernated: a message for a session whose connection was
// lost, waiting to be resumed (XEP-0198), is notified; the count starts
// over when the session is resumed.
func TestNotifyHibernated(t *testing.T) {
	t.Parallel()
	srv, romeo, app := setup(t)
	enable(t, srv, "n1", "")
	j, smID := phone(t, srv)
	j.Kill()
	// The server parks the session once it reads the end of the connection.
	deadline := time.Now().Add(10 * time.Second)
	for !hibernated(srv, "juliet@localhost/phone") {
		if time.Now().After(deadline) {
			t.Fatal("the session was not hibernated")
		}
		time.Sleep(20 * time.Millisecond)
	}
	romeo.Send(t, `<message to="juliet@localhost/phone" type="chat" id="m1"><body>wake up</body></message>`)
	answer(t, app, app.Expect(t, publish("n1", "1", "romeo@localhost")).ID())
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m2"><body>again</body></message>`)
	answer(t, app, app.Expect(t, publish("n1", "2", "romeo@localhost")).ID())
	// Chat states alone wake nobody.
	romeo.Send(t, `<message to="juliet@localhost/phone" type="chat"><active xmlns="http://jabber.org/protocol/chatstates"/></message>`)
	app.ExpectNothing(t)

	c := srv.Resumed(t, "juliet@localhost/phone", "password", smID, 1)
	c.Expect(t, `<message id="m1"/>`)
	c.Expect(t, `<message id="m2"/>`)
	c.Kill()
	for !hibernated(srv, "juliet@localhost/phone") {
		time.Sleep(20 * time.Millisecond)
	}
	// m1 and m2 were written again but never acknowledged: the phone may
	// not have them, so they are notified when the session hibernates
	// (the two notifications in either order), and the count goes on.
	counts := expectPublishes(t, app, 2)
	if !slices.Equal(counts, []string{"1", "2"}) {
		t.Fatalf("unacknowledged messages notified with counts %v, want 1 and 2", counts)
	}
	romeo.Send(t, `<message to="juliet@localhost/phone" type="chat" id="m3"><body>three</body></message>`)
	answer(t, app, app.Expect(t, publish("n1", "3", "romeo@localhost")).ID())
}

// expectPublishes answers the next n publishes of app and returns their
// message counts, sorted.
func expectPublishes(t *testing.T, app *xmpptest.Client, n int) []string {
	t.Helper()
	var counts []string
	for range n {
		el := app.Recv(t)
		x := el.Child("http://jabber.org/protocol/pubsub", "pubsub").Child("http://jabber.org/protocol/pubsub", "publish").
			Child("http://jabber.org/protocol/pubsub", "item").Child("urn:xmpp:push:0", "notification").Child("jabber:x:data", "x")
		if x == nil {
			t.Fatalf("not a push notification: %s", el)
		}
		for f := range x.Elements {
			if f.Attr("var") == "message-count" {
				counts = append(counts, f.ChildText("jabber:x:data", "value"))
			}
		}
		answer(t, app, el.ID())
	}
	slices.Sort(counts)
	return counts
}

// TestNotifyUnackedOnAckTimeout: a phone that goes out of coverage keeps
// a TCP connection that looks alive. It does not answer the server's ack
// request, so after sm_ack_timeout its session hibernates, the message it
// did not acknowledge is notified, and it resumes to find it.
func TestNotifyUnackedOnAckTimeout(t *testing.T) {
	t.Parallel()
	srv, romeo, app := setup(t, xmpptest.Config("[c2s]\nsm_ack_timeout = \"1s\""))
	enable(t, srv, "n1", "")
	j, smID := phone(t, srv)
	j.Expect(t, `<r xmlns="urn:xmpp:sm:3"/>`)
	j.Send(t, `<a xmlns="urn:xmpp:sm:3" h="1"/>`)
	start := time.Now()
	romeo.Send(t, `<message to="juliet@localhost/phone" type="chat" id="m1"><body>are you there?</body></message>`)
	j.Expect(t, `<message id="m1"/>`)
	j.Expect(t, `<r xmlns="urn:xmpp:sm:3"/>`)
	// Juliet's phone reads nothing more and answers nothing; its socket stays open.
	answer(t, app, app.Expect(t, publish("n1", "1", "romeo@localhost")).ID())
	if d := time.Since(start); d < time.Second {
		t.Fatalf("notified after %v, before sm_ack_timeout", d)
	}
	if !hibernated(srv, "juliet@localhost/phone") {
		t.Fatal("the session is not hibernated")
	}
	c := srv.Resumed(t, "juliet@localhost/phone", "password", smID, 1)
	c.Expect(t, `<message id="m1"/>`)
	j.Kill()
}

// phone logs juliet@localhost/phone in with resumable stream management
// and initial presence; it returns the client and the SM-ID.
func phone(t *testing.T, srv *xmpptest.Server) (*xmpptest.Client, string) {
	t.Helper()
	j := srv.Login(t, "juliet@localhost/phone", "password")
	j.Send(t, `<enable xmlns="urn:xmpp:sm:3" resume="true"/>`)
	enabled := j.Recv(t)
	if enabled.Name != "enabled" || enabled.Attr("id") == "" {
		t.Fatalf("enable: %s", enabled)
	}
	j.Send(t, `<presence/>`)
	j.Expect(t, `<presence/>`)
	return j, enabled.Attr("id")
}

// hibernated reports whether the session of full waits for a resumption.
func hibernated(srv *xmpptest.Server, full string) bool {
	for _, s := range srv.Core.Sessions("localhost") {
		if s.JID().String() == full {
			return s.Hibernated()
		}
	}
	return false
}

// TestErrorDisables: a publish answered with an error of type cancel
// disables the registration (XEP-0357 §7.1); an error of type wait does not.
func TestErrorDisables(t *testing.T) {
	t.Parallel()
	srv, romeo, app := setup(t)
	enable(t, srv, "n1", "")

	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m1"><body>one</body></message>`)
	p := app.Expect(t, publish("n1", "1", "romeo@localhost"))
	app.Send(t, `<iq type="error" id="`+p.ID()+`" to="localhost"><error type="wait"><resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m2"><body>two</body></message>`)
	p = app.Expect(t, publish("n1", "2", "romeo@localhost"))
	app.Send(t, `<iq type="error" id="`+p.ID()+`" to="localhost"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	// Wait until the removal is visible in storage, then check nothing more is published.
	waitRegistrations(t, srv, 0)
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m3"><body>three</body></message>`)
	app.ExpectNothing(t)
}

// TestOptionsAndBody: publish options are sent back verbatim; include_body
// adds the body; enabling the same JID and node again replaces the options.
func TestOptionsAndBody(t *testing.T) {
	t.Parallel()
	srv, romeo, app := setup(t, xmpptest.Config("[modules.push]\ninclude_body = true\ninclude_sender = false\ntimeout = \"5s\""))
	form := func(secret string) string {
		return `<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE"><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var="secret"><value>` + secret + `</value></field></x>`
	}
	enable(t, srv, "n1", form("old"))
	enable(t, srv, "n1", form("s3cr3t"))
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m1"><body>Wherefore art thou</body></message>`)
	p := app.Expect(t, `<iq type="set" to="push@localhost/app"><pubsub xmlns="http://jabber.org/protocol/pubsub">`+
		`<publish node="n1"><item><notification xmlns="urn:xmpp:push:0"><x xmlns="jabber:x:data">`+
		`<field var="message-count"><value>1</value></field>`+
		`<field var="last-message-body"><value>Wherefore art thou</value></field>`+
		`</x></notification></item></publish>`+
		`<publish-options>`+form("s3cr3t")+`</publish-options></pubsub></iq>`)
	if contains(p.String(), "last-message-sender") || contains(p.String(), "old") {
		t.Errorf("publish = %s, want no sender and only the new options", p)
	}
	answer(t, app, p.ID())
	app.ExpectNothing(t)
	waitRegistrations(t, srv, 1)
}

// TestLimitAndDeletion: max_registrations bounds new registrations (not
// replacements), and deleting the account deletes them.
func TestLimitAndDeletion(t *testing.T) {
	t.Parallel()
	srv, _, _ := setup(t, xmpptest.Config("[modules.push]\nmax_registrations = 2"))
	j := srv.Login(t, "juliet@localhost/phone", "password")
	for _, n := range []string{"a", "b", "a"} {
		j.Send(t, `<iq type="set" id="e-`+n+`"><enable xmlns="urn:xmpp:push:0" jid="push.example" node="`+n+`"/></iq>`)
		j.Expect(t, `<iq type="result" id="e-`+n+`"/>`)
	}
	j.Send(t, `<iq type="set" id="e-c"><enable xmlns="urn:xmpp:push:0" jid="push.example" node="c"/></iq>`)
	j.Expect(t, `<iq type="error" id="e-c"><error type="wait"><resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	waitRegistrations(t, srv, 2)
	j.Close()
	if err := srv.Core.DeleteUser(context.Background(), jid.MustParse("juliet@localhost")); err != nil {
		t.Fatal(err)
	}
	waitRegistrations(t, srv, 0)
}

func waitRegistrations(t *testing.T, srv *xmpptest.Server, want int) {
	t.Helper()
	m := srv.Driver.Map("localhost", "push")
	for range 300 {
		all, err := m.All(context.Background(), "juliet")
		if err != nil {
			t.Fatal(err)
		}
		if len(all) == want {
			return
		}
		sleep()
	}
	t.Fatalf("juliet's registrations never became %d", want)
}
