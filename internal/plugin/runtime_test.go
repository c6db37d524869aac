package plugin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/config"
	"github.com/metronome-xmpp/metronome/internal/plugin"
	"github.com/metronome-xmpp/metronome/internal/plugin/plugintest"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/standard"
)

func TestMain(m *testing.M) {
	code := m.Run()
	plugintest.Cleanup()
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

var (
	sharedOnce sync.Mutex
	sharedDir  string // plugin directory with probe installed; its cache is shared
	probeWasm  []byte
	probeToml  []byte
)

// probeDir installs the probe plugin once per test binary run and returns
// the plugin directory; tests share its compilation cache.
func probeDir(t *testing.T) string {
	t.Helper()
	sharedOnce.Lock()
	defer sharedOnce.Unlock()
	if sharedDir != "" {
		return sharedDir
	}
	wasmPath := plugintest.Build(t, "internal/plugin/testdata/probe")
	var err error
	if probeWasm, err = os.ReadFile(wasmPath); err != nil {
		t.Fatal(err)
	}
	if probeToml, err = os.ReadFile(filepath.Join("testdata", "probe", plugin.ManifestFile)); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "metronome-plugin-test-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plugin.InstallLocal(dir, probeToml, probeWasm, "testdata", "", false); err != nil {
		t.Fatal(err)
	}
	sharedDir = dir
	return dir
}

// settings are the [plugins] settings of the tests, on dir.
func settings(dir string) config.Plugins {
	s := config.Default().Plugins
	s.Directory = dir
	s.CallTimeout = 2 * time.Second // generous: -race slows the host side
	return s
}

// probeServer starts a server with the probe plugin enabled and options
// (TOML lines of [modules.probe]).
func probeServer(t *testing.T, s config.Plugins, options string, modules ...string) *xmpptest.Server {
	t.Helper()
	if _, err := plugin.Activate(s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plugin.Deactivate)
	mods := append([]string{"message", "disco", "probe"}, modules...)
	srv := xmpptest.NewServer(t, xmpptest.Modules(mods...), xmpptest.Config("[modules.probe]\n"+options))
	srv.CreateUser(t, "romeo@localhost", "pw")
	srv.CreateUser(t, "juliet@localhost", "pw")
	return srv
}

func TestProbeIQDiscoStore(t *testing.T) {
	srv := probeServer(t, settings(probeDir(t)), `greeting = "good morrow"`)
	c := srv.Login(t, "romeo@localhost/a", "pw")
	c.Send(t, `<iq type="get" id="q1" to="localhost"><query xmlns="urn:metronome:probe"/></iq>`)
	c.Expect(t, `<iq type="result" id="q1" from="localhost"><query xmlns="urn:metronome:probe">good morrow localhost</query></iq>`)

	c.Send(t, `<iq type="get" id="d1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if r := c.Recv(t); !strings.Contains(r.String(), `var="urn:metronome:probe"`) {
		t.Fatalf("disco#info lacks the plugin's feature: %s", r)
	}

	c.Send(t, `<iq type="set" id="s1" to="localhost"><store xmlns="urn:metronome:probe" store="data">kept</store></iq>`)
	c.Expect(t, `<iq type="result" id="s1"><store xmlns="urn:metronome:probe">kept</store></iq>`)
	// A store the manifest does not declare is refused.
	c.Send(t, `<iq type="set" id="s2" to="localhost"><store xmlns="urn:metronome:probe" store="other">x</store></iq>`)
	r := c.Recv(t)
	if r.Type() != "error" || !strings.Contains(r.String(), "not permitted by the plugin") {
		t.Fatalf("undeclared store: %s", r)
	}
}

func TestProbeMessageHook(t *testing.T) {
	srv := probeServer(t, settings(probeDir(t)), "", "presence")
	romeo := srv.Login(t, "romeo@localhost/a", "pw")
	juliet := srv.Login(t, "juliet@localhost/b", "pw")
	juliet.Send(t, `<presence/>`)
	juliet.Expect(t, `<presence from="juliet@localhost/b"/>`)
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m1"><body>please shout</body></message>`)
	juliet.Expect(t, `<message id="m1" type="chat"><body>PLEASE SHOUT</body></message>`)
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m2"><body>a forbidden word</body></message>`)
	romeo.Expect(t, `<message type="error" id="m2"><error type="modify"><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">probe says no</text></error></message>`)
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m3"><body>plain</body></message>`)
	juliet.Expect(t, `<message id="m3"><body>plain</body></message>`)
}

