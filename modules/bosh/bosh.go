// Package bosh implements BOSH, XEP-0124 (Bidirectional-streams Over
// Synchronous HTTP, version 1.11) with XEP-0206 (XMPP Over BOSH), as
// module "bosh": it registers an HTTP route (default /http-bind) on the
// server's HTTP listeners and acts as a connection manager. Each BOSH
// session runs an ordinary client session (internal/c2s with
// c2s.BOSHFraming) over a virtual connection: the payloads of the
// client's <body/> requests are fed to the stream in 'rid' order, and
// what the stream writes is returned in the responses.
//
// Implemented: session creation (to, xml:lang, ver, wait, hold, content,
// ack, XEP-0206 xmpp:version and from; route is ignored), request holding
// with wait/hold/requests, the rid window, out-of-order requests buffered
// until the gap fills, retransmission of cached responses for repeated
// rids, key sequencing (§15.3), acknowledgements (§9, without
// 'report'/'time'), overactivity and
// polling limits, inactivity and pause (maxpause), client termination
// with final payloads, stream restarts (xmpp:restart), the terminal
// binding conditions with the legacy HTTP codes for clients without
// 'ver', CORS, and the script syntax of XEP-0252 (GET ?<body>, answered
// _BOSH_("...")) plus the JSONP form Metronome's mod_bosh offers
// (GET ?callback=NAME&data=<body>, answered NAME({"reply":"..."});).
//
// Not implemented: multiple streams per session (§16), compression
// (Accept-Encoding), the 'report' attribute, and §11's second
// overactivity rule for non-polling sessions (it races with legitimate
// clients; see README.md).
package bosh

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/metronome-xmpp/metronome/internal/c2s"
	"github.com/metronome-xmpp/metronome/internal/httpd"
	"github.com/metronome-xmpp/metronome/module"
)

// Defaults of the options.
const (
	DefaultPath          = "/http-bind"
	DefaultMaxWait       = 60 * time.Second
	DefaultMaxInactivity = 60 * time.Second
	DefaultMaxPause      = 300 * time.Second
	DefaultMaxRequests   = 2
	DefaultMaxHold       = 1
	DefaultPolling       = 5 * time.Second
	DefaultMaxSessions   = 10000
)

// contentType is the default Content-Type of the responses (§6).
const contentType = "text/xml; charset=utf-8"

func init() { module.Register(new(BOSH)) }

// BOSH is the module and its configuration ([modules.bosh]).
type BOSH struct {
	// Path is the route's path.
	Path string `json:"path"`
	// AllowedOrigins are the web origins whose pages may use the
	// endpoint, as for the websocket module; "*" allows any.
	AllowedOrigins []string `json:"allowed_origins"`
	// MaxWait bounds the 'wait' a client may ask for.
	MaxWait module.Duration `json:"max_wait"`
	// MaxInactivity is the 'inactivity' announced: how long a session
	// may go without a request held before it ends.
	MaxInactivity module.Duration `json:"max_inactivity"`
	// MaxPause is the 'maxpause' announced (0: no pausing).
	MaxPause module.Duration `json:"max_pause"`
	// MaxRequests bounds 'requests' (simultaneous requests).
	MaxRequests int `json:"max_requests"`
	// MaxHold bounds the 'hold' a client may ask for.
	MaxHold int `json:"max_hold"`
	// Polling is the shortest polling interval of polling sessions.
	Polling module.Duration `json:"polling"`
	// MaxBody bounds one request body; 0 means the c2s stanza limit plus
	// 8 KiB for the wrapper.
	MaxBody module.Size `json:"max_body"`
	// MaxSessions bounds the BOSH sessions of the process.
	MaxSessions int `json:"max_sessions"`

	srv c2s.Server
	log *slog.Logger
}

