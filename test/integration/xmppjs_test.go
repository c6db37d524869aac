package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/testbin"
)

// The xmpp.js scenarios are the Node scripts in xmppjs/ (@xmpp/client,
// pinned in xmppjs/package.json). These tests start a server for each,
// create its accounts, and check the lines the script prints.

// runXmppjs runs xmppjs/NAME.js against s with the connection arguments
// and args (see nodePackage.run).
func (s *server) runXmppjs(t *testing.T, name string, args ...string) []string {
	t.Helper()
	return xmppjs.run(t, s, name, 60*time.Second, append([]string{"--host", "127.0.0.1", "--domain", s.Domain,
		"--port", fmt.Sprint(s.C2S), "--tls-port", fmt.Sprint(s.C2STLS)}, args...)...)
}

// TestXmppjsLogin: xmpp.js logs in with SCRAM-SHA-256 (and checks the
// server's signature) over STARTTLS and over direct TLS, gets the roster
// and sees its initial presence come back.
func TestXmppjsLogin(t *testing.T) {
	t.Parallel()
	xmppjs.require(t)
	s := startServer(t, serverConfig{})
	jid := s.addUser("romeo", password)
	for _, tc := range []struct {
		name string
		args []string
		tls  string
	}{
		{"starttls", nil, "starttls"},
		{"direct TLS", []string{"--direct-tls"}, "direct"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := s.runXmppjs(t, "login", append([]string{"--user", "romeo", "--password", password}, tc.args...)...)
			l := testbin.Line(t, out, "OK login")
			if j := testbin.Field(l, "jid"); !strings.HasPrefix(j, jid+"/") {
				t.Errorf("bound JID %q, want a resource of %s", j, jid)
			}
			if m := testbin.Field(l, "mech"); m != "SCRAM-SHA-256" {
				t.Errorf("mechanism %q, want SCRAM-SHA-256", m)
			}
			if v := testbin.Field(l, "tls"); v != tc.tls {
				t.Errorf("tls %q, want %q", v, tc.tls)
			}
			if v := testbin.Field(l, "protocol"); !strings.HasPrefix(v, "TLSv1.") {
				t.Errorf("TLS protocol %q", v)
			}
			testbin.Line(t, out, "OK roster items=0")
			if l := testbin.Line(t, out, "OK presence-echo"); !strings.HasPrefix(testbin.Field(l, "from"), jid+"/") {
				t.Errorf("own presence came back as %q", l)
			}
			testbin.Line(t, out, "OK logout")
		})
	}
	s.stop()
}

// TestXmppjsRosterChat: roster add, the subscription handshake both ways,
// presence both ways, a chat message each way and unavailable presence,
// between an xmpp.js client on STARTTLS and one on direct TLS.
func TestXmppjsRosterChat(t *testing.T) {
	t.Parallel()
	xmppjs.require(t)
	s := startServer(t, serverConfig{})
	s.addUser("romeo", password)
	s.addUser("juliet", password)
	out := s.runXmppjs(t, "roster", "--user1", "romeo", "--user2", "juliet", "--password", password)
	testbin.Line(t, out, "OK romeo roster-push jid=juliet@localhost subscription=none ask=subscribe")
	testbin.Line(t, out, "OK juliet subscribe-request from=romeo@localhost")
	testbin.Line(t, out, "OK romeo presence from=juliet@localhost/")
	testbin.Line(t, out, "OK juliet presence from=romeo@localhost/")
	testbin.Line(t, out, "OK rosters-both")
	testbin.Line(t, out, "OK juliet got from=romeo@localhost/")
	testbin.Line(t, out, "OK romeo got from=juliet@localhost/")
	testbin.Line(t, out, "OK romeo unavailable from=juliet@localhost/")
	s.stop()
}

// TestXmppjsOffline: messages sent while the recipient is offline arrive,
// in order and with a XEP-0203 delay, at her next login, and only once.
func TestXmppjsOffline(t *testing.T) {
	t.Parallel()
	xmppjs.require(t)
	s := startServer(t, serverConfig{})
	s.addUser("romeo", password)
	s.addUser("juliet", password)
	out := s.runXmppjs(t, "offline", "--user1", "romeo", "--user2", "juliet", "--password", password)
	if l := testbin.Line(t, out, "OK offline count=3 in-order"); testbin.Field(l, "delay-from") != s.Domain {
		t.Errorf("offline delivery: %s", l)
	}
	testbin.Line(t, out, "OK no-redelivery")
	s.stop()
}

// TestXmppjsWebSocket: xmpp.js logs in over ws:// (RFC 7395, the websocket
// module on a plain loopback HTTP listener) with SCRAM-SHA-256 and
// exchanges a chat message each way with a client on STARTTLS.
func TestXmppjsWebSocket(t *testing.T) {
	t.Parallel()
	xmppjs.require(t)
	port := testbin.FreePorts(t, 1)[0]
	s := startServer(t, serverConfig{
		Modules: append(append([]string{}, defaultModules...), "websocket"),
		Extra:   fmt.Sprintf("[http]\nlisten = [\"127.0.0.1:%d\"]\n", port),
	})
	s.addUser("romeo", password)
	s.addUser("juliet", password)
	out := s.runXmppjs(t, "websocket", "--ws-url", fmt.Sprintf("ws://127.0.0.1:%d/xmpp-websocket", port),
		"--user1", "romeo", "--user2", "juliet", "--password", password)
	if l := testbin.Line(t, out, "OK login"); !strings.HasPrefix(testbin.Field(l, "ws"), "romeo@localhost/") || testbin.Field(l, "mech") != "SCRAM-SHA-256" {
		t.Errorf("login: %s", l)
	}
	testbin.Line(t, out, "OK juliet got from=romeo@localhost/")
	testbin.Line(t, out, "OK romeo got from=juliet@localhost/")
	testbin.Line(t, out, "OK logout")
	s.stop()
}
