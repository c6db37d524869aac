package httpd

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/metronome-xmpp/metronome/module"
)

// route is one handler registered by a module for one virtual host.
type route struct {
	host    string
	pattern string // as the module wrote it: "GET /upload/{id}"
	method  string // "" = any
	path    string
	handler http.Handler
	opts    module.RouteOptions
	owner   uint64 // the "http" module instance that published the router
}

// muxState is an immutable dispatch table, rebuilt whenever routes change
// (module provisioning and reloads: rare) and swapped atomically.
type muxState struct {
	mux *http.ServeMux
	// byPattern maps a registered mux pattern to its route; global routes
	// (admin API, status, metrics) have a route without host.
	byPattern map[string]*route
}

type routeKey struct{ host, pattern string }

// routeTable holds every route and the current dispatch table.
//
// Registrations are keyed by (host, pattern): a new generation of a host's
// modules replaces the previous generation's handler at once, and when the
// old generation unloads it removes only the routes it still owns.
type routeTable struct {
	s      *Server
	mu     sync.Mutex
	routes map[routeKey]*route
	state  atomic.Pointer[muxState]
	owners atomic.Uint64
}

func (t *routeTable) init(s *Server) {
	t.s = s
	t.routes = map[routeKey]*route{}
	if err := t.rebuild(); err != nil {
		panic(err) // the global routes are fixed: a programming error
	}
}

// splitPattern separates an optional method from the path of a module's
// pattern and refuses host parts and paths the server keeps for itself.
func (t *routeTable) splitPattern(pattern string) (method, path string, err error) {
	path = pattern
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		method, path = pattern[:i], strings.TrimLeft(pattern[i:], " \t")
	}
	if !strings.HasPrefix(path, "/") {
		return "", "", fmt.Errorf("http: pattern %q: the path must start with / (the host is implied by the router)", pattern)
	}
	if path == "/" || strings.HasPrefix(path, "/{") || strings.HasPrefix(path, "/api/") || path == "/api" {
		return "", "", fmt.Errorf("http: pattern %q: / and /api/ are reserved for the server", pattern)
	}
	cfg := t.s.settings().cfg
	for _, p := range []string{cfg.MetricsPath, cfg.StatusPath} {
		// The exact path, or a subtree ("/me/") that would contain it.
		if p != "" && (path == p || strings.HasSuffix(path, "/") && strings.HasPrefix(p, path)) {
			return "", "", fmt.Errorf("http: pattern %q: %s is reserved for the server", pattern, p)
		}
	}
	return method, path, nil
}

// add registers (or replaces) a host's route.
func (t *routeTable) add(host string, owner uint64, pattern string, h http.Handler, opts []module.RouteOption) error {
	if h == nil {
		return fmt.Errorf("http: pattern %q: nil handler", pattern)
	}
	method, path, err := t.splitPattern(pattern)
	if err != nil {
		return err
	}
	r := &route{host: host, pattern: pattern, method: method, path: path, handler: h, owner: owner}
	for _, o := range opts {
		o(&r.opts)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	key := routeKey{host, pattern}
	prev := t.routes[key]
	if prev != nil && prev.owner == owner {
		return fmt.Errorf("http: pattern %q is already registered on host %s", pattern, host)
	}
	t.routes[key] = r
	if err := t.rebuildLocked(); err != nil {
		if prev != nil {
			t.routes[key] = prev
		} else {
			delete(t.routes, key)
		}
		return err
	}
	return nil
}

// drop removes every route of owner.
func (t *routeTable) drop(owner uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	changed := false
	for k, r := range t.routes {
		if r.owner == owner {
			delete(t.routes, k)
			changed = true
		}
	}
	if changed {
		if err := t.rebuildLocked(); err != nil {
			t.s.log.Error("http: rebuilding routes failed", "err", err)
		}
	}
}

func (t *routeTable) rebuild() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rebuildLocked()
}

// rebuildLocked builds a new ServeMux: each route under "METHOD host/path",
// then, for every pattern, a host-less fallback to the default host's route
// (or the only host's), then the server's own routes.
func (t *routeTable) rebuildLocked() (err error) {
	st := &muxState{mux: http.NewServeMux(), byPattern: map[string]*route{}}
	defer func() {
		// ServeMux panics on malformed or conflicting patterns.
		if p := recover(); p != nil {
			err = fmt.Errorf("http: %v", p)
		}
	}()
	register := func(muxPattern string, r *route) {
		st.mux.Handle(muxPattern, t.s.wrapRoute(r))
		st.byPattern[muxPattern] = r
	}
	list := make([]*route, 0, len(t.routes))
	for _, r := range t.routes {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].host != list[j].host {
			return list[i].host < list[j].host
		}
		return list[i].pattern < list[j].pattern
	})
	byPattern := map[string][]*route{}
	var patterns []string
	for _, r := range list {
		register(joinPattern(r.method, r.host+r.path), r)
		key := joinPattern(r.method, r.path)
		if byPattern[key] == nil {
			patterns = append(patterns, key)
		}
		byPattern[key] = append(byPattern[key], r)
	}
	def := t.s.settings().cfg.DefaultHost
	for _, p := range patterns {
		rs := byPattern[p]
		var fallback *route
		for _, r := range rs {
			if r.host == def {
				fallback = r
			}
		}
		if fallback == nil && len(rs) == 1 {
			fallback = rs[0]
		}
		if fallback != nil {
			register(p, fallback)
		}
	}
	for _, g := range t.s.globalRoutes() {
		register(joinPattern(g.method, g.path), g)
	}
	t.state.Store(st)
	return nil
}

func joinPattern(method, path string) string {
	if method == "" {
		return path
	}
	return method + " " + path
}

// hostRouter is the module.Router of one host, published by the "http"
// module instance owner.
type hostRouter struct {
	s     *Server
	host  string
	owner uint64
}

func (r *hostRouter) Handle(pattern string, h http.Handler, opts ...module.RouteOption) error {
	return r.s.routes.add(r.host, r.owner, pattern, h, opts)
}

func (r *hostRouter) BaseURL() string { return r.s.BaseURL(r.host) }

var _ ShutdownNotifier = (*hostRouter)(nil)

// OnShutdown implements ShutdownNotifier.
func (r *hostRouter) OnShutdown(f func()) { r.s.addShutdownHook(r.owner, f) }

// hostViews maps host names to the module.Host of their current "http"
// module instance, for the admin operations.
type hostViews struct {
	mu sync.RWMutex
	m  map[string]hostView
}

type hostView struct {
	h     module.Host
	owner uint64
}

func (v *hostViews) set(name string, h module.Host, owner uint64) {
	v.mu.Lock()
	if v.m == nil {
		v.m = map[string]hostView{}
	}
	v.m[name] = hostView{h, owner}
	v.mu.Unlock()
}

func (v *hostViews) get(name string) (module.Host, bool) {
	v.mu.RLock()
	hv, ok := v.m[name]
	v.mu.RUnlock()
	return hv.h, ok
}

func (v *hostViews) drop(owner uint64) {
	v.mu.Lock()
	for n, hv := range v.m {
		if hv.owner == owner {
			delete(v.m, n)
		}
	}
	v.mu.Unlock()
}
