// Package httpd is the server's one HTTP server: HTTP/1.1 and HTTP/2 over
// TLS with the virtual hosts' certificates (chosen by SNI, the same
// selection as the core's client listeners), and optional plain HTTP
// listeners for use behind a reverse proxy, whose X-Forwarded-For and
// Forwarded headers are believed only from [http] trusted_proxies.
//
// Modules register routes per virtual host through module.HTTP (see
// module/http.go); the server itself serves the operator pages: the
// Prometheus metrics (internal/metrics), a status page, and the REST admin
// API described by the OpenAPI document at /api/openapi.json (api.go),
// which runs the same operations as the local admin socket (internal/admin).
//
// Protection against slow or abusive clients: a read-header timeout
// (slowloris), per-request read and write deadlines that handlers
// streaming large bodies extend themselves, an idle timeout for
// keep-alive connections, a header size limit and a body size limit per
// route.
//
// Modules reach the server through a small module loaded first on every
// host ("http", registered here), which publishes the host's Router and
// tells the server about the host; the app injects the server into it with
// WrapDecoder. BOSH and WebSocket will register their routes the same way.
//
// Not done here: ACME, HTTP/3, h2c (unencrypted HTTP/2), compression.
package httpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metronome-xmpp/metronome/internal/admin"
	"github.com/metronome-xmpp/metronome/module"
)

// Config is the [http] configuration section, already validated.
type Config struct {
	Listen    []string // plain HTTP listeners (behind a reverse proxy)
	ListenTLS []string // HTTPS listeners
	// ExternalURL is the public base URL of the routes ("" = derived from
	// the first TLS, else plain, listener and the host name).
	ExternalURL string
	// DefaultHost serves requests whose Host header names no virtual host.
	DefaultHost    string
	TrustedProxies []netip.Prefix
	CORSOrigins    []string // allowed Origin values; "*" allows any

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration // request body, per request
	WriteTimeout      time.Duration // response, per request
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	MaxBodySize       int64

	MetricsPath   string         // "" = not on the main listeners
	MetricsListen string         // a dedicated plain listener for the metrics ("" = none)
	StatusPath    string         // "" = no status page
	LocalNetworks []netip.Prefix // who may read metrics and status without a token

	APITokens     []string // bearer tokens of the admin API
	APITokensFile string   // more tokens, one per line (re-read on reload)

	DataDir string // published to modules (module.DataDir)
}

// Defaults returns the defaults of every [http] key.
func Defaults() Config {
	return Config{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		MaxBodySize:       1 << 20,
		MetricsPath:       "/metrics",
		StatusPath:        "/status",
		LocalNetworks:     []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
	}
}

// settings are the parts of Config that a reload may change.
type settings struct {
	cfg    Config
	tokens [][32]byte // SHA-256 of each API token
}

// Server is the HTTP server. Build it with New before the core provisions
// modules (they register routes), then Start it once certificates exist.
type Server struct {
	log *slog.Logger
	set atomic.Pointer[settings]

	routes routeTable
	hosts  hostViews

	ops atomic.Pointer[admin.Ops]

	mu        sync.Mutex
	servers   []*http.Server
	listeners []net.Listener
	tlsAddrs  []net.Addr
	addrs     []net.Addr
	wg        sync.WaitGroup
	started   bool
	hooks     map[uint64][]func() // OnShutdown functions by owner
}

// New validates cfg and returns a server that does not listen yet.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	s := &Server{log: log.With("module", "http")}
	st, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	s.set.Store(st)
	s.routes.init(s)
	return s, nil
}

func (s *Server) settings() *settings { return s.set.Load() }

// Reload applies a new configuration. Listener addresses cannot change at
// run time; everything else (tokens, proxies, origins, limits, timeouts of
// new requests) can.
func (s *Server) Reload(cfg Config) error {
	cur := s.settings().cfg
	if !slices.Equal(cur.Listen, cfg.Listen) || !slices.Equal(cur.ListenTLS, cfg.ListenTLS) ||
		cur.MetricsListen != cfg.MetricsListen {
		return errors.New("[http] listen, listen_tls and metrics_listen cannot change at run time; restart the server")
	}
	if cur.DataDir != cfg.DataDir {
		return errors.New("data_dir cannot change at run time; restart the server")
	}
	st, err := newSettings(cfg)
	if err != nil {
		return err
	}
	old := s.set.Swap(st)
	// default_host and the reserved paths may have changed.
	if err := s.routes.rebuild(); err != nil {
		s.set.Store(old)
		_ = s.routes.rebuild()
		return err
	}
	return nil
}

// Config returns the configuration in force.
func (s *Server) Config() Config { return s.settings().cfg }

// SetOps gives the admin API and the status page their operations.
func (s *Server) SetOps(o *admin.Ops) { s.ops.Store(o) }

// Host returns the module view of a served host, as published by the
// "http" module of its current generation.
func (s *Server) Host(name string) (module.Host, bool) { return s.hosts.get(name) }

// Enabled reports whether any HTTP listener is configured.
func (s *Server) Enabled() bool {
	c := s.settings().cfg
	return len(c.Listen) > 0 || len(c.ListenTLS) > 0 || c.MetricsListen != ""
}

