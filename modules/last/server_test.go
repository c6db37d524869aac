package last_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/disco"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

var modules = xmpptest.Modules("roster", "presence", "last")

func TestDiscoFeature(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("disco", "roster", "presence", "last"))
	srv.CreateUser(t, "juliet@localhost", "password")
	c := srv.Login(t, "juliet@localhost/balcony", "password")
	c.Send(t, `<iq type="get" id="d1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	c.Expect(t, `<iq type="result" id="d1"><query xmlns="http://jabber.org/protocol/disco#info"><feature var="jabber:iq:last"/></query></iq>`)
	// XEP-0012 §9: the account answers queries too, so its disco#info
	// advertises the feature.
	c.Send(t, `<iq type="get" id="d2" to="juliet@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	c.Expect(t, `<iq type="result" id="d2"><query xmlns="http://jabber.org/protocol/disco#info"><identity category="account"/><feature var="jabber:iq:last"/></query></iq>`)
}

// waitRecorded polls the store until the logout of user is recorded: the
// core fires session/closed after the stream is closed.
func waitRecorded(t *testing.T, srv *xmpptest.Server, user string) []byte {
	t.Helper()
	kv := srv.Driver.KeyVal("localhost", "last")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := kv.Get(context.Background(), user)
		if err == nil {
			return b
		}
		if !errors.Is(err, storage.ErrNotFound) || time.Now().After(deadline) {
			t.Fatalf("logout of %s not recorded: %v", user, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOwnQuery: the user may always ask about their own account (0 while
// online); a session that ends without unavailable presence leaves no
// status text, even if its available presence had one.
func TestOwnQuery(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, modules)
	srv.CreateUser(t, "juliet@localhost", "password")
	srv.CreateUser(t, "romeo@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	romeo.Send(t, `<iq type="get" id="l1"><query xmlns="jabber:iq:last"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="l1"><query xmlns="jabber:iq:last" seconds="0"/></iq>`)

	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	juliet.Send(t, `<presence><status>Here</status></presence>`)
	juliet.Expect(t, `<presence from="juliet@localhost/balcony"/>`)
	juliet.Kill()
	waitRecorded(t, srv, "juliet")

	juliet = srv.Login(t, "juliet@localhost/chamber", "password")
	juliet.Send(t, `<iq type="get" id="l2" to="juliet@localhost"><query xmlns="jabber:iq:last"/></iq>`)
	juliet.Expect(t, `<iq type="result" id="l2"><query xmlns="jabber:iq:last" seconds="0"/></iq>`)

	b := waitRecorded(t, srv, "juliet")
	if len(b) == 0 || bytes.Contains(b, []byte(`"status"`)) {
		t.Errorf("record %s: want a time and no status (the session was killed)", b)
	}
}

// subscribed logs romeo and juliet in, available, with romeo subscribed to
// juliet's presence (RFC 6121 §3.1).
func subscribed(t *testing.T, srv *xmpptest.Server) (romeo, juliet *xmpptest.Client) {
	t.Helper()
	romeo = srv.Login(t, "romeo@localhost/orchard", "password")
	juliet = srv.Login(t, "juliet@localhost/balcony", "password")
	available(t, romeo, "romeo@localhost/orchard")
	available(t, juliet, "juliet@localhost/balcony")
	romeo.Send(t, `<presence to="juliet@localhost" type="subscribe"/>`)
	juliet.Expect(t, `<presence from="romeo@localhost" type="subscribe"/>`)
	juliet.Send(t, `<presence to="romeo@localhost" type="subscribed"/>`)
	romeo.Expect(t, `<presence from="juliet@localhost" type="subscribed"/>`)
	romeo.Expect(t, `<presence from="juliet@localhost/balcony"/>`)
	return romeo, juliet
}

// TestNeverLoggedOut: an existing account with no recorded logout gives
// item-not-found to its subscribers.
func TestNeverLoggedOut(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, modules)
	srv.CreateUser(t, "juliet@localhost", "password")
	srv.CreateUser(t, "romeo@localhost", "password")
	ctx := context.Background()
	romeo, juliet := subscribed(t, srv)
	juliet.Close()
	romeo.Expect(t, `<presence type="unavailable" from="juliet@localhost/balcony"/>`)
	waitRecorded(t, srv, "juliet")
	if err := srv.Driver.KeyVal("localhost", "last").Delete(ctx, "juliet"); err != nil {
		t.Fatal(err)
	}
	romeo.Send(t, `<iq type="get" id="l1" to="juliet@localhost"><query xmlns="jabber:iq:last"/></iq>`)
	romeo.Expect(t, `<iq type="error" id="l1"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
}

// TestSecondsAndDeletion: the answer counts seconds since the recorded
// logout; deleting the account deletes the record.
func TestSecondsAndDeletion(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, modules)
	srv.CreateUser(t, "juliet@localhost", "password")
	srv.CreateUser(t, "romeo@localhost", "password")
	romeo, juliet := subscribed(t, srv)
	juliet.Close()
	romeo.Expect(t, `<presence type="unavailable" from="juliet@localhost/balcony"/>`)
	waitRecorded(t, srv, "juliet")

	ctx := context.Background()
	kv := srv.Driver.KeyVal("localhost", "last")
	past := time.Now().Add(-903 * time.Second).Unix()
	if err := kv.Set(ctx, "juliet", []byte(`{"time":`+strconv.FormatInt(past, 10)+`,"status":"Heading Home"}`)); err != nil {
		t.Fatal(err)
	}
	romeo.Send(t, `<iq type="get" id="l1" to="juliet@localhost"><query xmlns="jabber:iq:last"/></iq>`)
	el := romeo.Expect(t, `<iq type="result" id="l1"><query xmlns="jabber:iq:last">Heading Home</query></iq>`)
	if s, _ := strconv.Atoi(el.FirstChild().Attr("seconds")); s < 903 || s > 910 {
		t.Errorf("seconds = %q, want about 903", el.FirstChild().Attr("seconds"))
	}
	if err := srv.Core.DeleteUser(ctx, jid.MustParse("juliet@localhost")); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "juliet"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after deletion: err = %v, want ErrNotFound", err)
	}
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
