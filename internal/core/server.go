// Package core is the server engine: it owns the virtual hosts and their
// module generations, the session directory, the listeners and the
// router. A reload builds a whole new generation of module instances per
// host and swaps it in only if every module provisioned; sessions belong to
// the core and survive reloads.
package core

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/metronome-xmpp/metronome/internal/metrics"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metronome-xmpp/metronome/account"
	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/internal/c2s"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/sasl"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Version is the server version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// HostOptions configures one virtual host.
type HostOptions struct {
	Name    string
	Cert    CertSpec
	Modules []string
}

// Options is everything the core needs, already validated.
type Options struct {
	DataDir          string
	Hosts            []HostOptions
	Admins           []jid.JID
	C2S              c2s.Config
	ResourceConflict string // takeover | reject | random
	MaxSessions      int    // per user
	MaxConnsPerIP    int    // open client connections per address (loopback excepted); 0 = unlimited
	ThrottlePerIP    int
	ThrottlePerUser  int
	ThrottleWindow   time.Duration
	ListenC2S        []string
	ListenC2STLS     []string
	Iterations       int         // SCRAM iteration count for new passwords
	SCRAMHashes      []sasl.Hash // hashes passwords are stored for; empty = all
	// DecodeModule strictly decodes a module's options for a host.
	DecodeModule func(host, name string, dst any) error
	// ModuleError positions a module's Provision/Validate error in the
	// configuration (file:line of its options); nil leaves errors as they are.
	ModuleError func(host, name string, err error) error
	// Components are the component hosts served by internal modules
	// (component.go); DecodeComponent strictly decodes a component's options.
	Components      []ComponentOptions
	DecodeComponent func(name string, dst any) error
}

// Server is a running server.
type Server struct {
	log    *slog.Logger
	driver storage.Driver
	global *event.Bus
	dir    *directory
	certs  certStore
	info   module.ServerInfo
	secret []byte // stable per-installation key (fake SCRAM salts)
	// mechanisms allowed by the stored hashes (nil: all); fixed at start
	// because accounts keep the keys they were created with.
	mechanisms []string

	opts    atomic.Pointer[Options]
	hostsMu sync.RWMutex
	hosts   map[string]*host

	ipThrottle   *throttle
	userThrottle *throttle

	iqMu      sync.Mutex
	iqPending map[string]chan *stanza.Element
	iqSeq     atomic.Uint64

	reloadMu  sync.Mutex
	listeners []net.Listener
	conns     sync.WaitGroup
	tracked   sync.Map // *c2s.Session → struct{}
	// resumptions are the resumable sessions (XEP-0198).
	resumptions *c2s.Resumptions
	// handovers orders offline storage around sessions that hand over
	// their unacknowledged stanzas (sm.go).
	handovers handovers
	ipMu      sync.Mutex
	ipConns   map[string]int // open connections per remote address
	ctx       context.Context
	cancel    context.CancelFunc
	stopping  atomic.Bool
}

// New builds a server: hosts, certificates and module generations. It does
// not listen yet.
func New(opts *Options, driver storage.Driver, log *slog.Logger) (*Server, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		log:         log,
		driver:      driver,
		global:      event.NewBus("global", log),
		dir:         newDirectory(),
		hosts:       map[string]*host{},
		iqPending:   map[string]chan *stanza.Element{},
		ipConns:     map[string]int{},
		ctx:         ctx,
		resumptions: c2s.NewResumptions(),
		cancel:      cancel,
		info: module.ServerInfo{Name: "Metronome", Version: Version,
			OS: runtime.GOOS + "/" + runtime.GOARCH, Started: time.Now()},
	}
	if len(opts.SCRAMHashes) > 0 {
		s.mechanisms = []string{sasl.Plain}
		for _, h := range opts.SCRAMHashes {
			s.mechanisms = append(s.mechanisms, h.Mechanism(false), h.Mechanism(true))
		}
	}
	var err error
	if s.secret, err = loadSecret(opts.DataDir); err != nil {
		cancel()
		return nil, err
	}
	if err := s.apply(opts); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// loadSecret reads <data_dir>/secret, creating it with 32 random bytes on
