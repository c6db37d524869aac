// Package websocket implements RFC 7395, XMPP over WebSocket, as module
// "websocket": it registers an HTTP route (default /xmpp-websocket) on the
// server's HTTP listeners, accepts WebSocket upgrades that ask for the
// "xmpp" subprotocol from allowed origins, and runs an ordinary client
// session over each (internal/c2s with c2s.WebSocketFraming): the same
// SASL, binding, routing and modules as TCP clients.
package websocket

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/metronome-xmpp/metronome/internal/c2s"
	"github.com/metronome-xmpp/metronome/internal/httpd"
	"github.com/metronome-xmpp/metronome/module"
)

// Defaults of the options.
const (
	DefaultPath         = "/xmpp-websocket"
	DefaultPingInterval = 30 * time.Second
	// Subprotocol is the WebSocket subprotocol of RFC 7395 §3.1.
	Subprotocol = "xmpp"
)

func init() { module.Register(new(WebSocket)) }

// WebSocket is the module and its configuration ([modules.websocket]).
type WebSocket struct {
	// Path is the route's path.
	Path string `json:"path"`
	// AllowedOrigins are the web origins ("https://chat.example.org")
	// whose pages may connect; "*" allows any. Empty: only pages served
	// from the endpoint's own host, and clients that send no Origin
	// (native clients).
	AllowedOrigins []string `json:"allowed_origins"`
	// PingInterval is how often the server sends WebSocket pings; a
	// connection whose pong does not come back within it is closed.
	// 0 turns pings off.
	PingInterval module.Duration `json:"ping_interval"`

	srv c2s.Server
	log *slog.Logger
}

// Info implements module.Module.
func (*WebSocket) Info() module.Info {
	return module.Info{ID: "mod.websocket", Requires: []string{"http"}, New: func() module.Module {
		return &WebSocket{Path: DefaultPath, PingInterval: module.Duration(DefaultPingInterval)}
	}}
}

// Validate implements module.Validator.
func (m *WebSocket) Validate() error {
	if !strings.HasPrefix(m.Path, "/") || strings.ContainsAny(m.Path, " {}") {
		return fmt.Errorf("path: %q must be an absolute URL path", m.Path)
	}
	if m.PingInterval.D() < 0 || m.PingInterval.D() > 0 && m.PingInterval.D() < time.Second {
		return errors.New("ping_interval: must be 0 (off) or at least 1s")
	}
	return module.CheckOrigins("allowed_origins", m.AllowedOrigins)
}

// Provision implements module.Provisioner.
func (m *WebSocket) Provision(h module.Host) error {
	m.log = h.Logger()
	r, srv, ok, err := c2s.HTTPTransport(h)
	if !ok {
		return err // nil: no HTTP or no core in this process (offline tools)
	}
	m.srv = srv
	return r.Handle("GET "+m.Path, http.HandlerFunc(m.serveHTTP), module.MaxBody(-1))
}

func (m *WebSocket) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !websocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this is an XMPP over WebSocket endpoint (RFC 7395)", http.StatusUpgradeRequired)
		return
	}
	if !offers(r, Subprotocol) {
		// RFC 7395 §3.1: the client must ask for the xmpp subprotocol.
		http.Error(w, `the "xmpp" WebSocket subprotocol is required (RFC 7395)`, http.StatusBadRequest)
		return
	}
	if !module.OriginAllowed(r, m.AllowedOrigins) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	// The same per-address limit as the TCP listeners ([c2s]
	// max_connections_per_ip), on the client's address after the HTTP
	// server resolved trusted proxies.
	release, ok := m.srv.AcquireRemote(r.RemoteAddr)
	if !ok {
		m.log.Warn("WebSocket refused: too many connections from one address", "addr", r.RemoteAddr)
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return
	}
	// The HTTP server's per-request deadlines must not end the session.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       []string{Subprotocol},
		InsecureSkipVerify: true, // checked above, with our own policy
	})
	if err != nil {
		release()
		return // Accept answered the request
	}
	limit := int64(m.srv.C2SConfig().MaxStanzaSize)
	if limit <= 0 {
		limit = 1 << 20
	}
	ws.SetReadLimit(limit + 1024)
	local := ""
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		local = a.String()
	}
	c := newConn(ws, local, r.RemoteAddr, m.PingInterval.D())
	m.srv.ServeFramed(c, c2s.WebSocketFraming, secure(r), release)
}

// secure says whether the session counts as encrypted: the request came
// over TLS, from a trusted proxy (which terminates TLS, [http]
// trusted_proxies), or from the loopback interface (a local proxy).
func secure(r *http.Request) bool { return secureFrom(r, httpd.PeerAddr(r)) }

// secureFrom is secure with the address of the peer that sent r.
func secureFrom(r *http.Request, peer string) bool {
	if r.TLS != nil {
		return true
	}
	if peer != "" && peer != r.RemoteAddr {
		return true // RemoteAddr was taken from a trusted proxy's headers
	}
	ap, err := netip.ParseAddrPort(peer)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

func websocketUpgrade(r *http.Request) bool {
	return headerHas(r.Header, "Connection", "upgrade") && headerHas(r.Header, "Upgrade", "websocket")
}

func offers(r *http.Request, proto string) bool {
	return headerHas(r.Header, "Sec-WebSocket-Protocol", proto)
}

// headerHas reports whether the comma-separated header key lists token.
func headerHas(h http.Header, key, token string) bool {
	for _, line := range h.Values(key) {
		for _, t := range strings.Split(line, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
