package blocking_test

import (
	"context"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/disco"
	_ "github.com/metronome-xmpp/metronome/modules/vcard"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

var modules = xmpptest.Modules("roster", "presence", "message", "blocking")

func TestDiscoFeature(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("disco", "blocking"))
	srv.CreateUser(t, "juliet@localhost", "password")
	c := srv.Login(t, "juliet@localhost/balcony", "password")
	c.Send(t, `<iq type="get" id="d1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	c.Expect(t, `<iq type="result" id="d1"><query xmlns="http://jabber.org/protocol/disco#info"><feature var="urn:xmpp:blocking"/></query></iq>`)
}

// TestOthersForbidden: the block list belongs to its account only.
func TestOthersForbidden(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, modules)
	srv.CreateUser(t, "juliet@localhost", "password")
	srv.CreateUser(t, "romeo@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	romeo.Send(t, `<iq type="get" id="b1" to="juliet@localhost"><blocklist xmlns="urn:xmpp:blocking"/></iq>`)
	romeo.Expect(t, `<iq type="error" id="b1"><error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	romeo.Send(t, `<iq type="set" id="b2" to="juliet@localhost"><block xmlns="urn:xmpp:blocking"><item jid="romeo@localhost"/></block></iq>`)
	romeo.Expect(t, `<iq type="error" id="b2"><error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	// Addressed to the own bare JID, it works.
	romeo.Send(t, `<iq type="get" id="b3" to="romeo@localhost"><blocklist xmlns="urn:xmpp:blocking"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="b3"><blocklist xmlns="urn:xmpp:blocking"/></iq>`)
}

// TestDomainAndResourceItems: a domain item blocks every JID at that
// domain (another local host here), a full-JID item only that resource.
func TestDomainAndResourceItems(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, modules, xmpptest.Hosts("localhost", "example.org"))
	srv.CreateUser(t, "juliet@localhost", "password")
	srv.CreateUser(t, "iago@example.org", "password")
	srv.CreateUser(t, "romeo@localhost", "password")
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	iago := srv.Login(t, "iago@example.org/x", "password")
	orchard := srv.Login(t, "romeo@localhost/orchard", "password")
	garden := srv.Login(t, "romeo@localhost/garden", "password")

	juliet.Send(t, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="example.org"/><item jid="romeo@localhost/orchard"/></block></iq>`)
	juliet.Expect(t, `<iq type="result" id="b1"/>`)

	iago.Send(t, `<message to="juliet@localhost/balcony" type="chat" id="m1"><body>hi</body></message>`)
	iago.Expect(t, `<message type="error" id="m1"><error><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
	orchard.Send(t, `<message to="juliet@localhost/balcony" type="chat" id="m2"><body>hi</body></message>`)
	orchard.Expect(t, `<message type="error" id="m2"><error><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
	garden.Send(t, `<message to="juliet@localhost/balcony" type="chat" id="m3"><body>hi</body></message>`)
	juliet.Expect(t, `<message from="romeo@localhost/garden" id="m3"/>`)

	juliet.Send(t, `<message to="romeo@localhost/orchard" type="chat" id="m4"><body>no</body></message>`)
	juliet.Expect(t, `<message type="error" id="m4"><error><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><blocked xmlns="urn:xmpp:blocking:errors"/></error></message>`)
	juliet.Send(t, `<message to="romeo@localhost/garden" type="chat" id="m5"><body>yes</body></message>`)
	garden.Expect(t, `<message from="juliet@localhost/balcony" id="m5"/>`)
	juliet.Send(t, `<iq type="get" id="v1" to="example.org"><query xmlns="jabber:iq:version"/></iq>`)
	juliet.Expect(t, `<iq type="error" id="v1"><error><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
}

// TestOwnResourcesNeverBlocked: XEP-0191 §4 note: a user's resources can
// always talk to each other, even with the account on its own block list.
func TestOwnResourcesNeverBlocked(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, modules)
	srv.CreateUser(t, "juliet@localhost", "password")
	balcony := srv.Login(t, "juliet@localhost/balcony", "password")
	chamber := srv.Login(t, "juliet@localhost/chamber", "password")
	balcony.Send(t, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="juliet@localhost"/><item jid="localhost"/></block></iq>`)
	balcony.Expect(t, `<iq type="result" id="b1"/>`)
	balcony.Send(t, `<message to="juliet@localhost/chamber" type="chat" id="m1"><body>me</body></message>`)
	chamber.Expect(t, `<message from="juliet@localhost/balcony" id="m1"/>`)
}

// TestStorage: unblock-all empties the list; deleting the account deletes it.
func TestStorage(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, modules)
	srv.CreateUser(t, "juliet@localhost", "password")
	c := srv.Login(t, "juliet@localhost/balcony", "password")
	c.Send(t, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="a@localhost"/><item jid="b@localhost"/></block></iq>`)
	c.Expect(t, `<iq type="result" id="b1"/>`)
	ctx := context.Background()
	m := srv.Driver.Map("localhost", "blocking")
	all, err := m.All(ctx, "juliet")
	if err != nil || len(all) != 2 {
		t.Fatalf("stored %v (err %v), want 2 items", all, err)
	}
	c.Send(t, `<iq type="set" id="b2"><unblock xmlns="urn:xmpp:blocking"/></iq>`)
	c.Expect(t, `<iq type="result" id="b2"/>`)
	c.Send(t, `<iq type="get" id="b3"><blocklist xmlns="urn:xmpp:blocking"/></iq>`)
	if el := c.Expect(t, `<iq type="result" id="b3"><blocklist xmlns="urn:xmpp:blocking"/></iq>`); el.FirstChild().FirstChild() != nil {
		t.Errorf("block list not empty after unblock all: %s", el)
	}
	c.Send(t, `<iq type="set" id="b4"><block xmlns="urn:xmpp:blocking"><item jid="a@localhost"/></block></iq>`)
	c.Expect(t, `<iq type="result" id="b4"/>`)
	if err := srv.Core.DeleteUser(ctx, jid.MustParse("juliet@localhost")); err != nil {
		t.Fatal(err)
	}
	if all, err := m.All(ctx, "juliet"); err != nil || len(all) != 0 {
		t.Fatalf("after deletion: %v (err %v), want nothing", all, err)
	}
}

// TestCrossHostBroadcast: presence the presence module broadcasts from a
// user of one local host to a contact on another local host is stopped
// when the user blocks that contact (it never passes pre-presence).
func TestCrossHostBroadcast(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, modules, xmpptest.Hosts("localhost", "example.org"))
	srv.CreateUser(t, "juliet@localhost", "password")
	srv.CreateUser(t, "iago@example.org", "password")
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	iago := srv.Login(t, "iago@example.org/x", "password")
	available(t, juliet, "juliet@localhost/balcony")
	available(t, iago, "iago@example.org/x")
	juliet.Send(t, `<presence to="iago@example.org" type="subscribe"/>`)
	iago.Expect(t, `<presence from="juliet@localhost" type="subscribe"/>`)
	iago.Send(t, `<presence to="juliet@localhost" type="subscribed"/>`)
	juliet.Expect(t, `<presence from="iago@example.org" type="subscribed"/>`)
	juliet.Expect(t, `<presence from="iago@example.org/x"/>`)

	iago.Send(t, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="juliet@localhost"/></block></iq>`)
	iago.Expect(t, `<iq type="result" id="b1"/>`)
	juliet.Expect(t, `<presence from="iago@example.org/x" type="unavailable"/>`)
	iago.Send(t, `<presence><show>away</show></presence>`)
	iago.Expect(t, `<presence from="iago@example.org/x"><show>away</show></presence>`)
	juliet.ExpectNothing(t)
}

// TestRosterRemovalOfBlockedContact: removing a blocked contact from the
// roster still tells the contact (unsubscribe, unsubscribed), so that both
// rosters stay consistent; nothing else of the user's gets through.
func TestRosterRemovalOfBlockedContact(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, modules)
	srv.CreateUser(t, "juliet@localhost", "password")
	srv.CreateUser(t, "romeo@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	available(t, romeo, "romeo@localhost/orchard")
	available(t, juliet, "juliet@localhost/balcony")
	romeo.Send(t, `<presence to="juliet@localhost" type="subscribe"/>`)
	juliet.Expect(t, `<presence from="romeo@localhost" type="subscribe"/>`)
	juliet.Send(t, `<presence to="romeo@localhost" type="subscribed"/>`)
	romeo.Expect(t, `<presence from="juliet@localhost" type="subscribed"/>`)
	romeo.Expect(t, `<presence from="juliet@localhost/balcony"/>`)

	juliet.Send(t, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="romeo@localhost"/></block></iq>`)
	juliet.Expect(t, `<iq type="result" id="b1"/>`)
	romeo.Expect(t, `<presence from="juliet@localhost/balcony" type="unavailable"/>`)

	juliet.Send(t, `<iq type="set" id="r1"><query xmlns="jabber:iq:roster"><item jid="romeo@localhost" subscription="remove"/></query></iq>`)
	juliet.Expect(t, `<iq type="result" id="r1"/>`)
	got := map[string]bool{}
	for {
		el, err := romeo.RecvTimeout(300 * time.Millisecond)
		if err != nil {
			break
		}
		if el.Name != "presence" || el.From() != "juliet@localhost" && el.Type() != "unavailable" {
			t.Errorf("romeo received %s", el)
		}
		got[el.Type()] = true
	}
	if !got["unsubscribed"] {
		t.Errorf("romeo did not receive unsubscribed (got %v)", got)
	}
	juliet.ExpectNothing(t)
}

// available sends initial presence for c and waits until the server has
// fully processed it (the IQ after it is answered only then; the echo of
// the presence comes earlier, before probes and pending requests).
func available(t *testing.T, c *xmpptest.Client, full string) {
	t.Helper()
	c.Send(t, `<presence/><iq type="get" id="sync" to="`+jid.MustParse(full).Domain()+`"><ping xmlns="urn:xmpp:ping"/></iq>`)
	c.Expect(t, `<presence from="`+full+`"/>`)
	c.Expect(t, `<iq id="sync"/>`)
}

// TestBlockedIQToBareJID: a blocked JID gets no answer on the user's behalf.
func TestBlockedIQToBareJID(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "blocking", "vcard"))
	srv.CreateUser(t, "juliet@localhost", "password")
	srv.CreateUser(t, "romeo@localhost", "password")
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	juliet.Send(t, `<iq type="set" id="v1"><vCard xmlns="vcard-temp"><FN>Juliet</FN></vCard></iq>`)
	juliet.Expect(t, `<iq type="result" id="v1"/>`)
	romeo.Send(t, `<iq type="get" id="v2" to="juliet@localhost"><vCard xmlns="vcard-temp"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="v2"><vCard xmlns="vcard-temp"><FN>Juliet</FN></vCard></iq>`)
	juliet.Send(t, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="romeo@localhost"/></block></iq>`)
	juliet.Expect(t, `<iq type="result" id="b1"/>`)
	romeo.Send(t, `<iq type="get" id="v3" to="juliet@localhost"><vCard xmlns="vcard-temp"/></iq>`)
	romeo.Expect(t, `<iq type="error" id="v3"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	juliet.Send(t, `<iq type="set" id="b2"><unblock xmlns="urn:xmpp:blocking"/></iq>`)
	juliet.Expect(t, `<iq type="result" id="b2"/>`)
	romeo.Send(t, `<iq type="get" id="v4" to="juliet@localhost"><vCard xmlns="vcard-temp"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="v4"><vCard xmlns="vcard-temp"><FN>Juliet</FN></vCard></iq>`)
}