// first start, so that values derived from it survive restarts.
func loadSecret(dataDir string) ([]byte, error) {
	p := filepath.Join(dataDir, "secret")
	if b, err := os.ReadFile(p); err == nil && len(b) >= 32 {
		return b, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	return b, nil
}

// Logger implements c2s.Core.
func (s *Server) Logger() *slog.Logger { return s.log }

// Global is the process-wide event bus.
func (s *Server) Global() *event.Bus { return s.global }

// Options returns the options in force.
func (s *Server) Options() *Options { return s.opts.Load() }

// apply builds certificates and module generations for opts and swaps them
// in; on failure nothing changes.
func (s *Server) apply(opts *Options) error {
	specs := make([]CertSpec, 0, len(opts.Hosts))
	for _, h := range opts.Hosts {
		cs := h.Cert
		cs.Host = h.Name
		specs = append(specs, cs)
	}
	certs, err := loadCerts(opts.DataDir, specs)
	if err != nil {
		return err
	}

	s.hostsMu.RLock()
	existing := s.hosts
	s.hostsMu.RUnlock()
	type built struct {
		h     *host
		gen   *generation
		isNew bool
	}
	var builds []built
	fail := func(err error) error {
		for _, b := range builds {
			b.gen.unload()
		}
		return err
	}
	iter := opts.Iterations
	for _, ho := range opts.Hosts {
		h, ok := existing[ho.Name]
		if h.isComponent() {
			return fail(fmt.Errorf("host %q: it is a component in the running configuration; restart the server to turn it into a virtual host", ho.Name))
		}
		isNew := !ok
		if isNew {
			hj, err := jid.Parse(ho.Name)
			if err != nil {
				return fail(fmt.Errorf("host %q: %w", ho.Name, err))
			}
			h = &host{srv: s, name: hj.Domain(), jid: hj, log: s.log.With("host", ho.Name)}
			h.accounts = account.New(s.driver.KeyVal(h.name, "accounts"), account.Options{Iterations: iter, Hashes: opts.SCRAMHashes})
		}
		g, err := h.buildGeneration(ho.Modules, opts.DecodeModule, opts.ModuleError)
		if err != nil {
			return fail(err)
		}
		builds = append(builds, built{h, g, isNew})
	}
	for _, co := range opts.Components {
		h, g, isNew, err := s.buildComponent(co, existing, opts)
		if err != nil {
			return fail(err)
		}
		if h != nil {
			builds = append(builds, built{h, g, isNew})
		}
	}

	// Everything provisioned: swap.
	s.certs.certs.Store(certs)
	s.opts.Store(opts)
	s.ipThrottle = newThrottle(opts.ThrottlePerIP, opts.ThrottleWindow)
	s.userThrottle = newThrottle(opts.ThrottlePerUser, opts.ThrottleWindow)
	next := make(map[string]*host, len(builds))
	var old []*generation
	for _, b := range builds {
		if prev := b.h.gen.Swap(b.gen); prev != nil {
			old = append(old, prev)
		}
		next[b.h.name] = b.h
	}
	s.hostsMu.Lock()
	var removed []*host
	for name, h := range s.hosts {
		if _, ok := next[name]; !ok {
			removed = append(removed, h)
		}
	}
	s.hosts = next
	s.hostsMu.Unlock()
	s.linkComponents(next)
	for _, g := range old {
		g.unload()
	}
	for _, h := range removed {
		for _, sess := range s.dir.all(h.name) {
			sess.Close("host-gone", "this host was removed from the server")
		}
		if g := h.gen.Load(); g != nil {
			g.unload()
		}
		s.log.Info("host removed", "host", h.name)
	}
	for _, b := range builds {
		b.h.bus().Fire(s.ctx, &event.Event{Name: module.EventHostActivated, Host: b.h.name})
		if b.isNew {
			s.log.Info("host activated", "host", b.h.name, "modules", len(b.gen.instances))
		}
	}
	return nil
}

// Reload applies new options (config and certificates) without dropping
// sessions. Options that cannot change at run time are refused.
func (s *Server) Reload(opts *Options) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.opts.Load()
	if opts.DataDir != cur.DataDir {
		return errors.New("data_dir cannot change at run time; restart the server")
	}
	if err := s.apply(opts); err != nil {
		return err
	}
	s.log.Info("configuration reloaded")
	return nil
}

