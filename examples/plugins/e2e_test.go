package plugins_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/plugin/plugintest"
	"github.com/metronome-xmpp/metronome/internal/testbin"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	plugintest.Cleanup()
	testbin.Cleanup()
	os.Exit(code)
}

// env is one test's directory, daemon and repository.
type env struct {
	t       *testing.T
	ctlBin  string
	dir     string
	cfgPath string
	logPath string
	base    string // configuration without the module options the test adds
	c2s     string // client address
}

// ctl runs metronomectl and returns its combined output.
func (e *env) ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.ctlBin, append([]string{"--config", e.cfgPath}, args...)...)
	cmd.Dir = e.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustCtl runs metronomectl, fails the test on error, and checks that the
// output contains every want.
func (e *env) mustCtl(want []string, args ...string) string {
	e.t.Helper()
	out, err := e.ctl(args...)
	if err != nil {
		e.t.Fatalf("metronomectl %s: %v\n%s\n--- daemon log:\n%s", strings.Join(args, " "), err, out, e.logTail())
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			e.t.Fatalf("metronomectl %s: output lacks %q:\n%s", strings.Join(args, " "), w, out)
		}
	}
	return out
}

func (e *env) logTail() string {
	b, _ := os.ReadFile(e.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

// writeConfig writes the base configuration followed by extra.
func (e *env) writeConfig(extra string) {
	e.t.Helper()
	if err := os.WriteFile(e.cfgPath, []byte(e.base+extra), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// login connects a client over STARTTLS and sends initial presence.
func (e *env) login(full, password string) *xmpptest.Client {
	e.t.Helper()
	srv := &xmpptest.Server{C2SAddr: e.c2s}
	c := srv.Login(e.t, full, password)
	c.Send(e.t, `<presence/>`)
	return c
}

// expectBody waits for a message and checks its body.
func expectBody(t *testing.T, c *xmpptest.Client, want string) {
	t.Helper()
	for {
		el := c.Recv(t)
		if el.Name != "message" {
			continue // presence echoes and broadcasts
		}
		if got := el.ChildText("", "body"); got != want {
			t.Fatalf("%s received body %q, want %q:\n%s", c.JID, got, want, el)
		}
		return
	}
}

// expectNoMessage fails if a message arrives before a ping round trip
// completes (the server processes a session's stanzas in order, and
// plugins run before the answer).
func expectNoMessage(t *testing.T, c *xmpptest.Client, id string) {
	t.Helper()
	c.Send(t, fmt.Sprintf(`<iq type="get" id="%s" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`, id))
	for {
		el := c.Recv(t)
		switch {
		case el.Name == "message":
			t.Fatalf("%s received an unexpected message: %s", c.JID, el)
		case el.Name == "iq" && el.ID() == id:
			return
		}
	}
}

// TestPluginLifecycle builds the example plugins, builds, signs and serves
// a repository with `metronomectl repo`, and installs, configures, updates,
// rolls back, disables and removes plugins with `metronomectl plugin`
// against a running server, checking each behaviour over XMPP. One client
// stays connected throughout: no reload may drop it.
func TestPluginLifecycle(t *testing.T) {
	root := plugintest.ModuleRoot(t)
	// Built first: skips (or fails with METRONOME_REQUIRE_ALL=1) without a
	// wasip1-capable toolchain.
	motdWasm := plugintest.Build(t, "examples/plugins/motd")
	daemon, ctlBin := testbin.Binaries(t)

	dir, err := os.MkdirTemp("", "metronome-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{t: t, ctlBin: ctlBin, dir: dir, cfgPath: filepath.Join(dir, "metronome.toml"),
		logPath: filepath.Join(dir, "metronome.log")}

	// The repository: three plugins from source, and motd 1.1.0 from the
	// built module with a new manifest (another default message).
	repo := filepath.Join(dir, "repo")
	out := e.mustCtl([]string{"created repository", "trusted_keys"}, "repo", "init", repo)
	pub := regexp.MustCompile(`ed25519:[A-Za-z0-9+/=]+`).FindString(out)
	for p, v := range map[string]string{"motd": "1.0.0", "wordfilter": "1.1.0", "welcome": "1.0.0"} {
		e.mustCtl([]string{"added " + p + " " + v}, "repo", "add", repo, filepath.Join(root, "examples", "plugins", p))
	}
	m11, err := os.ReadFile(filepath.Join(root, "examples", "plugins", "motd", "plugin.toml"))
	if err != nil {
		t.Fatal(err)
	}
	m11 = bytes.Replace(m11, []byte(`version = "1.0.0"`), []byte(`version = "1.1.0"`), 1)
	m11 = bytes.Replace(m11, []byte(`default = "Welcome to {host}."`), []byte(`default = "Welcome to {host}, now with version 1.1."`), 1)
	m11Path := filepath.Join(dir, "motd-1.1.0.toml")
	if err := os.WriteFile(m11Path, m11, 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustCtl([]string{"added motd 1.1.0"}, "repo", "add", repo, motdWasm, "--manifest", m11Path)
	e.mustCtl([]string{"3 plugins, 4 versions"}, "repo", "build", repo)
	e.mustCtl([]string{"signed 9 files"}, "repo", "sign", repo)

	// Serve it on loopback with `metronomectl repo serve`.
	serve := exec.Command(ctlBin, "repo", "serve", repo, "--listen", "127.0.0.1:0")
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("repo serve: %v", err)
	}
	url := regexp.MustCompile(`http://\S+`).FindString(line)
	if url == "" {
		t.Fatalf("repo serve printed %q", line)
	}

	ports := testbin.FreePorts(t, 2)
	e.c2s = fmt.Sprintf("127.0.0.1:%d", ports[0])
	e.base = fmt.Sprintf(`[server]
data_dir = %q
log_level = "debug"
[listen]
c2s = [%q]
c2s_tls = ["127.0.0.1:%d"]
[modules]
enabled = ["roster", "presence", "message", "offline", "disco", "ping"]
[plugins]
repositories = [%q]
trusted_keys = [%q]
`, filepath.Join(dir, "data"), e.c2s, ports[1], url, pub)
	e.writeConfig("")

	logf, err := os.Create(e.logPath)
	if err != nil {
		t.Fatal(err)
	}
	d := exec.Command(daemon, "--config", e.cfgPath)
	d.Dir, d.Stdout, d.Stderr = dir, logf, logf
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = d.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_, _ = e.ctl("stop")
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				_ = d.Process.Kill()
				<-exited
			}
		}
		if b, _ := os.ReadFile(e.logPath); bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			t.Errorf("the daemon reported a data race:\n%s", b)
		} else if t.Failed() {
			t.Logf("daemon log:\n%s", e.logTail())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := e.ctl("status"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not start:\n%s", e.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.mustCtl(nil, "user", "add", "romeo@localhost", "--password", "pw")
	e.mustCtl(nil, "user", "add", "juliet@localhost", "--password", "pw")

	// Romeo stays connected through every reload below.
	romeo := e.login("romeo@localhost/orchard", "pw")
	romeo.Expect(t, `<presence/>`)

	e.mustCtl([]string{"motd", "wordfilter", "welcome", "1.1.0"}, "plugin", "search")
	e.mustCtl([]string{"versions:     1.1.0, 1.0.0", "hooks:        presence/self", "stores:       seen"}, "plugin", "info", "motd")

	// motd@1.0.0: every login gets the message of the day.
	e.mustCtl([]string{"selected motd 1.0.0 (requested version", "verified motd 1.0.0", "checked motd in a sandbox",
		"reloaded the server", "enabled on every host"}, "plugin", "install", "motd@1.0.0")
	j1 := e.login("juliet@localhost/balcony", "pw")
	expectBody(t, j1, "Welcome to localhost.")
	j1.Close()

	// wordfilter: installed, then configured in the TOML file and reloaded.
	e.mustCtl([]string{"installed wordfilter 1.1.0"}, "plugin", "install", "wordfilter")
	e.writeConfig("[modules.wordfilter]\nwords = [\"darn\"]\ntypes = [\"groupchat\"]\n")
	e.mustCtl([]string{"reloaded"}, "reload")
	juliet := e.login("juliet@localhost/balcony", "pw")
	expectBody(t, juliet, "Welcome to localhost.")
	romeo.Send(t, `<message to="juliet@localhost/balcony" type="groupchat" id="g1"><body>Darn this feud</body></message>`)
	expectBody(t, juliet, "**** this feud")
	romeo.Send(t, `<message to="juliet@localhost/balcony" type="chat" id="c1"><body>darn, in private</body></message>`)
	expectBody(t, juliet, "darn, in private") // only groupchat is filtered

	// welcome: a new account finds the message at its first login.
	e.mustCtl([]string{"installed welcome 1.0.0"}, "plugin", "install", "welcome")
	e.mustCtl(nil, "user", "add", "mercutio@localhost", "--password", "pw")
	mercutio := e.login("mercutio@localhost/street", "pw")
	got := map[string]bool{}
	for len(got) < 2 {
		el := mercutio.Recv(t)
		if el.Name == "message" {
			got[el.ChildText("", "body")] = true
		}
	}
	if !got["Hello mercutio, welcome to localhost!"] || !got["Welcome to localhost."] {
		t.Fatalf("mercutio's messages: %v", got)
	}
	mercutio.Close()

	// list shows versions, hosts and the available update.
	out = e.mustCtl([]string{"NAME", "motd", "1.0.0", "localhost", "1.1.0", "wordfilter", "welcome"}, "plugin", "list")
	if !regexp.MustCompile(`motd\s+1\.0\.0\s+localhost\s+1\.1\.0`).MatchString(out) {
		t.Fatalf("plugin list does not offer motd 1.1.0:\n%s", out)
	}

	// update and rollback.
	e.mustCtl([]string{"updating motd 1.0.0 → 1.1.0", "kept motd 1.0.0 for `metronomectl plugin rollback motd`"}, "plugin", "update")
	j2 := e.login("juliet@localhost/tower", "pw")
	expectBody(t, j2, "Welcome to localhost, now with version 1.1.")
	j2.Close()
	e.mustCtl([]string{"rolling motd back from 1.1.0 to 1.0.0", "reloaded"}, "plugin", "rollback", "motd")
	j3 := e.login("juliet@localhost/tower", "pw")
	expectBody(t, j3, "Welcome to localhost.")
	j3.Close()

	// disable on the host: the behaviour disappears.
	e.mustCtl([]string{"enabled on every host except localhost"}, "plugin", "disable", "motd", "--host", "localhost")
	j4 := e.login("juliet@localhost/tower", "pw")
	expectNoMessage(t, j4, "n1")
	j4.Close()

	// remove wordfilter: refused while the configuration has its options.
	if out, err := e.ctl("plugin", "remove", "wordfilter"); err == nil || !strings.Contains(out, "remove them first") {
		t.Fatalf("remove with options in the configuration: %v\n%s", err, out)
	}
	e.writeConfig("")
	e.mustCtl([]string{"removed wordfilter"}, "plugin", "remove", "wordfilter")
	romeo.Send(t, `<message to="juliet@localhost/balcony" type="groupchat" id="g2"><body>Darn again</body></message>`)
	expectBody(t, juliet, "Darn again")
	if _, err := os.Stat(filepath.Join(dir, "data", "plugins", "wordfilter")); !os.IsNotExist(err) {
		t.Fatalf("wordfilter's files are still there: %v", err)
	}

	// The session opened before the first install is still the same one.
	romeo.Send(t, `<iq type="get" id="alive" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	for {
		if el := romeo.Recv(t); el.Name == "iq" && el.ID() == "alive" {
			break
		}
	}
	e.mustCtl([]string{"stopped"}, "stop")
}
