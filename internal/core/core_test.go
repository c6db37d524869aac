package core_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/standard"
)

func TestReloadKeepsSessionsAndRefusesBadConfig(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("ping"))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")

	c.Send(t, `<iq type="get" id="v1" to="localhost"><query xmlns="jabber:iq:version"/></iq>`)
	c.Expect(t, `<iq type="error" id="v1"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)

	// Enable the version module at run time.
	opts := *srv.Core.Options()
	opts.Hosts = append(opts.Hosts[:0:0], opts.Hosts...)
	opts.Hosts[0].Modules = []string{"ping", "version"}
	if err := srv.Core.Reload(&opts); err != nil {
		t.Fatal(err)
	}
	c.Send(t, `<iq type="get" id="v2" to="localhost"><query xmlns="jabber:iq:version"/></iq>`)
	c.Expect(t, `<iq type="result" id="v2"><query xmlns="jabber:iq:version"><name>Metronome</name></query></iq>`)

	// A configuration naming an unknown module is refused; the old one stays.
	bad := opts
	bad.Hosts = append(bad.Hosts[:0:0], bad.Hosts...)
	bad.Hosts[0].Modules = []string{"ping", "no_such_module"}
	err := srv.Core.Reload(&bad)
	if err == nil || !strings.Contains(err.Error(), "no_such_module") {
		t.Fatalf("want an error naming the unknown module, got %v", err)
	}
	c.Send(t, `<iq type="get" id="p1" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	c.Expect(t, `<iq type="result" id="p1"/>`)
	c.Send(t, `<iq type="get" id="v3" to="localhost"><query xmlns="jabber:iq:version"/></iq>`)
	c.Expect(t, `<iq type="result" id="v3"/>`)
}

func TestShutdownSendsSystemShutdown(t *testing.T) {
	srv := xmpptest.NewServer(t)
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	raw := srv.DialRaw(t) // an unauthenticated stream is told too
	raw.Write(t, xmpptest.StreamOpen("localhost"))
	raw.ReadUntil(t, "</stream:features>")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Core.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.Expect(t, `<error xmlns="http://etherx.jabber.org/streams"><system-shutdown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></error>`)
	if got := raw.ReadUntilClose(t); !strings.Contains(got, "<system-shutdown") || !strings.HasSuffix(got, "</stream:stream>") {
		t.Fatalf("unauthenticated stream got %q", got)
	}
}

