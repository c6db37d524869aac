// Package browser runs a real web client, Converse.js, in a real browser,
// headless Chromium, against the built metronome daemon (STYLE.md §8).
//
// The page (index.html) loads Converse.js from node_modules and is served by
// a net/http server on loopback; the driver (converse.mjs) uses
// playwright-core with the system's /usr/bin/chromium, never a downloaded
// browser. Converse logs in as romeo over WebSocket (RFC 7395) or BOSH
// (XEP-0124/0206), shows juliet in the roster, sends her a message and shows
// her reply. Juliet is a Go client over TCP (internal/xmpptest), which also
// sets up the mutual subscription beforehand, since metronomectl has no
// roster commands.
//
// The tests do not cover Converse's login form (the page logs in with
// auto_login), registration, MUC, OMEMO or reconnection.
package browser

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/testbin"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

const (
	password = "secret"
	chromium = "/usr/bin/chromium"
	// driverTimeout bounds converse.mjs (it stops itself at this limit);
	// the test kills it a little later.
	driverTimeout = 60 * time.Second
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// TestConverseWebSocket: Converse.js logs in over ws:// with the websocket
// module, shows the roster with juliet online, sends her a message and
// shows her reply.
func TestConverseWebSocket(t *testing.T) {
	converseOver(t, "websocket", "/xmpp-websocket", "urn:xmpp:alt-connections:websocket")
}

// TestConverseBOSH is TestConverseWebSocket over BOSH (the bosh module at
// /http-bind).
func TestConverseBOSH(t *testing.T) {
	converseOver(t, "bosh", "/http-bind", "urn:xmpp:alt-connections:xbosh")
}

// converseOver runs Converse.js against the module (websocket or bosh)
// serving path on a plain loopback HTTP listener, with the page on
// another origin that allowed_origins lets in; host-meta publishes the
// public URL (<module>_url), which the test checks a page from that origin
// could discover under the link relation rel.
func converseOver(t *testing.T, module, path, rel string) {
	requireBrowser(t)
	page := servePage(t)
	port := testbin.FreePorts(t, 1)[0]
	scheme, public := "http", "https://localhost"+path
	if module == "websocket" {
		scheme, public = "ws", "wss://localhost"+path
	}
	s := startServer(t, fmt.Sprintf(`[http]
listen = ["127.0.0.1:%d"]

[modules.%s]
allowed_origins = [%q]

[modules.hostmeta]
%s_url = %q
`, port, module, page.origin, module, public), module, "hostmeta")
	url := fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, path)
	out := s.runConverse(t, page, "--"+module+"-url", url)
	if l := testbin.Line(t, out, "OK login"); !strings.HasPrefix(testbin.Field(l, "jid"), "romeo@localhost/") || testbin.Field(l, "service") != url {
		t.Errorf("login: %s", l)
	}
	// The page is told the endpoint (discover_connection_methods is off:
	// host-meta must be fetched over https from the XMPP domain); check
	// at least that host-meta on the same listener would let it discover
	// the public URL from another origin (XEP-0156 §3.1.1).
	checkHostMeta(t, port, page.origin, rel, public)
	s.Stop()
}

