package csi_test

import (
	"strings"
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/standard"
)

var modules = xmpptest.Modules("roster", "presence", "message", "csi")

func TestScripts(t *testing.T) {
	xmpptest.RunScripts(t, "testdata", modules)
}

// The feature is advertised after binding only.
func TestFeature(t *testing.T) {
	srv := xmpptest.NewServer(t, modules)
	srv.CreateUser(t, "romeo@localhost", "password")
	r := srv.DialTLS(t, "localhost")
	r.Write(t, xmpptest.StreamOpen("localhost"))
	if got := r.ReadUntil(t, "</stream:features>"); strings.Contains(got, "urn:xmpp:csi:0") {
		t.Fatalf("CSI offered before authentication: %s", got)
	}
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	if c.Features.Child("urn:xmpp:csi:0", "csi") == nil {
		t.Fatal("CSI not offered after binding")
	}
}

// Without the module, the nonzas are not part of the stream.
func TestNotOffered(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message"))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	if c.Features.Child("urn:xmpp:csi:0", "csi") != nil {
		t.Fatal("CSI offered without the module")
	}
	c.Send(t, `<inactive xmlns="urn:xmpp:csi:0"/>`)
	c.Expect(t, `<error xmlns="http://etherx.jabber.org/streams"><unsupported-stanza-type xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></error>`)
}