// Start opens the listeners. getCert selects the certificate of a TLS
// handshake (the core's per-host selection by SNI).
func (s *Server) Start(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("http: already started")
	}
	s.started = true
	cfg := s.settings().cfg
	main := s.newHTTPServer(s.handler())
	// NextProtos must name h2 before any listener starts: Serve on a plain
	// listener may run net/http's one-time HTTP/2 setup first, and it only
	// configures HTTP/2 when the TLS configuration asks for it; otherwise
	// TLS clients would negotiate h2 that the server then cannot speak.
	main.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert,
		NextProtos: []string{"h2", "http/1.1"}}
	s.servers = append(s.servers, main)
	fail := func(err error) error {
		for _, l := range s.listeners {
			_ = l.Close()
		}
		return err
	}
	type pending struct {
		l   net.Listener
		tls bool
		srv *http.Server
	}
	var ps []pending
	for _, a := range cfg.ListenTLS {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fail(fmt.Errorf("http: listen_tls %s: %w", a, err))
		}
		s.listeners = append(s.listeners, l)
		s.tlsAddrs = append(s.tlsAddrs, l.Addr())
		ps = append(ps, pending{l, true, main})
	}
	for _, a := range cfg.Listen {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fail(fmt.Errorf("http: listen %s: %w", a, err))
		}
		s.listeners = append(s.listeners, l)
		s.addrs = append(s.addrs, l.Addr())
		ps = append(ps, pending{l, false, main})
	}
	if cfg.MetricsListen != "" {
		l, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fail(fmt.Errorf("http: metrics_listen %s: %w", cfg.MetricsListen, err))
		}
		s.listeners = append(s.listeners, l)
		ms := s.newHTTPServer(s.recoverer(http.HandlerFunc(serveMetrics)))
		s.servers = append(s.servers, ms)
		ps = append(ps, pending{l, false, ms})
		s.log.Info("listening", "kind", "metrics", "addr", l.Addr().String())
	}
	for _, p := range ps {
		if p.srv == main {
			kind := "http"
			if p.tls {
				kind = "https"
			}
			s.log.Info("listening", "kind", kind, "addr", p.l.Addr().String())
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			var err error
			if p.tls {
				err = p.srv.ServeTLS(p.l, "", "")
			} else {
				err = p.srv.Serve(p.l)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http listener failed", "addr", p.l.Addr().String(), "err", err)
			}
		}()
	}
	return nil
}

func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	cfg := s.settings().cfg
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// Read and write deadlines are set per request (deadlines in
		// handler.go), so that upload and long-polling routes can extend them.
	}
}

// TLSAddrs returns the addresses of the HTTPS listeners.
func (s *Server) TLSAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tlsAddrs)
}

// PlainAddrs returns the addresses of the plain HTTP listeners.
func (s *Server) PlainAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.addrs)
}

// MetricsAddr returns the address of the dedicated metrics listener, or nil.
func (s *Server) MetricsAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settings().cfg.MetricsListen == "" || len(s.listeners) == 0 {
		return nil
	}
	return s.listeners[len(s.listeners)-1].Addr()
}

// Shutdown stops accepting, lets requests in flight finish until ctx ends,
// then closes the remaining connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	servers := slices.Clone(s.servers)
	var hooks []func()
	for _, fs := range s.hooks {
		hooks = append(hooks, fs...)
	}
	s.mu.Unlock()
	for _, f := range hooks {
		f()
	}
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			_ = srv.Close()
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// ShutdownNotifier is implemented by the module.Router the server
// publishes. Handlers that hold requests open (BOSH long polling) register
// a function that answers them when the server shuts down, which
// otherwise waits for them until its deadline.
type ShutdownNotifier interface {
	// OnShutdown registers f, called at the start of Shutdown. The
	// registration ends when the module generation unloads.
	OnShutdown(f func())
}

func (s *Server) addShutdownHook(owner uint64, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hooks == nil {
		s.hooks = make(map[uint64][]func())
	}
	s.hooks[owner] = append(s.hooks[owner], f)
}

func (s *Server) dropShutdownHooks(owner uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hooks, owner)
}

// BaseURL is the public base URL of host's routes (see module.Router).
func (s *Server) BaseURL(host string) string {
	cfg := s.settings().cfg
	if cfg.ExternalURL != "" {
		return cfg.ExternalURL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	scheme, addrs, def := "https", s.tlsAddrs, 443
	if len(addrs) == 0 {
		scheme, addrs, def = "http", s.addrs, 80
	}
	if len(addrs) == 0 {
		// Not started yet (or no listener): configured addresses.
		list := cfg.ListenTLS
		if len(list) == 0 {
			scheme, list, def = "http", cfg.Listen, 80
		}
		if len(list) == 0 {
			return ""
		}
		_, port, _ := net.SplitHostPort(list[0])
		return joinURL(scheme, host, port, def)
	}
	port := ""
	if ta, ok := addrs[0].(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
	}
	return joinURL(scheme, host, port, def)
}

func joinURL(scheme, host, port string, def int) string {
	if port == "" || port == strconv.Itoa(def) {
		return scheme + "://" + host
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