// checkHostMeta fetches host-meta.json for localhost from the [http]
// listener on port as a page of origin would, and checks that it links rel
// to href and may be read cross-origin.
func checkHostMeta(t *testing.T, port int, origin, rel, href string) {
	t.Helper()
	req, err := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/.well-known/host-meta.json", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "localhost"
	req.Header.Set("Origin", origin)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("host-meta.json: %v", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Links []struct{ Rel, Href string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("host-meta.json: %s, %v", resp.Status, err)
	}
	if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "*" {
		t.Errorf("host-meta.json: Access-Control-Allow-Origin %q, want *", v)
	}
	for _, l := range doc.Links {
		if l.Rel == rel && l.Href == href {
			return
		}
	}
	t.Errorf("host-meta.json has no link %s to %s: %+v", rel, href, doc.Links)
}

// --- requirements ----------------------------------------------------

var (
	browserOnce sync.Once
	nodeBin     string // path of node
	pageDir     string // absolute path of this directory
	browserErr  error
)

// requireBrowser skips the test when node, Chromium or the npm packages are
// missing, or fails it when METRONOME_REQUIRE_ALL=1 (as in CI). When
// node_modules is missing it runs `npm ci` here once.
func requireBrowser(t *testing.T) {
	t.Helper()
	browserOnce.Do(func() { browserErr = setupBrowser() })
	if browserErr != nil {
		if os.Getenv("METRONOME_REQUIRE_ALL") == "1" {
			t.Fatal(browserErr)
		}
		t.Skip(browserErr)
	}
}

func setupBrowser() error {
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("browser tests need node (apt install nodejs npm): %v", err)
	}
	out, err := exec.Command(node, "-p", "process.versions.node").Output()
	if err != nil {
		return fmt.Errorf("browser tests: %s -p process.versions.node: %v", node, err)
	}
	v := strings.TrimSpace(string(out))
	var major int
	if _, err := fmt.Sscanf(v, "%d.", &major); err != nil || major < 20 {
		return fmt.Errorf("browser tests need node >= 20 (playwright-core), %s is %q", node, v)
	}
	if _, err := os.Stat(chromium); err != nil {
		return fmt.Errorf("browser tests need Chromium at %s (apt install chromium chromium-driver): %v", chromium, err)
	}
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	nodeBin, pageDir = node, dir
	need := []string{
		filepath.Join(dir, "node_modules", "converse.js", "dist", "converse.min.js"),
		filepath.Join(dir, "node_modules", "playwright-core", "package.json"),
	}
	missing := func() error {
		for _, p := range need {
			if _, err := os.Stat(p); err != nil {
				return err
			}
		}
		return nil
	}
	if missing() == nil {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("browser tests: %v, and there is no npm to install it (apt install npm): %v", missing(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	// playwright-core downloads nothing, but be explicit: the tests use
	// the system's Chromium.
	cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("browser tests: `npm ci --no-audit --no-fund` in %s: %v\n%s", dir, err, out)
	}
	if err := missing(); err != nil {
		return fmt.Errorf("browser tests: after `npm ci` in %s: %v", dir, err)
	}
	return nil
}

// --- the test page ---------------------------------------------------

// page is the loopback HTTP server of index.html and Converse's files.
type page struct {
	url    string // of index.html
	origin string // scheme://host:port, for allowed_origins
}

// servePage serves index.html at / and node_modules/converse.js/dist/
// (Converse loads its chunks, locales and emoji from there: assets_path),
// and nothing else, until the end of the test.
func servePage(t *testing.T) page {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(pageDir, "index.html"))
	})
	const dist = "/node_modules/converse.js/dist/"
	mux.Handle("GET "+dist, http.StripPrefix(dist, http.FileServer(http.Dir(filepath.Join(pageDir, filepath.FromSlash(dist))))))
	srv := httptest.NewUnstartedServer(mux)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return page{url: srv.URL + "/", origin: srv.URL}
}

// --- the daemon --------------------------------------------------------

// server is one metronome daemon started by a test (a copy of the parts of
// test/integration's harness that these tests need).
// server is the daemon a test runs (testbin.Daemon), with its STARTTLS
// port.
type server struct {
	*testbin.Daemon
	c2s int
}

var baseModules = []string{"roster", "presence", "message", "offline", "disco", "ping", "vcard", "private", "blocking", "carbons", "mam"}