func TestProbeHTTP(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "from the web")
	}))
	defer web.Close()
	srv := probeServer(t, settings(probeDir(t)), "")
	c := srv.Login(t, "romeo@localhost/a", "pw")
	c.Send(t, fmt.Sprintf(`<iq type="get" id="h1" to="localhost"><fetch xmlns="urn:metronome:probe" url="%s/x"/></iq>`, web.URL))
	c.Expect(t, `<iq type="result" id="h1"><fetch xmlns="urn:metronome:probe">from the web</fetch></iq>`)
	// localhost is not 127.0.0.1: not in the manifest.
	other := strings.Replace(web.URL, "127.0.0.1", "localhost", 1)
	c.Send(t, fmt.Sprintf(`<iq type="get" id="h2" to="localhost"><fetch xmlns="urn:metronome:probe" url="%s/x"/></iq>`, other))
	if r := c.Recv(t); r.Type() != "error" || !strings.Contains(r.String(), "not permitted") {
		t.Fatalf("undeclared HTTP host: %s", r)
	}
}

// status returns the probe's pool status on localhost.
func status(t *testing.T) plugin.PoolStatus {
	t.Helper()
	for _, s := range plugin.Statuses() {
		if s.Plugin == "probe" && s.Host == "localhost" {
			return s
		}
	}
	t.Fatal("probe is not running")
	return plugin.PoolStatus{}
}

// misbehave runs the query that makes the probe fail in mode, twice, and
// checks the plugin is disabled while the server keeps answering.
func misbehave(t *testing.T, s config.Plugins, mode string) {
	s.MaxFailures = 2
	srv := probeServer(t, s, fmt.Sprintf("mode = %q", mode), "ping")
	c := srv.Login(t, "romeo@localhost/a", "pw")
	for i := range 3 {
		c.Send(t, fmt.Sprintf(`<iq type="get" id="q%d" to="localhost"><query xmlns="urn:metronome:probe"/></iq>`, i))
		// The failed call lets the event continue: nobody else answers.
		c.Expect(t, fmt.Sprintf(`<iq type="error" id="q%d"><error><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`, i))
	}
	st := status(t)
	if !st.Disabled || st.Failures != 2 {
		t.Fatalf("after 3 failing calls: %+v, want disabled after 2 failures", st)
	}
	c.Send(t, `<iq type="get" id="p1" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	c.Expect(t, `<iq type="result" id="p1"/>`)
}

func TestRefuseTimeLimit(t *testing.T) {
	s := settings(probeDir(t))
	s.CallTimeout = 200 * time.Millisecond
	misbehave(t, s, "loop")
}

func TestRefuseMemoryLimit(t *testing.T) {
	s := settings(probeDir(t))
	s.MemoryLimit = 32 << 20
	misbehave(t, s, "hog")
}

func TestRefusePanic(t *testing.T) {
	misbehave(t, settings(probeDir(t)), "panic")
}

func TestCheckRefusals(t *testing.T) {
	dir := probeDir(t)
	e, err := plugin.NewEngine(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := plugin.ParseManifest(probeToml)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rep, err := plugin.Check(ctx, e, settings(dir), m, probeWasm, "localhost", []byte(`{}`))
	if err != nil {
		t.Fatalf("check of a good plugin: %v", err)
	}
	if len(rep.Hooks) != 8 || len(rep.Features) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	for _, tc := range []struct {
		name, options, want string
		memory              int64
	}{
		{"undeclared capability", `{"mode":"undeclared"}`, `hooks event "message/full", which its manifest does not declare`, 0},
		{"init error", `{"mode":"badinit"}`, "init failed: refusing to start", 0},
		{"unknown option", `{"colour":"red"}`, `unknown option "colour"`, 0},
		{"wrong type", `{"mode":3}`, `option "mode": expected string`, 0},
		{"memory", `{}`, "over the 1 MiB limit", 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := settings(dir)
			if tc.memory != 0 {
				s.MemoryLimit = tc.memory
			}
			_, err := plugin.Check(ctx, e, s, m, probeWasm, "localhost", []byte(tc.options))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Not a module built with the SDK.
	if _, err := plugin.Check(ctx, e, settings(dir), m, []byte("\x00asm\x01\x00\x00\x00"), "localhost", nil); err == nil ||
		!strings.Contains(err.Error(), "does not export") {
		t.Fatalf("empty module: %v", err)
	}
}