func TestLegacySessionAndUnknownIQ(t *testing.T) {
	srv := xmpptest.NewServer(t)
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	c.Send(t, `<iq type="set" id="s1"><session xmlns="urn:ietf:params:xml:ns:xmpp-session"/></iq>`)
	c.Expect(t, `<iq type="result" id="s1"/>`)
	c.Send(t, `<iq type="get" id="u1" to="localhost"><nope xmlns="urn:example:nope"/></iq>`)
	c.Expect(t, `<iq type="error" id="u1" from="localhost"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	c.Send(t, `<iq type="get" id="u2"/>`)
	c.Expect(t, `<iq type="error" id="u2"><error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	c.Send(t, `<message to="not a jid@@localhost"><body>x</body></message>`)
	c.Expect(t, `<message type="error"><error type="modify"><jid-malformed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
	c.Send(t, `<message to="someone@example.net"><body>x</body></message>`)
	c.Expect(t, `<message type="error" from="someone@example.net"><error type="cancel"><remote-server-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
	// A spoofed 'from' is a stream error (RFC 6120 §8.1.2.1).
	c.Send(t, `<message from="juliet@localhost/x" to="romeo@localhost"><body>x</body></message>`)
	c.Expect(t, `<error xmlns="http://etherx.jabber.org/streams"><invalid-from xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></error>`)
}

func TestIdleClientsArePinged(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("ping"),
		xmpptest.Config("[c2s]\nidle_timeout = \"1s\"\nping_timeout = \"1s\""))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	answering := srv.Login(t, "romeo@localhost/a", "password")
	silent := srv.Login(t, "juliet@localhost/b", "password")

	// The answering client answers three rounds of pings, then checks it is
	// still served.
	done := make(chan error, 1)
	go func() {
		pings := 0
		for {
			el, err := answering.RecvTimeout(xmpptest.Timeout)
			if err != nil {
				done <- err
				return
			}
			switch {
			case el.Name == "iq" && el.Type() == "get" && el.Child("urn:xmpp:ping", "ping") != nil:
				pings++
				answering.RawConn().Write([]byte(`<iq type="result" to="localhost" id="` + el.ID() + `"/>`))
				if pings == 3 {
					answering.RawConn().Write([]byte(`<iq type="get" id="alive" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`))
				}
			case el.ID() == "alive" && el.Type() == "result":
				done <- nil
				return
			default:
				done <- fmt.Errorf("unexpected %s", el)
				return
			}
		}
	}()

	// The silent client is pinged, does not answer, and is disconnected.
	silent.Expect(t, `<iq type="get" from="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	silent.Expect(t, `<error xmlns="http://etherx.jabber.org/streams"><connection-timeout xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></error>`)
	if err := <-done; err != nil {
		t.Fatalf("answering client: %v", err)
	}
}

func peerCert(t *testing.T, addr, serverName string) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func TestCertificatesPerHostAndHotReload(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Hosts("localhost", "example.org"))
	a := peerCert(t, srv.TLSAddr, "localhost")
	b := peerCert(t, srv.TLSAddr, "example.org")
	if a.VerifyHostname("localhost") != nil || b.VerifyHostname("example.org") != nil {
		t.Fatalf("SNI picked the wrong certificates: %v / %v", a.DNSNames, b.DNSNames)
	}
	// Replace example.org's certificate on disk and reload: new handshakes
	// get the new one, without a restart.
	dir := filepath.Join(srv.Core.Options().DataDir, "certs")
	for _, f := range []string{"example.org.crt", "example.org.key"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	opts := *srv.Core.Options()
	if err := srv.Core.Reload(&opts); err != nil {
		t.Fatal(err)
	}
	b2 := peerCert(t, srv.TLSAddr, "example.org")
	if b2.SerialNumber.Cmp(b.SerialNumber) == 0 {
		t.Fatal("the certificate was not reloaded")
	}
	if a2 := peerCert(t, srv.TLSAddr, "localhost"); a2.SerialNumber.Cmp(a.SerialNumber) != 0 {
		t.Fatal("localhost's certificate changed")
	}
}

func TestDirectTLSWithALPN(t *testing.T) {
	srv := xmpptest.NewServer(t)
	c, err := tls.Dial("tcp", srv.TLSAddr, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true,
		NextProtos: []string{"xmpp-client"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "xmpp-client" {
		t.Fatalf("ALPN negotiated %q", p)
	}
}

func TestStanzaNormalisation(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "offline"))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	// Errors for invalid stanzas are addressed to the sender.
	c.Send(t, `<iq type="get" id="b1" to="localhost"><ping xmlns="urn:xmpp:ping"/><ping xmlns="urn:xmpp:ping"/></iq>`)
	c.Expect(t, `<iq type="error" id="b1" to="romeo@localhost/orchard" from="localhost"><error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	c.Send(t, `<presence type="bogus" id="p1"/>`)
	c.Expect(t, `<presence type="error" id="p1" to="romeo@localhost/orchard"><error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`)
	c.Send(t, `<presence/>`)
	c.Expect(t, `<presence from="romeo@localhost/orchard"/>`)
	// A message without 'to' goes to the account, addressed to it; an
	// unknown type is treated as normal (RFC 6121 §5.2.2).
	c.Send(t, `<message type="chat" id="m1"><body>self</body></message>`)
	c.Expect(t, `<message type="chat" id="m1" to="romeo@localhost" from="romeo@localhost/orchard"><body>self</body></message>`)
	c.Send(t, `<message type="shout" id="m2" to="romeo@localhost"><body>loud</body></message>`)
	got := c.Expect(t, `<message id="m2" to="romeo@localhost"><body>loud</body></message>`)
	if got.Type() != "" {
		t.Fatalf("unknown type kept: %s", got)
	}
}