// startServer starts a daemon with baseModules, more and extra (TOML
// appended verbatim), waits until `metronomectl status` answers, and
// creates romeo and juliet. It is stopped at the end of the test.
func startServer(t *testing.T, extra string, more ...string) *server {
	t.Helper()
	d := testbin.NewDaemon(t, "metronome-browser-")
	ports := testbin.FreePorts(t, 2)
	s := &server{Daemon: d, c2s: ports[0]}
	mods := append(append([]string{}, baseModules...), more...)
	for i, m := range mods {
		mods[i] = fmt.Sprintf("%q", m)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\ndata_dir = %q\nlog_level = \"debug\"\n\n", filepath.Join(d.Dir, "data"))
	fmt.Fprintf(&b, "[listen]\nc2s = [\"127.0.0.1:%d\"]\nc2s_tls = [\"127.0.0.1:%d\"]\n\n", ports[0], ports[1])
	fmt.Fprintf(&b, "[modules]\nenabled = [%s]\n\n%s\n", strings.Join(mods, ", "), extra)
	if err := os.WriteFile(d.ConfigPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Start()
	for _, u := range []string{"romeo", "juliet"} {
		d.AddUser(u+"@localhost", password)
	}
	return s
}

// --- juliet, a Go client -------------------------------------------------

// subscribe gives romeo and juliet a mutual presence subscription (RFC 6121
// §3), with juliet named "Juliet" in romeo's roster, using two Go clients
// over TCP. Romeo's client logs out afterwards; juliet's stays online and
// is returned.
func (s *server) subscribe(t *testing.T) *xmpptest.Client {
	t.Helper()
	srv := &xmpptest.Server{C2SAddr: fmt.Sprintf("127.0.0.1:%d", s.c2s)}
	romeo := srv.Login(t, "romeo@localhost/setup", password)
	juliet := srv.Login(t, "juliet@localhost/go", password)

	romeo.Send(t, `<iq type="set" id="add1"><query xmlns="jabber:iq:roster"><item jid="juliet@localhost" name="Juliet"/></query></iq>`)
	waitFor(t, romeo, "roster add result", func(el *stanza.Element) bool {
		return el.Name == "iq" && el.Attr("id") == "add1" && el.Type() == "result"
	})
	romeo.Send(t, `<presence/>`)
	juliet.Send(t, `<presence/>`)
	romeo.Send(t, `<presence to="juliet@localhost" type="subscribe"/>`)
	waitFor(t, juliet, "subscribe from romeo", isPresence("subscribe", "romeo@localhost"))
	juliet.Send(t, `<presence to="romeo@localhost" type="subscribed"/>`)
	juliet.Send(t, `<presence to="romeo@localhost" type="subscribe"/>`)
	waitFor(t, romeo, "subscribe from juliet", isPresence("subscribe", "juliet@localhost"))
	romeo.Send(t, `<presence to="juliet@localhost" type="subscribed"/>`)
	for _, c := range []struct {
		cl   *xmpptest.Client
		peer string
	}{{romeo, "juliet@localhost"}, {juliet, "romeo@localhost"}} {
		deadline := time.Now().Add(10 * time.Second)
		for sub := ""; sub != "both"; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: subscription to %s is %q, want both", c.cl.JID, c.peer, sub)
			}
			c.cl.Send(t, `<iq type="get" id="get1"><query xmlns="jabber:iq:roster"/></iq>`)
			el := waitFor(t, c.cl, "roster result", func(el *stanza.Element) bool { return el.Name == "iq" && el.Attr("id") == "get1" })
			sub = ""
			if q := el.Child("jabber:iq:roster", "query"); q != nil {
				for item := range q.Elements {
					if item.Attr("jid") == c.peer {
						sub = item.Attr("subscription")
					}
				}
			}
		}
	}
	romeo.Close()
	return juliet
}

func isPresence(typ, from string) func(*stanza.Element) bool {
	return func(el *stanza.Element) bool {
		return el.Name == "presence" && el.Type() == typ && strings.HasPrefix(el.Attr("from"), from)
	}
}

// waitFor reads c's stanzas until match returns true, for at most 10s.
func waitFor(t *testing.T, c *xmpptest.Client, what string, match func(*stanza.Element) bool) *stanza.Element {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		el, err := c.RecvTimeout(time.Until(deadline))
		if err != nil {
			t.Fatalf("%s: waiting for %s: %v", c.JID, what, err)
		}
		if match(el) {
			return el
		}
	}
}

// answer makes juliet reply with reply to the first chat message from romeo
// whose body is body. It reports (once) whether romeo's browser session
// showed up as available and the message arrived, then keeps draining
// juliet's stanzas until ctx ends.
func answer(ctx context.Context, juliet *xmpptest.Client, body, reply string) <-chan string {
	events := make(chan string, 8)
	go func() {
		defer close(events)
		replied := false
		for ctx.Err() == nil {
			el, err := juliet.RecvTimeout(200 * time.Millisecond)
			if err != nil {
				if strings.HasPrefix(err.Error(), "stream ended") {
					return
				}
				continue
			}
			from := el.Attr("from")
			switch {
			case el.Name == "presence" && el.Type() == "" && strings.HasPrefix(from, "romeo@localhost/"):
				events <- "presence from=" + from
			case el.Name == "message" && strings.HasPrefix(from, "romeo@localhost/") && el.ChildText(stanza.NSClient, "body") == body && !replied:
				replied = true
				events <- fmt.Sprintf("message from=%s type=%s", from, el.Type())
				var b []byte
				b = append(b, `<message type="chat" to="`...)
				b = stanza.AppendEscaped(b, from, true)
				b = append(b, `"><body>`...)
				b = stanza.AppendEscaped(b, reply, false)
				b = append(b, `</body></message>`...)
				_ = juliet.RawConn().SetWriteDeadline(time.Now().Add(xmpptest.Timeout))
				_, _ = juliet.RawConn().Write(b)
			}
		}
	}()
	return events
}

