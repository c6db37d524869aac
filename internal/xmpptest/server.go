// Package xmpptest runs an in-process server on loopback for tests and
// drives it with a small real-socket client (STARTTLS, SCRAM-SHA-256,
// resource binding) and with golden conversation scripts in the style of
// Prosody's scansion (see script.go for the format).
package xmpptest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/app"
	"github.com/metronome-xmpp/metronome/internal/config"
	"github.com/metronome-xmpp/metronome/internal/core"
	"github.com/metronome-xmpp/metronome/internal/httpd"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/memory"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

type options struct {
	hashes  []string
	modules []string
	hosts   []string
	extra   string
	driver  storage.Driver
	http    *string // [http] lines; nil: no HTTP server
	comps   []component
}

type component struct {
	name, module, options string
	extensions            []string
}

// Option configures NewServer.
type Option func(*options)

// Modules sets the modules enabled on every host (default: none besides
// what the core itself does).
func Modules(names ...string) Option {
	return func(o *options) { o.modules = append(o.modules, names...) }
}

// Hosts sets the virtual hosts (default "localhost").
func Hosts(names ...string) Option { return func(o *options) { o.hosts = names } }

// Config appends TOML to the generated configuration (module options,
// [c2s] settings...). Sections it names must not repeat generated ones
// other than [modules.<name>] and [c2s].
func Config(toml string) Option { return func(o *options) { o.extra += "\n" + toml + "\n" } }

// Component adds a component host served by module (for instance
// Component("conference.localhost", "muc", `max_history = 5`)). toml is
// TOML put in the component's options table [component."<name>".<module>];
// it may be empty. extensions are more modules loaded on the component's
// host (modules = [...]).
func Component(name, module, toml string, extensions ...string) Option {
	return func(o *options) { o.comps = append(o.comps, component{name, module, toml, extensions}) }
}

// HTTP runs the HTTP server (internal/httpd) on an HTTPS and a plain
// listener on loopback; toml adds [http] keys (e.g. `api_tokens = [...]`).
func HTTP(toml string) Option { return func(o *options) { o.http = &toml } }

// SCRAMHashes sets [server] scram_hashes.
func SCRAMHashes(h ...string) Option { return func(o *options) { o.hashes = h } }

// Driver uses the given storage driver instead of a fresh memory one.
func Driver(d storage.Driver) Option { return func(o *options) { o.driver = d } }

// Server is a running in-process server.
type Server struct {
	Core    *core.Server
	Driver  storage.Driver
	Config  *config.Config
	C2SAddr string // STARTTLS listener
	TLSAddr string // direct TLS listener
	// With the HTTP option: the HTTP server, its HTTPS and plain listeners.
	HTTP      *httpd.Server
	HTTPSAddr string
	HTTPAddr  string

	stopOnce sync.Once
}

// Stop shuts the server down as the daemon does on SIGTERM (it is also
// done at the end of the test).
func (s *Server) Stop(t testing.TB) {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if s.HTTP != nil {
			_ = s.HTTP.Shutdown(ctx)
		}
		if err := s.Core.Shutdown(ctx); err != nil {
			t.Errorf("xmpptest: shutdown: %v", err)
		}
	})
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// TOML returns the configuration NewServer would use (for tests of config itself).
func buildTOML(t testing.TB, o *options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\ndata_dir = %q\nadmins = [\"admin@%s\"]\n", t.TempDir(), o.hosts[0])
	if len(o.hashes) > 0 {
		fmt.Fprintf(&b, "scram_hashes = %s\n", quoteList(o.hashes))
	}
	b.WriteString("[storage]\ndefault = \"memory\"\n")
	b.WriteString("[listen]\nc2s = [\"127.0.0.1:0\"]\nc2s_tls = [\"127.0.0.1:0\"]\n")
	fmt.Fprintf(&b, "[modules]\nenabled = %s\n", quoteList(o.modules))
	for _, h := range o.hosts {
		fmt.Fprintf(&b, "[host.%q]\n", h)
	}
	for _, c := range o.comps {
		fmt.Fprintf(&b, "[component.%q]\nmodule = %q\nmodules = %s\n[component.%q.%s]\n%s\n",
			c.name, c.module, quoteList(c.extensions), c.name, c.module, c.options)
	}
	if o.http != nil {
		fmt.Fprintf(&b, "[http]\nlisten_tls = [\"127.0.0.1:0\"]\nlisten = [\"127.0.0.1:0\"]\n%s\n", *o.http)
	}
	// [c2s] may come from extra; default short timeouts are fine for tests.
	b.WriteString(o.extra)
	return b.String()
}

// NewServer starts a server for the duration of the test.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := &options{hosts: []string{"localhost"}}
	for _, f := range opts {
		f(o)
	}
	if o.driver == nil {
		o.driver = memory.New()
	}
	text := buildTOML(t, o)
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatalf("xmpptest: config: %v\n%s", err, text)
	}
	if err := cfg.CheckModules(func(n string) bool { _, ok := module.Lookup(n); return ok }); err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	copts, err := app.Options(cfg)
	if err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	// Quiet sessions leave their goroutine for the poller after 10s in
	// the daemon; here after a moment, so that tests go through it.
	copts.C2S.ParkAfter = 100 * time.Millisecond
	var w io.Writer = io.Discard
	if os.Getenv("METRONOME_TEST_LOG") != "" {
		w = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var hs *httpd.Server
	if o.http != nil {
		if hs, err = httpd.New(app.HTTPConfig(cfg), log); err != nil {
			t.Fatalf("xmpptest: %v", err)
		}
		app.AttachHTTP(copts, hs)
	}
	srv, err := core.New(copts, o.driver, log)
	if err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	addrs := srv.Addrs()
	s := &Server{Core: srv, Driver: o.driver, Config: cfg, C2SAddr: addrs[0].String(), TLSAddr: addrs[1].String()}
	if hs != nil {
		s.HTTP = hs
	}
	t.Cleanup(func() { s.Stop(t) })
	if hs != nil {
		hs.SetOps(app.NewOps(srv, hs))
		if err := hs.Start(srv.TLSConfig().GetCertificate); err != nil {
			t.Fatalf("xmpptest: %v", err)
		}
		s.HTTP, s.HTTPSAddr, s.HTTPAddr = hs, hs.TLSAddrs()[0].String(), hs.PlainAddrs()[0].String()
	}
	return s
}

// CreateUser creates an account (user@host).
func (s *Server) CreateUser(t testing.TB, bare, password string) {
	t.Helper()
	j, err := jid.Parse(bare)
	if err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	acc, ok := s.Core.Accounts(j.Domain())
	if !ok {
		t.Fatalf("xmpptest: no host %q", j.Domain())
	}
	if err := acc.Create(context.Background(), j.Local(), password); err != nil {
		t.Fatalf("xmpptest: create %s: %v", bare, err)
	}
}
