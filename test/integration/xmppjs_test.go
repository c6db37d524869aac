package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/metronome-xmpp/metronome/internal/testbin"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The xmpp.js scenarios are the Node scripts in xmppjs/ (@xmpp/client,
// pinned in xmppjs/package.json). These tests start a server for each,
// create its accounts, and check the lines the script prints.

var (
	xmppjsOnce sync.Once
	xmppjsNode string   // path of node
	xmppjsDir  string   // absolute path of xmppjs/
	xmppjsEnv  []string // extra environment for node
	xmppjsErr  error
)

// requireXmppjs skips the test when node, npm or the xmppjs/ packages are
// not available, or fails it when METRONOME_REQUIRE_ALL=1 (as in CI). When
// xmppjs/node_modules is missing it runs `npm ci` there once.
func requireXmppjs(t *testing.T) {
	t.Helper()
	xmppjsOnce.Do(func() { xmppjsErr = setupXmppjs() })
	if xmppjsErr != nil {
		if os.Getenv("METRONOME_REQUIRE_ALL") == "1" {
			t.Fatal(xmppjsErr)
		}
		t.Skip(xmppjsErr)
	}
}

func setupXmppjs() error {
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("xmpp.js tests need node (apt install nodejs npm): %v", err)
	}
	// @xmpp/client 0.14 declares node >= 20.10 (it uses globalThis.crypto,
	// for one); Debian 12's nodejs is 18.
	out, err := exec.Command(node, "-p", "process.versions.node").Output()
	if err != nil {
		return fmt.Errorf("xmpp.js tests: %s -p process.versions.node: %v", node, err)
	}
	v := strings.TrimSpace(string(out))
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil || major < 20 || major == 20 && minor < 10 {
		return fmt.Errorf("xmpp.js tests need node >= 20.10 (@xmpp/client 0.14), %s is %q", node, v)
	}
	if major < 22 {
		// A global WebSocket (websocket.js) is behind a flag before node 22.
		xmppjsEnv = append(xmppjsEnv, "NODE_OPTIONS=--experimental-websocket")
	}
	dir, err := filepath.Abs("xmppjs")
	if err != nil {
		return err
	}
	xmppjsNode, xmppjsDir = node, dir
	client := filepath.Join(dir, "node_modules", "@xmpp", "client", "package.json")
	if _, err := os.Stat(client); err == nil {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("xmpp.js tests: %s is missing and there is no npm to install it (apt install npm): %v", client, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("xmpp.js tests: `npm ci --no-audit --no-fund` in %s: %v\n%s", dir, err, out)
	}
	if _, err := os.Stat(client); err != nil {
		return fmt.Errorf("xmpp.js tests: no @xmpp/client after `npm ci` in %s: %v", dir, err)
	}
	return nil
}

// runXmppjs runs xmppjs/NAME.js against s with the connection arguments and
// args, and returns its stdout lines. The test fails unless the script
// printed PASS last and exited with status 0; the failure shows the
// script's stderr (every element each client sent and received).
func (s *server) runXmppjs(t *testing.T, name string, args ...string) []string {
	t.Helper()
	requireXmppjs(t)
	stderr, err := os.CreateTemp(s.dir, "xmppjs-"+name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	// Scripts bound themselves to 20s; this is the backstop.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{filepath.Join(xmppjsDir, name+".js"), "--host", "127.0.0.1", "--domain", s.Domain,
		"--port", fmt.Sprint(s.C2S), "--tls-port", fmt.Sprint(s.C2STLS)}, args...)
	cmd := exec.CommandContext(ctx, xmppjsNode, full...)
	cmd.Dir = xmppjsDir
	cmd.Stderr = stderr
	// The server's certificate is self-signed.
	cmd.Env = append(append(os.Environ(), "NODE_TLS_REJECT_UNAUTHORIZED=0"), xmppjsEnv...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	r := bufio.NewScanner(out)
	for r.Scan() {
		t.Logf("%s.js: %s", name, r.Text())
		lines = append(lines, r.Text())
	}
	err = cmd.Wait()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("killed after 60s: %v", err)
	}
	if err != nil || len(lines) == 0 || lines[len(lines)-1] != "PASS" {
		log, _ := os.ReadFile(stderr.Name())
		t.Fatalf("%s.js: no PASS (exit: %v)\nclient log:\n%s", name, err, log)
	}
	return lines
}

