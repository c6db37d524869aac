package module

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// HTTP facilities. The server runs one HTTP server (HTTP/1.1 and HTTP/2,
// TLS with the hosts' certificates) on the listeners of the [http]
// configuration section. A module serves HTTP by registering handlers on
// the Router of its host:
//
//	func (u *Upload) Provision(h module.Host) error {
//		r, ok := module.HTTP(h)
//		if !ok {
//			return errors.New("HTTP is not available")
//		}
//		return r.Handle("GET /files/{id}", http.HandlerFunc(u.get))
//	}
//
// Routes are removed when the host's module generation is unloaded (reload,
// shutdown); a reload that registers the same pattern again replaces the
// handler without a gap.
const (
	// ProvideHTTP is the name under which the core publishes the host's
	// Router (Host.Provide). Use HTTP rather than looking it up yourself.
	ProvideHTTP = "core.http"
	// ProvideDataDir is the name under which the core publishes the
	// server's data directory (a string), for modules that keep files.
	ProvideDataDir = "core.data_dir"
)

// Router registers HTTP handlers for one virtual host.
type Router interface {
	// Handle registers h for pattern, written in net/http.ServeMux syntax
	// without a host part ("GET /upload/{id}/{name}", "/.well-known/host-meta").
	// Requests whose Host header names this virtual host use it; requests
	// naming no configured host (an IP address, a proxy's name) use the
	// route of the [http] default_host, or of the only host that registered
	// the pattern. Patterns may include the host name as a path element to
	// stay unambiguous behind a proxy. It fails if the pattern is malformed
	// or conflicts with one registered by another module of this host.
	//
	// The server limits request bodies to [http] max_body_size and applies
	// its read and write timeouts unless opts say otherwise; a handler that
	// streams large bodies extends its own deadlines with
	// http.ResponseController.
	Handle(pattern string, h http.Handler, opts ...RouteOption) error
	// BaseURL is the public URL under which this host's routes are
	// reachable, without a trailing slash (e.g. "https://example.org:5281"):
	// [http] external_url, else derived from the first TLS (else plain)
	// listener. It is "" when no HTTP listener is configured.
	BaseURL() string
}

// RouteOptions adjust how the server treats one route's requests.
type RouteOptions struct {
	// MaxBody bounds request bodies in bytes; 0 means the server's
	// max_body_size; a negative value means no server-side limit (the
	// handler enforces its own, e.g. with http.MaxBytesReader).
	MaxBody int64
	// CORS answers cross-origin requests from any origin ("*", without
	// credentials), as XEP-0156 recommends for host-meta. Other routes allow
	// the origins of [http] cors_origins only.
	CORS bool
}

// RouteOption sets one of a route's RouteOptions.
type RouteOption func(*RouteOptions)

// MaxBody sets RouteOptions.MaxBody.
func MaxBody(n int64) RouteOption { return func(o *RouteOptions) { o.MaxBody = n } }

// PublicCORS sets RouteOptions.CORS.
func PublicCORS() RouteOption { return func(o *RouteOptions) { o.CORS = true } }

// HTTP returns the HTTP router of h's virtual host. ok is false when the
// server runs without HTTP (a tool working on the data offline, or no
// router was published); modules then skip their HTTP features.
func HTTP(h Host) (r Router, ok bool) {
	v, found := h.Lookup(ProvideHTTP)
	if !found {
		return nil, false
	}
	r, ok = v.(Router)
	return r, ok
}

// DataDir returns the server's data directory, where modules that keep
// files create a folder named after themselves. ok is false when the core
// did not publish it.
func DataDir(h Host) (dir string, ok bool) {
	v, found := h.Lookup(ProvideDataDir)
	if !found {
		return "", false
	}
	dir, ok = v.(string)
	return dir, ok && dir != ""
}

// CheckOrigins validates a module's list of allowed web origins, the
// configuration key key: each entry is "*" or an origin such as
// "https://chat.example.org" (scheme and host, no path).
func CheckOrigins(key string, origins []string) error {
	for i, o := range origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
			return fmt.Errorf("%s[%d]: %q is not an origin such as \"https://chat.example.org\"", key, i, o)
		}
	}
	return nil
}

// OriginAllowed reports whether the page that sent r may use an endpoint
// open to origins (checked by CheckOrigins): r has no Origin header
// (browsers always send one; a native client, which no origin policy can
// restrict, does not), origins hold "*" or r's origin, or the page comes
// from the host the request was sent to.
func OriginAllowed(r *http.Request, origins []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range origins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
