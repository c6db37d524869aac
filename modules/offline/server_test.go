package offline_test

import (
	"context"
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/disco"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

func TestDiscoFeature(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("disco", "roster", "presence", "message", "offline"))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	c.Send(t, `<iq type="get" id="d1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	c.Expect(t, `<iq type="result" id="d1"><query xmlns="http://jabber.org/protocol/disco#info"><feature var="msgoffline"/></query></iq>`)
}

// TestUserDeletedPurges checks that deleting an account deletes its stored
// messages (user/deleted), so that a new account of the same name starts empty.
func TestUserDeletedPurges(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "offline"))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m1"><body>one</body></message>`)
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m2"><body>two</body></message>`)
	romeo.ExpectNothing(t)

	ctx := context.Background()
	arch := srv.Driver.Archive("localhost", "offline")
	items, _, err := arch.Find(ctx, "juliet", storage.Query{})
	if err != nil || len(items) != 2 {
		t.Fatalf("stored %d messages (err %v), want 2", len(items), err)
	}
	if items[0].With != "romeo@localhost" || items[0].Type != "message" {
		t.Errorf("item = %+v, want With romeo@localhost, Type message", items[0])
	}
	if err := srv.Core.DeleteUser(ctx, jid.MustParse("juliet@localhost")); err != nil {
		t.Fatal(err)
	}
	items, _, err = arch.Find(ctx, "juliet", storage.Query{})
	if err != nil || len(items) != 0 {
		t.Fatalf("after deletion: %d messages (err %v), want 0", len(items), err)
	}
}

// TestMessagesSurviveNegativePresence checks that presence with a negative
// priority does not flush the queue (XEP-0160 §2 step 5).
func TestMessagesSurviveNegativePresence(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "offline"))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m1"><body>one</body></message>`)
	romeo.ExpectNothing(t)

	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	juliet.Send(t, `<presence><priority>-5</priority></presence>`)
	juliet.Expect(t, `<presence from="juliet@localhost/balcony"/>`)
	juliet.ExpectNothing(t)
	juliet.Send(t, `<presence><priority>3</priority></presence>`)
	juliet.Expect(t, `<message id="m1"><body>one</body><delay xmlns="urn:xmpp:delay" from="localhost"/></message>`)
	juliet.Expect(t, `<presence from="juliet@localhost/balcony"/>`)
}
