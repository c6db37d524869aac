package vcard_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/disco"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

func TestDiscoFeature(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("disco", "vcard"))
	srv.CreateUser(t, "juliet@localhost", "password")
	c := srv.Login(t, "juliet@localhost/balcony", "password")
	c.Send(t, `<iq type="get" id="d1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	c.Expect(t, `<iq type="result" id="d1"><query xmlns="http://jabber.org/protocol/disco#info"><feature var="vcard-temp"/></query></iq>`)
	c.Send(t, `<iq type="get" id="d2" to="juliet@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	c.Expect(t, `<iq type="result" id="d2"><query xmlns="http://jabber.org/protocol/disco#info"><feature var="vcard-temp"/></query></iq>`)
}

// TestStorage checks what is stored: the vCard as sent, nothing when it is
// too large (default max_size here, 64KB), and nothing once the account is
// deleted.
func TestStorage(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("vcard"),
		xmpptest.Config("[c2s]\nmax_stanza_size = \"1MB\""))
	srv.CreateUser(t, "juliet@localhost", "password")
	c := srv.Login(t, "juliet@localhost/balcony", "password")
	c.Send(t, `<iq type="set" id="v1"><vCard xmlns="vcard-temp"><FN>Juliet</FN></vCard></iq>`)
	c.Expect(t, `<iq type="result" id="v1"/>`)
	ctx := context.Background()
	kv := srv.Driver.KeyVal("localhost", "vcard")
	b, err := kv.Get(ctx, "juliet")
	if err != nil || string(b) != `<vCard xmlns="vcard-temp"><FN>Juliet</FN></vCard>` {
		t.Fatalf("stored %q (err %v)", b, err)
	}
	big := strings.Repeat("x", 65<<10)
	c.Send(t, `<iq type="set" id="v2"><vCard xmlns="vcard-temp"><DESC>`+big+`</DESC></vCard></iq>`)
	c.Expect(t, `<iq type="error" id="v2"><error type="modify"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	if b, _ := kv.Get(ctx, "juliet"); strings.Contains(string(b), "DESC") {
		t.Fatal("too large vCard was stored")
	}
	if err := srv.Core.DeleteUser(ctx, jid.MustParse("juliet@localhost")); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "juliet"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after deletion: err = %v, want ErrNotFound", err)
	}
}
