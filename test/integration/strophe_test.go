package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/testbin"
)

// The Strophe.js scenarios are the Node scripts in strophe/ (strophe.js
// with @xmldom/xmldom, ws and xhr2, pinned in strophe/package.json).
// These tests start a server with the bosh and websocket modules, create
// the accounts, and check the lines the script prints.

// runStrophe runs strophe/NAME.js with args (see nodePackage.run).
func (s *server) runStrophe(t *testing.T, name string, args ...string) []string {
	t.Helper()
	return strophe.run(t, s, name, 90*time.Second, args...)
}

// TestStropheBOSH: Strophe.js logs in over BOSH (the bosh module on a
// plain loopback HTTP listener: SASL, xmpp:restart, bind) and over
// WebSocket; the two exchange a message each way; a response dropped on
// its way to Strophe is recovered by Strophe resending the same rid
// (the server answers from its response cache); the BOSH client then
// terminates with unavailable presence in the terminate body.
func TestStropheBOSH(t *testing.T) {
	t.Parallel()
	strophe.require(t)
	port := testbin.FreePorts(t, 1)[0]
	s := startServer(t, serverConfig{
		Modules: append(append([]string{}, defaultModules...), "bosh", "websocket"),
		Extra:   fmt.Sprintf("[http]\nlisten = [\"127.0.0.1:%d\"]\n", port),
	})
	s.addUser("romeo", password)
	s.addUser("juliet", password)
	out := s.runStrophe(t, "bosh",
		"--bosh-url", fmt.Sprintf("http://127.0.0.1:%d/http-bind", port),
		"--ws-url", fmt.Sprintf("ws://127.0.0.1:%d/xmpp-websocket", port),
		"--domain", s.Domain, "--user1", "romeo", "--user2", "juliet", "--password", password)
	l := testbin.Line(t, out, "OK login")
	if !strings.HasPrefix(testbin.Field(l, "bosh"), "romeo@localhost/") || !strings.HasPrefix(testbin.Field(l, "ws"), "juliet@localhost/") {
		t.Errorf("login: %s", l)
	}
	if m := testbin.Field(l, "mech"); !strings.HasPrefix(m, "SCRAM-SHA-") {
		t.Errorf("BOSH mechanism %q, want SCRAM", m)
	}
	testbin.Line(t, out, "OK juliet got from=romeo@localhost/bosh")
	testbin.Line(t, out, "OK romeo got from=juliet@localhost/ws")
	testbin.Line(t, out, "OK retransmitted rid=")
	testbin.Line(t, out, "OK terminate unavailable-from=romeo@localhost/bosh")
	testbin.Line(t, out, "OK logout")
	s.stop()
}
