package httpd

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/metronome-xmpp/metronome/module"
)

func testServer(t *testing.T, mod func(*Config)) *Server {
	t.Helper()
	cfg := Defaults()
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func text(s string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, s) })
}

func serve(s *Server, method, host, path string) (int, string) {
	r := httptest.NewRequest(method, "http://"+host+path, nil)
	w := httptest.NewRecorder()
	s.handler().ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func TestRoutesPerHost(t *testing.T) {
	s := testServer(t, nil)
	a := &hostRouter{s: s, host: "a.example", owner: 1}
	b := &hostRouter{s: s, host: "b.example", owner: 2}
	if err := a.Handle("GET /.well-known/x", text("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.Handle("GET /.well-known/x", text("b")); err != nil {
		t.Fatal(err)
	}
	if err := a.Handle("GET /only-a", text("only a")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, path, want string }{
		{"a.example", "/.well-known/x", "a"},
		{"b.example:5281", "/.well-known/x", "b"},
		{"192.0.2.1", "/only-a", "only a"}, // one host registered it: the fallback
		{"b.example", "/only-a", "only a"},
	} {
		if code, body := serve(s, "GET", tc.host, tc.path); code != 200 || body != tc.want {
			t.Errorf("%s%s: %d %q, want %q", tc.host, tc.path, code, body, tc.want)
		}
	}
	if code, _ := serve(s, "GET", "192.0.2.1", "/.well-known/x"); code != 404 {
		t.Errorf("ambiguous without default_host: %d", code)
	}
	// default_host settles it.
	cfg := s.Config()
	cfg.DefaultHost = "b.example"
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if code, body := serve(s, "GET", "192.0.2.1", "/.well-known/x"); code != 200 || body != "b" {
		t.Errorf("default host: %d %q", code, body)
	}
}

func TestRouteRegistrationRules(t *testing.T) {
	s := testServer(t, nil)
	r := &hostRouter{s: s, host: "a.example", owner: 1}
	for _, bad := range []string{"/", "GET /", "/api/x", "/metrics", "/status", "/{x...}", "example.org/x", "GET /x/{bad"} {
		if err := r.Handle(bad, text("x")); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
	if err := r.Handle("GET /x", text("1")); err != nil {
		t.Fatal(err)
	}
	if err := r.Handle("GET /x", text("2")); err == nil {
		t.Error("the same module generation registered a pattern twice")
	}
	// The next generation replaces the route; the old one's cleanup leaves it.
	next := &hostRouter{s: s, host: "a.example", owner: 2}
	if err := next.Handle("GET /x", text("2")); err != nil {
		t.Fatal(err)
	}
	if err := r.Handle("GET /old-only", text("old")); err != nil {
		t.Fatal(err)
	}
	s.routes.drop(1)
	if code, body := serve(s, "GET", "a.example", "/x"); code != 200 || body != "2" {
		t.Errorf("after reload: %d %q", code, body)
	}
	if code, _ := serve(s, "GET", "a.example", "/old-only"); code != 404 {
		t.Errorf("a route of the unloaded generation is still served: %d", code)
	}
}

func TestBodyLimitPerRoute(t *testing.T) {
	s := testServer(t, func(c *Config) { c.MaxBodySize = 10 })
	r := &hostRouter{s: s, host: "a.example", owner: 1}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		_, _ = w.Write(b)
	})
	_ = r.Handle("POST /small", echo)
	_ = r.Handle("POST /big", echo, module.MaxBody(-1))
	post := func(path string, n int) int {
		req := httptest.NewRequest("POST", "http://a.example"+path, strings.NewReader(strings.Repeat("x", n)))
		w := httptest.NewRecorder()
		s.handler().ServeHTTP(w, req)
		return w.Code
	}
	if c := post("/small", 10); c != 200 {
		t.Errorf("at the limit: %d", c)
	}
	if c := post("/small", 11); c != 413 {
		t.Errorf("over the limit: %d", c)
	}
	if c := post("/big", 1000); c != 200 {
		t.Errorf("route without server limit: %d", c)
	}
}

func TestClientAddr(t *testing.T) {
	s := testServer(t, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	})
	for _, tc := range []struct {
		name, peer string
		hdr        map[string]string
		want       string
	}{
		{"direct", "192.0.2.1:1234", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "192.0.2.1:1234"},
		{"proxy xff", "10.1.2.3:999", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9:0"},
		{"proxy chain", "10.1.2.3:999", map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.9, 10.9.9.9"}, "203.0.113.9:0"},
		{"spoofed first hop", "10.1.2.3:999", map[string]string{"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}, "203.0.113.9:0"},
		{"forwarded", "[::1]:999", map[string]string{"Forwarded": `for="[2001:db8::7]:4711";proto=https, for=10.0.0.5`}, "[2001:db8::7]:0"},
		{"proxy without header", "10.1.2.3:999", nil, "10.1.2.3:0"},
		{"garbage", "10.1.2.3:999", map[string]string{"X-Forwarded-For": "unknown"}, "10.1.2.3:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			if got := s.clientAddr(r); got != tc.want {
				t.Errorf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMetricsAndStatusNeedLocalClient(t *testing.T) {
	s := testServer(t, func(c *Config) { c.APITokens = []string{"tok-0123456789abcdef"} })
	r := httptest.NewRequest("GET", "http://x/metrics", nil)
	r.RemoteAddr = "203.0.113.1:5000"
	w := httptest.NewRecorder()
	s.handler().ServeHTTP(w, r)
	if w.Code != 403 {
		t.Errorf("remote client: %d", w.Code)
	}
	r.Header.Set("Authorization", "Bearer tok-0123456789abcdef")
	w = httptest.NewRecorder()
	s.handler().ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("remote client with token: %d", w.Code)
	}
}