// TestXmppjsLogin: xmpp.js logs in with SCRAM-SHA-256 (and checks the
// server's signature) over STARTTLS and over direct TLS, gets the roster
// and sees its initial presence come back.
func TestXmppjsLogin(t *testing.T) {
	t.Parallel()
	requireXmppjs(t)
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
			l := line(t, out, "OK login")
			if j := field(l, "jid"); !strings.HasPrefix(j, jid+"/") {
				t.Errorf("bound JID %q, want a resource of %s", j, jid)
			}
			if m := field(l, "mech"); m != "SCRAM-SHA-256" {
				t.Errorf("mechanism %q, want SCRAM-SHA-256", m)
			}
			if v := field(l, "tls"); v != tc.tls {
				t.Errorf("tls %q, want %q", v, tc.tls)
			}
			if v := field(l, "protocol"); !strings.HasPrefix(v, "TLSv1.") {
				t.Errorf("TLS protocol %q", v)
			}
			line(t, out, "OK roster items=0")
			if l := line(t, out, "OK presence-echo"); !strings.HasPrefix(field(l, "from"), jid+"/") {
				t.Errorf("own presence came back as %q", l)
			}
			line(t, out, "OK logout")
		})
	}
	s.stop()
}

// TestXmppjsRosterChat: roster add, the subscription handshake both ways,
// presence both ways, a chat message each way and unavailable presence,
// between an xmpp.js client on STARTTLS and one on direct TLS.
func TestXmppjsRosterChat(t *testing.T) {
	t.Parallel()
	requireXmppjs(t)
	s := startServer(t, serverConfig{})
	s.addUser("romeo", password)
	s.addUser("juliet", password)
	out := s.runXmppjs(t, "roster", "--user1", "romeo", "--user2", "juliet", "--password", password)
	line(t, out, "OK romeo roster-push jid=juliet@localhost subscription=none ask=subscribe")
	line(t, out, "OK juliet subscribe-request from=romeo@localhost")
	line(t, out, "OK romeo presence from=juliet@localhost/")
	line(t, out, "OK juliet presence from=romeo@localhost/")
	line(t, out, "OK rosters-both")
	line(t, out, "OK juliet got from=romeo@localhost/")
	line(t, out, "OK romeo got from=juliet@localhost/")
	line(t, out, "OK romeo unavailable from=juliet@localhost/")
	s.stop()
}

// TestXmppjsOffline: messages sent while the recipient is offline arrive,
// in order and with a XEP-0203 delay, at her next login, and only once.
func TestXmppjsOffline(t *testing.T) {
	t.Parallel()
	requireXmppjs(t)
	s := startServer(t, serverConfig{})
	s.addUser("romeo", password)
	s.addUser("juliet", password)
	out := s.runXmppjs(t, "offline", "--user1", "romeo", "--user2", "juliet", "--password", password)
	if l := line(t, out, "OK offline count=3 in-order"); field(l, "delay-from") != s.Domain {
		t.Errorf("offline delivery: %s", l)
	}
	line(t, out, "OK no-redelivery")
	s.stop()
}

// TestXmppjsWebSocket: xmpp.js logs in over ws:// (RFC 7395, the websocket
// module on a plain loopback HTTP listener) with SCRAM-SHA-256 and
// exchanges a chat message each way with a client on STARTTLS.
func TestXmppjsWebSocket(t *testing.T) {
	t.Parallel()
	requireXmppjs(t)
	port := testbin.FreePorts(t, 1)[0]
	s := startServer(t, serverConfig{
		Modules: append(append([]string{}, defaultModules...), "websocket"),
		Extra:   fmt.Sprintf("[http]\nlisten = [\"127.0.0.1:%d\"]\n", port),
	})
	s.addUser("romeo", password)
	s.addUser("juliet", password)
	out := s.runXmppjs(t, "websocket", "--ws-url", fmt.Sprintf("ws://127.0.0.1:%d/xmpp-websocket", port),
		"--user1", "romeo", "--user2", "juliet", "--password", password)
	if l := line(t, out, "OK login"); !strings.HasPrefix(field(l, "ws"), "romeo@localhost/") || field(l, "mech") != "SCRAM-SHA-256" {
		t.Errorf("login: %s", l)
	}
	line(t, out, "OK juliet got from=romeo@localhost/")
	line(t, out, "OK romeo got from=juliet@localhost/")
	line(t, out, "OK logout")
	s.stop()
}