// Start opens the listeners.
func (s *Server) Start() error {
	opts := s.opts.Load()
	for _, addr := range opts.ListenC2S {
		if err := s.listen(addr, false); err != nil {
			s.closeListeners()
			return err
		}
	}
	for _, addr := range opts.ListenC2STLS {
		if err := s.listen(addr, true); err != nil {
			s.closeListeners()
			return err
		}
	}
	return nil
}

// Addrs returns the addresses listened on (plain/STARTTLS first, then direct TLS).
func (s *Server) Addrs() []net.Addr {
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.Addr()
	}
	return out
}

func (s *Server) listen(addr string, directTLS bool) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	s.listeners = append(s.listeners, l)
	kind := "c2s"
	if directTLS {
		kind = "c2s_tls"
	}
	s.log.Info("listening", "kind", kind, "addr", l.Addr().String())
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		var delay time.Duration
		for {
			c, err := l.Accept()
			if err != nil {
				if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
					return
				}
				// Temporary errors (EMFILE...): back off instead of spinning.
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay < time.Second {
					delay *= 2
				}
				s.log.Warn("accept failed", "err", err)
				time.Sleep(delay)
				continue
			}
			delay = 0
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetKeepAlive(true)
			}
			ip := remoteIP(c)
			if !s.acquireIP(ip) {
				s.log.Warn("connection refused: too many from one address", "ip", ip)
				if directTLS {
					c = c2s.TLSServer(c, s.TLSConfig())
				}
				go c2s.Refuse(c, "policy-violation", "too many connections from your address")
				continue
			}
			if directTLS {
				c = c2s.TLSServer(c, s.TLSConfig())
			}
			s.conns.Add(1)
			go c2s.Serve(s.ctx, c, s, directTLS, func() {
				s.releaseIP(ip)
				s.conns.Done()
			})
		}
	}()
	return nil
}

// ServeFramed implements c2s.Server: a session over a connection a module
// accepted (WebSocket). It is tracked like a TCP connection for shutdown.
func (s *Server) ServeFramed(conn net.Conn, framing c2s.Framing, secure bool, done func()) {
	if s.stopping.Load() {
		_ = conn.Close()
		if done != nil {
			done()
		}
		return
	}
	s.conns.Add(1)
	c2s.ServeFramed(s.ctx, conn, s, framing, secure, func() {
		s.conns.Done()
		if done != nil {
			done()
		}
	})
}

// AcquireRemote implements c2s.Server: the per-IP connection limit of the
// TCP listeners, for connections accepted by transport modules.
func (s *Server) AcquireRemote(addr string) (release func(), ok bool) {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() {
		return func() {}, true // local tools and tests are not limited
	}
	key := ip.String()
	if !s.acquireIP(key) {
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { s.releaseIP(key) }) }, true
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a.IP.IsLoopback() {
			return "" // local tools and tests are not limited
		}
		return a.IP.String()
	}
	return ""
}

// acquireIP counts a connection from ip, refusing it over the limit.
func (s *Server) acquireIP(ip string) bool {
	limit := s.opts.Load().MaxConnsPerIP
	if ip == "" || limit <= 0 {
		return true
	}
	s.ipMu.Lock()
	defer s.ipMu.Unlock()
	if s.ipConns[ip] >= limit {
		return false
	}
	s.ipConns[ip]++
	return true
}

func (s *Server) releaseIP(ip string) {
	if ip == "" {
		return
	}
	s.ipMu.Lock()
	if s.ipConns[ip]--; s.ipConns[ip] <= 0 {
		delete(s.ipConns, ip)
	}
	s.ipMu.Unlock()
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		_ = l.Close()
	}
}

// Shutdown stops accepting, sends <system-shutdown/> to every session,
// waits for them to close (until ctx ends), then unloads all modules.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	s.closeListeners()
	s.tracked.Range(func(k, _ any) bool {
		k.(*c2s.Session).Close("system-shutdown", "the server is shutting down")
		return true
	})
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.cancel()
	s.hostsMu.RLock()
	for _, h := range s.hosts {
		if g := h.gen.Load(); g != nil {
			g.unload()
		}
	}
	s.hostsMu.RUnlock()
	return err
}