// Info implements module.Module.
func (*BOSH) Info() module.Info {
	return module.Info{ID: "mod.bosh", Requires: []string{"http"}, New: func() module.Module {
		return &BOSH{
			Path:          DefaultPath,
			MaxWait:       module.Duration(DefaultMaxWait),
			MaxInactivity: module.Duration(DefaultMaxInactivity),
			MaxPause:      module.Duration(DefaultMaxPause),
			MaxRequests:   DefaultMaxRequests,
			MaxHold:       DefaultMaxHold,
			Polling:       module.Duration(DefaultPolling),
			MaxSessions:   DefaultMaxSessions,
		}
	}}
}

// Validate implements module.Validator.
func (m *BOSH) Validate() error {
	if !strings.HasPrefix(m.Path, "/") || strings.ContainsAny(m.Path, " {}") {
		return fmt.Errorf("path: %q must be an absolute URL path", m.Path)
	}
	if err := module.CheckOrigins("allowed_origins", m.AllowedOrigins); err != nil {
		return err
	}
	switch {
	case m.MaxWait.D() < time.Second:
		return errors.New("max_wait: must be at least 1s")
	case m.MaxInactivity.D() < time.Second:
		return errors.New("max_inactivity: must be at least 1s")
	case m.MaxPause.D() < 0:
		return errors.New("max_pause: must not be negative")
	case m.MaxRequests < 1:
		return errors.New("max_requests: must be at least 1")
	case m.MaxHold < 0 || m.MaxHold >= m.MaxRequests:
		return errors.New("max_hold: must be at least 0 and less than max_requests")
	case m.Polling.D() < 0:
		return errors.New("polling: must not be negative")
	case m.MaxBody < 0:
		return errors.New("max_body: must not be negative")
	case m.MaxSessions < 1:
		return errors.New("max_sessions: must be at least 1")
	}
	return nil
}

// Provision implements module.Provisioner.
func (m *BOSH) Provision(h module.Host) error {
	m.log = h.Logger()
	r, srv, ok, err := c2s.HTTPTransport(h)
	if !ok {
		return err // nil: no HTTP or no core in this process (offline tools)
	}
	m.srv = srv
	if sn, ok := r.(httpd.ShutdownNotifier); ok {
		sn.OnShutdown(func() { sessions.shutdown(srv) })
	}
	// The handler limits bodies itself (max_body, answered 413).
	return r.Handle(m.Path, handler{m}, module.MaxBody(-1))
}

func (m *BOSH) maxBody() int64 {
	if m.MaxBody > 0 {
		return int64(m.MaxBody)
	}
	limit := int64(m.srv.C2SConfig().MaxStanzaSize)
	if limit <= 0 {
		limit = 1 << 20
	}
	return limit + 8<<10
}

// reqForm is how a request came and how its response is written.
type reqForm struct {
	callback string // JSONP: the function name; "_BOSH_" for XEP-0252
}

func (m *BOSH) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !m.cors(w, r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	var (
		data []byte
		form reqForm
	)
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
		var err error
		data, err = io.ReadAll(http.MaxBytesReader(w, r.Body, m.maxBody()))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			w.Header().Set("Connection", "close")
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err != nil {
			return // the client went away
		}
	case http.MethodGet, http.MethodHead:
		var ok bool
		data, form, ok = scriptRequest(r.URL.RawQuery)
		if !ok {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "This is an XMPP over BOSH endpoint (XEP-0124, XEP-0206): POST <body/> elements here.\n")
			return
		}
		if int64(len(data)) > m.maxBody() {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b, err := parseBody(data)
	if err != nil {
		m.writeReply(w, form, contentType, reply{body: terminateBody(condBadRequest, nil)})
		return
	}
	if b.sid == "" {
		m.create(w, r, b, form)
		return
	}
	s := sessions.get(b.sid)
	if s == nil || s.srv != m.srv {
		m.writeReply(w, form, contentType, reply{body: terminateBody(condItemNotFound, nil)})
		return
	}
	ch, abort := s.request(b, secure(r), time.Now())
	if abort {
		// §15.1: close the connection, leave the session alone.
		panic(http.ErrAbortHandler)
	}
	m.wait(w, r, form, s.ctype, s.lim.wait, ch)
}