// --- the driver ------------------------------------------------------------

// runConverse sets up romeo and juliet, runs converse.mjs as romeo with
// args (the transport's URL) against p, with juliet answering from Go, and
// returns the driver's stdout lines. The test fails unless the driver
// printed PASS last and exited with status 0; the failure shows the
// driver's log (browser console, every frame) and the screenshot's path.
func (s *server) runConverse(t *testing.T, p page, args ...string) []string {
	t.Helper()
	juliet := s.subscribe(t)
	nonce := time.Now().Format("150405.000")
	msg, reply := "Wherefore art thou "+nonce, "Here, "+nonce

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := answer(ctx, juliet, msg, reply)

	// Not t.TempDir(): the screenshot and the driver's log must outlive a
	// failed test.
	keep, err := os.MkdirTemp("", "metronome-browser-"+strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(keep)
		}
	})
	shot := filepath.Join(keep, "failure.png")
	stderr, err := os.Create(filepath.Join(keep, "converse.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	full := append([]string{filepath.Join(pageDir, "converse.mjs"),
		"--page", p.url, "--jid", "romeo@localhost", "--password", password,
		"--peer", "juliet@localhost", "--message", msg, "--reply", reply,
		"--screenshot", shot, "--chromium", chromium,
		"--timeout", fmt.Sprint(int(driverTimeout.Seconds()))}, args...)
	cmd := exec.Command(nodeBin, full...)
	cmd.Dir = pageDir
	cmd.Stderr = stderr
	// Put node and the browser it starts in a process group of their
	// own, so that at the deadline we kill exactly them.
	cmd.SysProcAttr = newProcessGroup()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := make(chan struct{})
	timer := time.AfterFunc(driverTimeout+15*time.Second, func() {
		close(killed)
		killGroup(cmd.Process.Pid)
	})
	var lines []string
	r := bufio.NewScanner(out)
	for r.Scan() {
		t.Logf("converse.mjs: %s", r.Text())
		lines = append(lines, r.Text())
	}
	err = cmd.Wait()
	timer.Stop()
	select {
	case <-killed:
		err = fmt.Errorf("killed after %v: %v", driverTimeout+15*time.Second, err)
	default:
	}
	t.Logf("converse.mjs ran for %v", time.Since(start).Round(time.Millisecond))
	cancel()
	var got []string
	for e := range events {
		got = append(got, e)
	}
	if err != nil || len(lines) == 0 || lines[len(lines)-1] != "PASS" {
		log, _ := os.ReadFile(stderr.Name())
		where := "no screenshot; driver log: " + stderr.Name()
		if _, err := os.Stat(shot); err == nil {
			where = "screenshot: " + shot + "; driver log: " + stderr.Name()
		}
		t.Fatalf("converse.mjs: no PASS (exit: %v); %s\njuliet saw: %q\ndriver log:\n%s", err, where, got, log)
	}
	testbin.Line(t, lines, "OK roster contact=juliet@localhost name=Juliet")
	testbin.Line(t, lines, "OK roster online=juliet@localhost")
	testbin.Line(t, lines, "OK chat open with=juliet@localhost")
	testbin.Line(t, lines, "OK sent")
	testbin.Line(t, lines, "OK received from=juliet@localhost")
	testbin.Line(t, lines, "OK logout")
	if !hasPrefix(got, "presence from=romeo@localhost/") {
		t.Errorf("juliet did not see romeo's browser session come online: %q", got)
	}
	if !hasPrefix(got, "message from=romeo@localhost/") {
		t.Errorf("juliet did not get the message from the browser: %q", got)
	} else if l := got[testbin.Index(got, "message from=")]; testbin.Field(l, "type") != "chat" {
		t.Errorf("juliet got %s, want type=chat", l)
	}
	juliet.Close()
	return lines
}

func hasPrefix(lines []string, prefix string) bool { return testbin.Index(lines, prefix) >= 0 }