// Tracked implements c2s.Core: every stream, bound or not, for shutdown.
func (s *Server) Tracked(sess *c2s.Session, add bool) {
	if add {
		s.tracked.Store(sess, struct{}{})
		if s.stopping.Load() {
			sess.Close("system-shutdown", "the server is shutting down")
		}
	} else {
		s.tracked.Delete(sess)
	}
}

// C2SConfig implements c2s.Core.
func (s *Server) C2SConfig() c2s.Config { return s.opts.Load().C2S }

// TLSConfig implements c2s.Core.
func (s *Server) TLSConfig() *tls.Config { return s.certs.tlsConfig() }

func (s *Server) lookupHost(domain string) *host {
	s.hostsMu.RLock()
	h := s.hosts[domain]
	s.hostsMu.RUnlock()
	return h
}

// LookupHost implements c2s.Core.
func (s *Server) LookupHost(domain string) c2s.Host {
	if h := s.lookupVirtualHost(domain); h != nil {
		return h
	}
	return nil
}

// Hosts returns the served host names.
func (s *Server) Hosts() []string {
	s.hostsMu.RLock()
	defer s.hostsMu.RUnlock()
	out := make([]string, 0, len(s.hosts))
	for n := range s.hosts {
		out = append(out, n)
	}
	return out
}

// Accounts returns a host's account manager.
func (s *Server) Accounts(hostName string) (*account.Manager, bool) {
	h := s.lookupVirtualHost(hostName)
	if h == nil {
		return nil, false
	}
	return h.accounts, true
}

// Sessions returns the bound sessions of a host (hibernated ones too).
func (s *Server) Sessions(host string) []*c2s.Session { return s.dir.all(host) }

// SessionCount is the number of bound sessions.
func (s *Server) SessionCount() int { return s.dir.count() }

func (s *Server) isAdmin(j jid.JID) bool {
	b := j.Bare()
	for _, a := range s.opts.Load().Admins {
		if a.Equal(b) {
			return true
		}
	}
	return false
}

// AuthAllowed implements c2s.Core.
func (s *Server) AuthAllowed(ip, user string) bool {
	if user != "" {
		return s.userThrottle.allowed(user)
	}
	return s.ipThrottle.allowed(ip)
}

// AuthFailed implements c2s.Core.
func (s *Server) AuthFailed(ip, user string) {
	metrics.AuthFailed()
	s.ipThrottle.failed(ip)
	s.userThrottle.failed(user)
}

// Started is when the server started.
func (s *Server) Started() time.Time { return s.info.Started }

// Hooks lists the live handler chain of an event on a host ("" = global bus).
func (s *Server) Hooks(hostName, name string) ([]event.HandlerInfo, error) {
	if hostName == "" {
		return s.global.Handlers(name), nil
	}
	h := s.lookupHost(hostName)
	if h == nil {
		return nil, fmt.Errorf("no host %q", hostName)
	}
	return h.bus().Handlers(name), nil
}

// CreateUser creates an account and fires user/created.
func (s *Server) CreateUser(ctx context.Context, bare jid.JID, password string) error {
	h := s.lookupVirtualHost(bare.Domain())
	if h == nil {
		return fmt.Errorf("%s is not a host of this server", bare.Domain())
	}
	if err := h.accounts.Create(ctx, bare.Local(), password); err != nil {
		return err
	}
	h.bus().Fire(ctx, &event.Event{Name: module.EventUserCreated, Host: h.name, From: bare, Data: module.UserEvent{User: bare}})
	return nil
}

// DeleteUser closes the user's sessions, deletes the account and fires
// user/deleted so that modules delete the user's data.
func (s *Server) DeleteUser(ctx context.Context, bare jid.JID) error {
	h := s.lookupVirtualHost(bare.Domain())
	if h == nil {
		return fmt.Errorf("%s is not a host of this server", bare.Domain())
	}
	if ok, err := h.accounts.Exists(ctx, bare.Local()); err != nil {
		return err
	} else if !ok {
		return account.ErrNotFound
	}
	for _, sess := range s.dir.sessions(bare.String()) {
		sess.Close("not-authorized", "the account was deleted")
	}
	if err := h.accounts.Delete(ctx, bare.Local()); err != nil {
		return err
	}
	h.bus().Fire(ctx, &event.Event{Name: module.EventUserDeleted, Host: h.name, From: bare, Data: module.UserEvent{User: bare}})
	return nil
}
