package ping_test

import (
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/xmpp/stream"

	_ "github.com/metronome-xmpp/metronome/modules/disco"
	_ "github.com/metronome-xmpp/metronome/modules/ping"
)

func TestScripts(t *testing.T) {
	xmpptest.RunScripts(t, "testdata", xmpptest.Modules("ping"))
}

func TestDiscoFeature(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("disco", "ping"))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	c.Send(t, `<iq type="get" id="d1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	c.Expect(t, `<iq type="result" id="d1"><query xmlns="http://jabber.org/protocol/disco#info"><feature var="urn:xmpp:ping"/></query></iq>`)
}

// TestIdlePing: a client silent for [c2s] idle_timeout gets a ping from
// the server (XEP-0199 §4.2, server-to-client), and answering it keeps the
// session open.
func TestIdlePing(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("ping"), xmpptest.Config("[c2s]\nidle_timeout = \"1s\""))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	start := time.Now()
	ping := c.Expect(t, `<iq type="get" from="localhost" to="`+c.JID.String()+`"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("idle ping after %v, want about 1s", d)
	}
	if ping.ID() == "" {
		t.Fatalf("idle ping without id: %s", ping)
	}
	c.Send(t, `<iq type="result" id="`+ping.ID()+`" to="localhost"/>`)
	// The answer is consumed by the server, and the session still works.
	c.Send(t, `<iq type="get" id="p2" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	c.Expect(t, `<iq type="result" id="p2"/>`)
}

// TestIdlePingDisabled: without idle pings nobody claims the idle session
// and the core closes it at the idle timeout.
func TestIdlePingDisabled(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("ping"),
		xmpptest.Config("[modules.ping]\nidle_ping = false\n[c2s]\nidle_timeout = \"1s\""))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	el, err := c.RecvTimeout(4 * time.Second)
	if err != nil {
		t.Fatalf("no stream error: %v", err)
	}
	if el.Name != "error" || el.Space != stream.NS || el.Child("", "connection-timeout") == nil {
		t.Fatalf("received %s, want a connection-timeout stream error", el)
	}
	if el, err := c.RecvTimeout(4 * time.Second); err == nil {
		t.Fatalf("received %s, want the stream to end", el)
	}
}