// wait writes the reply that ch delivers, unless the client goes away
// first (the response is then cached for its retry).
func (m *BOSH) wait(w http.ResponseWriter, r *http.Request, form reqForm, ctype string, wait time.Duration, ch chan reply) {
	// The server's read and write timeouts must leave room for the wait
	// (a read deadline that passes would end the request's context).
	rc := http.NewResponseController(w)
	dl := time.Now().Add(wait + 30*time.Second)
	_ = rc.SetReadDeadline(dl)
	_ = rc.SetWriteDeadline(dl)
	select {
	case rep := <-ch:
		m.writeReply(w, form, ctype, rep)
	case <-r.Context().Done():
	}
}

func (m *BOSH) writeReply(w http.ResponseWriter, form reqForm, ctype string, rep reply) {
	h := w.Header()
	h.Set("Cache-Control", "no-store, no-cache")
	if rep.status != 0 {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(rep.status)
		return
	}
	if form.callback == "" {
		h.Set("Content-Type", ctype)
		_, _ = w.Write(rep.body)
		return
	}
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Pragma", "no-cache")
	_, _ = w.Write(scriptReply(form.callback, rep.body))
}

// create handles a session creation request (§7).
func (m *BOSH) create(w http.ResponseWriter, r *http.Request, b *body, form reqForm) {
	fail := func(cond string) {
		rep := reply{body: terminateBody(cond, nil)}
		if b.ver == "" {
			if st := legacyStatus(cond); st != 0 {
				rep = reply{status: st}
			}
		}
		m.writeReply(w, form, contentType, rep)
	}
	ctype := contentType
	if b.content != "" {
		if _, _, err := mime.ParseMediaType(b.content); err != nil || strings.ContainsAny(b.content, "\r\n") {
			fail(condBadRequest)
			return
		}
		ctype = b.content
	}
	if b.to == "" {
		fail(condImproperAddressing)
		return
	}
	if b.xmppVersion != "" {
		if major, _, _ := strings.Cut(b.xmppVersion, "."); major != "1" {
			fail(condUndefined)
			return
		}
	}
	lim := m.limits(b)
	release, ok := m.srv.AcquireRemote(r.RemoteAddr)
	if !ok {
		m.log.Warn("BOSH session refused: too many connections from one address", "addr", r.RemoteAddr)
		fail(condPolicyViolation)
		return
	}
	s := &session{
		srv: m.srv, sid: newSID(), lim: lim, secure: secure(r), ver: b.ver, acks: b.ack >= 0,
		to: b.to, lang: b.lang, from: b.from, ctype: ctype, inReady: make(chan struct{}, 1),
	}
	s.log = m.log
	s.unreg = func() { sessions.remove(s) }
	if !sessions.add(s, m.MaxSessions) {
		release()
		m.log.Warn("BOSH session refused: max_sessions reached", "max_sessions", m.MaxSessions)
		fail(condUndefined)
		return
	}
	ch := s.start(b)
	local := ""
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		local = a.String()
	}
	c := &conn{s: s, local: addr(local), remote: addr(r.RemoteAddr)}
	// The session belongs to the c2s server from here: ServeFramed
	// negotiates on this goroutine and returns (or ends) with the stream.
	go m.srv.ServeFramed(c, c2s.BOSHFraming, s.secure, release)
	m.wait(w, r, form, ctype, lim.wait, ch)
}

// limits computes a new session's rules from the request and the options.
func (m *BOSH) limits(b *body) limits {
	lim := limits{
		wait:       m.MaxWait.D(),
		inactivity: m.MaxInactivity.D(),
		maxPause:   m.MaxPause.D(),
		polling:    m.Polling.D(),
		hold:       m.MaxHold,
	}
	if b.wait >= 0 && time.Duration(b.wait)*time.Second < lim.wait {
		lim.wait = time.Duration(b.wait) * time.Second
	}
	if b.hold >= 0 && b.hold < lim.hold {
		lim.hold = b.hold
	}
	if lim.wait == 0 {
		lim.hold = 0 // wait='0': a polling session (§12)
	}
	lim.requests = min(lim.hold+1, m.MaxRequests)
	if lim.hold == 0 && lim.inactivity < 2*lim.polling {
		// §12: polling sessions get more than the polling interval.
		lim.inactivity = 2 * lim.polling
	}
	body := int(m.maxBody())
	lim.maxIn = 4 * body
	lim.maxOut = max(m.srv.C2SConfig().MaxQueue, 4*body)
	return lim
}

