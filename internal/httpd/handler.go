package httpd

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/metronome-xmpp/metronome/internal/metrics"
)

func newSettings(cfg Config) (*settings, error) {
	st := &settings{cfg: cfg}
	tokens := slices.Clone(cfg.APITokens)
	if cfg.APITokensFile != "" {
		b, err := os.ReadFile(cfg.APITokensFile)
		if err != nil {
			return nil, fmt.Errorf("[http] api_tokens_file: %w", err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line != "" && !strings.HasPrefix(line, "#") {
				tokens = append(tokens, line)
			}
		}
	}
	for _, t := range tokens {
		if len(t) < 16 {
			return nil, errors.New("[http] API tokens must be at least 16 characters long")
		}
		st.tokens = append(st.tokens, sha256.Sum256([]byte(t)))
	}
	return st, nil
}

// validToken reports whether r carries one of the API tokens as a bearer
// token. Tokens are compared as SHA-256 digests in constant time.
func (s *Server) validToken(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	found := 0
	for _, t := range s.settings().tokens {
		found |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	return found == 1
}

// local reports whether the client (after proxy resolution) is in
// [http] local_networks.
func (s *Server) local(r *http.Request) bool {
	ip, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a := ip.Addr().Unmap()
	for _, p := range s.settings().cfg.LocalNetworks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// reqInfo travels in the request context from the outer middleware to the
// route wrapper, which fills in the route for the metrics.
type reqInfo struct{ route, peer string }

// PeerAddr returns the address of the peer that sent r: the client, or the
// trusted proxy that forwarded it (Request.RemoteAddr is then the client's
// address, ip:0). It is "" outside the server's handler.
func PeerAddr(r *http.Request) string {
	if info, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		return info.peer
	}
	return ""
}

type reqInfoKey struct{}

// handler is the main listeners' handler: panic recovery, metrics, client
// address, deadlines, CORS preflights, then dispatch.
func (s *Server) handler() http.Handler {
	return s.recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{route: "unmatched", peer: r.RemoteAddr}
		r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, info))
		r.RemoteAddr = s.clientAddr(r)
		st := s.settings()
		rc := http.NewResponseController(w)
		if d := st.cfg.ReadTimeout; d > 0 {
			_ = rc.SetReadDeadline(start.Add(d))
		}
		if d := st.cfg.WriteTimeout; d > 0 {
			_ = rc.SetWriteDeadline(start.Add(d))
		}
		sw := &statusWriter{ResponseWriter: w}
		s.dispatch(sw, r)
		code := sw.status
		if code == 0 {
			code = http.StatusOK
		}
		metrics.HTTPRequests.Counter(info.route, methodLabel(r.Method), strconv.Itoa(code/100)+"xx").Inc()
		metrics.HTTPDuration.Histogram(info.route).Observe(time.Since(start))
	}))
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch:
		return m
	}
	return "other"
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	st := s.routes.state.Load()
	if r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		s.preflight(st, w, r)
		return
	}
	st.mux.ServeHTTP(w, r)
}

// Preflighter is implemented by route handlers that answer CORS
// preflight requests themselves, with their own origin policy (the bosh
// module's allowed_origins). The server hands them the OPTIONS request
// instead of applying [http] cors_origins.
type Preflighter interface {
	ServePreflight(w http.ResponseWriter, r *http.Request)
}

// preflight answers a CORS preflight request for the route the real
// request would reach.
func (s *Server) preflight(st *muxState, w http.ResponseWriter, r *http.Request) {
	probe := r.Clone(r.Context())
	probe.Method = r.Header.Get("Access-Control-Request-Method")
	_, pattern := st.mux.Handler(probe)
	rt := st.byPattern[pattern]
	if rt == nil {
		http.NotFound(w, r)
		return
	}
	if info, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		info.route = routeLabel(rt)
	}
	if p, ok := rt.handler.(Preflighter); ok {
		p.ServePreflight(w, r)
		return
	}
	if !s.corsHeaders(w, r, rt) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, POST, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// corsHeaders adds the CORS response headers when the request's Origin is