// cors applies allowed_origins (as the websocket module does) and adds
// the CORS response headers; false means the origin is refused.
func (m *BOSH) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	h := w.Header()
	if h.Get("Access-Control-Allow-Origin") == "" && // not allowed by [http] cors_origins
		!module.OriginAllowed(r, m.AllowedOrigins) {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "86400")
	return true
}

var _ httpd.Preflighter = handler{}

// handler is the route's handler. It answers CORS preflights itself
// (httpd.Preflighter) so that allowed_origins applies to them too.
type handler struct{ m *BOSH }

// ServeHTTP implements http.Handler.
func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.m.serveHTTP(w, r) }

// ServePreflight implements httpd.Preflighter.
func (h handler) ServePreflight(w http.ResponseWriter, r *http.Request) {
	if !h.m.cors(w, r) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// secure says whether the session counts as encrypted: the request came
// over TLS, from a trusted proxy (which terminates TLS), or from the
// loopback interface (a local proxy) — the websocket module's rule.
func secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	peer := httpd.PeerAddr(r)
	if peer != "" && peer != r.RemoteAddr {
		return true
	}
	ap, err := netip.ParseAddrPort(peer)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// scriptRequest extracts the <body/> of a GET request: the JSONP form
// (?callback=NAME&data=<body>) or XEP-0252's (?<url-encoded body>).
func scriptRequest(raw string) ([]byte, reqForm, bool) {
	if raw == "" {
		return nil, reqForm{}, false
	}
	if q, err := url.ParseQuery(raw); err == nil && q.Has("callback") && q.Has("data") {
		cb := q.Get("callback")
		if !validCallback(cb) {
			return nil, reqForm{}, false
		}
		return []byte(q.Get("data")), reqForm{callback: cb}, true
	}
	// XEP-0252 §3.1 leaves '+' unescaped (base64 SASL data has it): it
	// is not a space here.
	s, err := url.PathUnescape(raw)
	if err != nil {
		return nil, reqForm{}, false
	}
	if !strings.HasPrefix(strings.TrimSpace(s), "<") {
		return nil, reqForm{}, false
	}
	return []byte(s), reqForm{callback: "_BOSH_"}, true
}

// validCallback accepts JavaScript identifiers and dotted paths only, so
// that the reply cannot inject script.
func validCallback(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// scriptReply wraps a response body for a GET request: _BOSH_("...") for
// XEP-0252 §3.2, NAME({"reply":"..."}); for JSONP. JSON string escaping
// covers ECMAScript's (quotes, backslash, line terminators, U+2028/9,
// and <, > and & as \u escapes).
func scriptReply(callback string, body []byte) []byte {
	if callback == "_BOSH_" {
		s, _ := json.Marshal(string(body))
		out := append([]byte("_BOSH_("), escapeCf(s)...)
		return append(out, ')')
	}
	s, _ := json.Marshal(struct {
		Reply string `json:"reply"`
	}{string(body)})
	out := append([]byte(callback+"("), escapeCf(s)...)
	return append(out, ");"...)
}

// escapeCf replaces Unicode format characters (category Cf: U+200E and
// the like) with \u escapes, as XEP-0252 §3.2 requires; JSON leaves them
// as they are.
func escapeCf(b []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r >= 0x80 && unicode.Is(unicode.Cf, r) {
			out = append(out, b[last:i]...)
			if r > 0xFFFF {
				r1, r2 := utf16.EncodeRune(r)
				out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
			last = i + n
		}
		i += n
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}