// allowed for the route, and reports whether it is (or no Origin was sent).
func (s *Server) corsHeaders(w http.ResponseWriter, r *http.Request, rt *route) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if rt.opts.CORS {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		return true
	}
	allowed := s.settings().cfg.CORSOrigins
	switch {
	case slices.Contains(allowed, "*"):
		w.Header().Set("Access-Control-Allow-Origin", "*")
	case slices.Contains(allowed, origin):
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	default:
		return false
	}
	return true
}

func routeLabel(rt *route) string {
	if rt.pattern != "" {
		return rt.pattern
	}
	return joinPattern(rt.method, rt.path)
}

// wrapRoute applies a route's options around its handler.
func (s *Server) wrapRoute(rt *route) http.Handler {
	label := routeLabel(rt)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
			info.route = label
		}
		s.corsHeaders(w, r, rt)
		limit := rt.opts.MaxBody
		if limit == 0 {
			limit = s.settings().cfg.MaxBodySize
		}
		if limit > 0 && r.Body != nil && r.Body != http.NoBody {
			if r.ContentLength > limit {
				w.Header().Set("Connection", "close")
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		rt.handler.ServeHTTP(w, r)
	})
}

// recoverer turns a handler panic into a 500 and a log line, except
// http.ErrAbortHandler which aborts the response on purpose.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { //nolint:errorlint // sentinel value panicked as is
					panic(p)
				}
				s.log.Error("http handler panicked", "path", r.URL.Path, "panic", p)
				http.Error(w, "internal server error", http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// clientAddr is the client's address: the peer's, or, when the peer is a
// trusted proxy, the last address before the trusted proxies in Forwarded
// (RFC 7239) or X-Forwarded-For.
func (s *Server) clientAddr(r *http.Request) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	proxies := s.settings().cfg.TrustedProxies
	trusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range proxies {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if len(proxies) == 0 || !trusted(peer.Addr()) {
		return r.RemoteAddr
	}
	chain := forwardedFor(r.Header)
	// Walk from the nearest hop back; the first untrusted address is the client.
	client := peer.Addr()
	for i := len(chain) - 1; i >= 0; i-- {
		a, ok := parseHop(chain[i])
		if !ok {
			break
		}
		client = a
		if !trusted(a) {
			break
		}
	}
	return netip.AddrPortFrom(client.Unmap(), 0).String()
}

// forwardedFor returns the client chain of the Forwarded header's for=
// parameters if present, else of X-Forwarded-For, oldest first.
func forwardedFor(h http.Header) []string {
	var out []string
	for _, line := range h.Values("Forwarded") {
		for _, elem := range strings.Split(line, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					out = append(out, strings.Trim(v, `"`))
				}
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for _, a := range strings.Split(line, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out
}

// parseHop parses one address of a forwarding chain: 192.0.2.1,
// [2001:db8::1], [2001:db8::1]:4711 or 192.0.2.1:4711.
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return a, err == nil
}

// statusWriter records the status code; Unwrap keeps
// http.ResponseController working through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher (long polling, streaming).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// serveMetrics writes the Prometheus exposition.
func serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", metrics.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		return
	}
	_ = metrics.Default.WriteText(w)
}

// operator guards the operator pages (metrics, status): clients in
// [http] local_networks, or holders of an API token.
func (s *Server) operator(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.local(r) && !s.validToken(r) {
			http.Error(w, "forbidden: only for local networks or with an API token", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

// globalRoutes are the server's own routes, on every host.
func (s *Server) globalRoutes() []*route {
	cfg := s.settings().cfg
	var out []*route
	add := func(method, path string, h http.Handler) {
		out = append(out, &route{method: method, path: path, handler: h})
	}
	if cfg.MetricsPath != "" {
		add(http.MethodGet, cfg.MetricsPath, s.operator(serveMetrics))
	}
	if cfg.StatusPath != "" {
		add(http.MethodGet, cfg.StatusPath, s.operator(s.serveStatus))
	}
	for _, a := range s.apiRoutes() {
		add(a.method, a.path, a.handler)
	}
	return out
}
