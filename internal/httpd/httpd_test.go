package httpd_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/message"
	_ "github.com/metronome-xmpp/metronome/modules/presence"
	_ "github.com/metronome-xmpp/metronome/modules/roster"
)

const token = "test-token-0123456789abcdef"

func newServer(t *testing.T, extra string) *xmpptest.Server {
	t.Helper()
	return xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message"),
		xmpptest.HTTP(`api_tokens = ["`+token+`"]`+"\n"+extra))
}

// client returns an HTTPS client that dials srv's listener whatever the URL's
// host, with HTTP/2 (h2 true) or HTTP/1.1 only.
func client(srv *xmpptest.Server, h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}, //nolint:gosec // self-signed test certificate
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, srv.HTTPSAddr)
		},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

type call struct {
	method, path, body, token string
	header                    map[string]string
}

func do(t *testing.T, c *http.Client, k call) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if k.body != "" {
		body = strings.NewReader(k.body)
	}
	req, err := http.NewRequest(k.method, "https://localhost"+k.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if k.token != "" {
		req.Header.Set("Authorization", "Bearer "+k.token)
	}
	if k.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for h, v := range k.header {
		req.Header.Set(h, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", k.method, k.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading: %v", k.method, k.path, err)
	}
	return resp, string(b)
}

func expect(t *testing.T, c *http.Client, k call, status int) string {
	t.Helper()
	resp, body := do(t, c, k)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", k.method, k.path, resp.StatusCode, status, body)
	}
	return body
}

func TestHTTP1AndHTTP2OverTLS(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	for _, h2 := range []bool{false, true} {
		resp, body := do(t, client(srv, h2), call{method: "GET", path: "/api/openapi.json"})
		want := 1
		if h2 {
			want = 2
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != want {
			t.Fatalf("h2=%v: %s status %d: %s", h2, resp.Proto, resp.StatusCode, body)
		}
		// The certificate is the host's, chosen by SNI.
		if names := resp.TLS.PeerCertificates[0].DNSNames; len(names) == 0 || names[0] != "localhost" {
			t.Errorf("certificate names %v", names)
		}
	}
}

func TestAdminAPINeedsToken(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := client(srv, true)
	for _, ep := range srv.HTTP.APIEndpoints() {
		method, path, _ := strings.Cut(ep, " ")
		if path == "/api/openapi.json" {
			continue
		}
		path = strings.ReplaceAll(path, "{jid}", "romeo@localhost")
		body := ""
		if method == "POST" || method == "PUT" {
			body = `{}`
		}
		for _, tok := range []string{"", "wrong-token-0123456789abcdef"} {
			resp, b := do(t, c, call{method: method, path: path, body: body, token: tok})
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s with token %q: status %d, want 401: %s", ep, tok, resp.StatusCode, b)
			}
		}
	}
}

func TestAdminAPIDisabledWithoutTokens(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.HTTP(""))
	c := client(srv, false)
	expect(t, c, call{method: "GET", path: "/api/status", token: token}, http.StatusForbidden)
}

func TestAdminAPIUsers(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := client(srv, true)
	expect(t, c, call{method: "POST", path: "/api/users", token: token, body: `{"jid":"romeo@localhost","password":"pw1"}`}, http.StatusCreated)
	expect(t, c, call{method: "POST", path: "/api/users", token: token, body: `{"jid":"romeo@localhost","password":"pw1"}`}, http.StatusConflict)
	expect(t, c, call{method: "POST", path: "/api/users", token: token, body: `{"jid":"romeo@nowhere.example","password":"x"}`}, http.StatusNotFound)
	expect(t, c, call{method: "POST", path: "/api/users", token: token, body: `{"jid":"not a jid@@","password":"x"}`}, http.StatusBadRequest)
	expect(t, c, call{method: "POST", path: "/api/users", token: token, body: `{"jid":"x@localhost","pass":"x"}`}, http.StatusBadRequest)
	expect(t, c, call{method: "POST", path: "/api/users", token: token, body: `{"jid":"juliet@localhost","password":"pw2"}`}, http.StatusCreated)

	body := expect(t, c, call{method: "GET", path: "/api/users?host=localhost", token: token}, http.StatusOK)
	var list struct{ Users []string }
	if err := json.Unmarshal([]byte(body), &list); err != nil || strings.Join(list.Users, ",") != "juliet@localhost,romeo@localhost" {
		t.Fatalf("users = %s (%v)", body, err)
	}
	expect(t, c, call{method: "GET", path: "/api/users?host=other.example", token: token}, http.StatusNotFound)

	expect(t, c, call{method: "PUT", path: "/api/users/romeo@localhost/password", token: token, body: `{"password":"new"}`}, http.StatusNoContent)
	srv.Login(t, "romeo@localhost/orchard", "new").Close()
	expect(t, c, call{method: "PUT", path: "/api/users/nobody@localhost/password", token: token, body: `{"password":"new"}`}, http.StatusNotFound)

	expect(t, c, call{method: "DELETE", path: "/api/users/juliet@localhost", token: token}, http.StatusNoContent)
	expect(t, c, call{method: "DELETE", path: "/api/users/juliet@localhost", token: token}, http.StatusNotFound)
	body = expect(t, c, call{method: "GET", path: "/api/users", token: token}, http.StatusOK)
	if strings.Contains(body, "juliet") {
		t.Errorf("deleted user still listed: %s", body)
	}
}

func TestAdminAPISessionsAndMessages(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	juliet.Send(t, `<presence/>`)
	juliet.Expect(t, `<presence from="juliet@localhost/balcony"/>`)
	c := client(srv, true)

	body := expect(t, c, call{method: "GET", path: "/api/sessions", token: token}, http.StatusOK)
	var ss struct {
		Sessions []struct {
			JID, Transport string
			Secure         bool
		}
	}
	if err := json.Unmarshal([]byte(body), &ss); err != nil || len(ss.Sessions) != 2 ||
		ss.Sessions[0].JID != "juliet@localhost/balcony" || ss.Sessions[0].Transport != "tcp" || !ss.Sessions[0].Secure {
		t.Fatalf("sessions = %s (%v)", body, err)
	}

	// As the server, to a full JID.
	expect(t, c, call{method: "POST", path: "/api/messages", token: token,
		body: `{"to":"juliet@localhost/balcony","body":"from the admins","subject":"hello"}`}, http.StatusAccepted)
	juliet.Expect(t, `<message from="localhost" to="juliet@localhost/balcony"><subject>hello</subject><body>from the admins</body></message>`)
	// As a user.
	expect(t, c, call{method: "POST", path: "/api/messages", token: token,
		body: `{"from":"romeo@localhost","to":"juliet@localhost","type":"chat","body":"hi"}`}, http.StatusAccepted)
	juliet.Expect(t, `<message from="romeo@localhost" type="chat"><body>hi</body></message>`)
	expect(t, c, call{method: "POST", path: "/api/messages", token: token,
		body: `{"from":"ghost@localhost","to":"juliet@localhost","body":"boo"}`}, http.StatusNotFound)
	expect(t, c, call{method: "POST", path: "/api/messages", token: token, body: `{"to":"juliet@localhost"}`}, http.StatusBadRequest)
	expect(t, c, call{method: "POST", path: "/api/messages", token: token, body: `{"to":"juliet@localhost","body":"x","type":"groupchat"}`}, http.StatusBadRequest)

	// Announcement to everyone online.
	body = expect(t, c, call{method: "POST", path: "/api/announcements", token: token, body: `{"body":"maintenance at noon"}`}, http.StatusOK)
	if !strings.Contains(body, `"sent": 2`) {
		t.Errorf("announce = %s", body)
	}
	romeo.Expect(t, `<message from="localhost" to="romeo@localhost/orchard"><body>maintenance at noon</body></message>`)
	juliet.Expect(t, `<message from="localhost"><body>maintenance at noon</body></message>`)

	// Kick one session by full JID ('/' escaped), then nothing left to kick.
	expect(t, c, call{method: "DELETE", path: "/api/sessions/romeo@localhost%2Forchard?reason=bye", token: token}, http.StatusOK)
	// Closing is asynchronous: wait until the session is gone.
	for deadline := time.Now().Add(20 * time.Second); ; {
		body := expect(t, c, call{method: "GET", path: "/api/sessions", token: token}, http.StatusOK)
		if !strings.Contains(body, "romeo@") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kicked session still listed: %s", body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	expect(t, c, call{method: "DELETE", path: "/api/sessions/romeo@localhost", token: token}, http.StatusNotFound)
	expect(t, c, call{method: "DELETE", path: "/api/sessions/not-a-jid", token: token}, http.StatusBadRequest)

	// Status and statistics.
	body = expect(t, c, call{method: "GET", path: "/api/status", token: token}, http.StatusOK)
	var st struct {
		Version  string
		Sessions int
		Hosts    []struct {
			Name     string
			Sessions int
			Modules  []string
		}
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Version == "" || len(st.Hosts) != 1 ||
		st.Hosts[0].Name != "localhost" || !strings.Contains(strings.Join(st.Hosts[0].Modules, ","), "roster") {
		t.Fatalf("status = %s (%v)", body, err)
	}
	body = expect(t, c, call{method: "GET", path: "/api/stats", token: token}, http.StatusOK)
	if !strings.Contains(body, `"stanzas_in"`) || !strings.Contains(body, `"hosts"`) {
		t.Errorf("stats = %s", body)
	}
}

func TestOpenAPIDocumentListsEveryEndpoint(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	body := expect(t, client(srv, false), call{method: "GET", path: "/api/openapi.json"}, http.StatusOK)
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi = %q", v)
	}
	paths, _ := doc["paths"].(map[string]any)
	implemented := map[string]bool{}
	for _, ep := range srv.HTTP.APIEndpoints() {
		implemented[ep] = true
		method, path, _ := strings.Cut(ep, " ")
		item, _ := paths[path].(map[string]any)
		op, _ := item[strings.ToLower(method)].(map[string]any)
		if op == nil {
			t.Errorf("%s is implemented but not documented", ep)
			continue
		}
		if _, ok := op["responses"].(map[string]any); !ok {
			t.Errorf("%s: no responses", ep)
		}
	}
	for path, item := range paths {
		for method := range item.(map[string]any) {
			if !implemented[strings.ToUpper(method)+" "+path] {
				t.Errorf("%s %s is documented but not implemented", method, path)
			}
		}
	}
	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				var cur any = doc
				for _, p := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, _ := cur.(map[string]any)
					cur = m[p]
				}
				if cur == nil {
					t.Errorf("unresolved $ref %s", ref)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	srv := newServer(t, `trusted_proxies = ["127.0.0.1"]`+"\nmetrics_listen = \"127.0.0.1:0\"")
	srv.CreateUser(t, "romeo@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	romeo.Send(t, `<iq type="get" id="r1"><query xmlns="jabber:iq:roster"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="r1"/>`)
	c := client(srv, true)
	expect(t, c, call{method: "GET", path: "/api/openapi.json"}, http.StatusOK)
	resp, body := do(t, c, call{method: "GET", path: "/metrics"})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		"# TYPE metronome_sessions gauge",
		`metronome_sessions_opened_total{transport="tcp"}`,
		`metronome_stanzas_total{direction="in",kind="message"}`,
		"# TYPE metronome_route_duration_seconds histogram",
		`metronome_route_duration_seconds_bucket{le="+Inf"}`,
		"metronome_auth_failures_total ",
		`metronome_http_requests_total{route="GET /api/openapi.json",method="GET",code="2xx"}`,
		"# TYPE metronome_storage_duration_seconds histogram",
		`metronome_build_info{version="`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Every sample line is "name{labels} value".
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i <= 0 || strings.ContainsAny(line[i+1:], "{}\" ") {
			t.Errorf("malformed sample %q", line)
		}
	}
	// A client behind the trusted proxy is not local: no metrics without a token.
	expect(t, c, call{method: "GET", path: "/metrics", header: map[string]string{"X-Forwarded-For": "203.0.113.7"}}, http.StatusForbidden)
	expect(t, c, call{method: "GET", path: "/metrics", token: token, header: map[string]string{"X-Forwarded-For": "203.0.113.7"}}, http.StatusOK)
	// The dedicated listener.
	mr, err := http.Get("http://" + srv.HTTP.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	if mr.StatusCode != 200 || !strings.Contains(string(mb), "metronome_stanzas_total") {
		t.Errorf("metrics listener: %d", mr.StatusCode)
	}
}

func TestStatusPage(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	resp, body := do(t, client(srv, true), call{method: "GET", path: "/status"})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"<h1>Metronome</h1>", "Uptime", "<td>localhost</td>", "<code>roster</code>", "<td>tcp</td>"} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("status page has a script")
	}
}

func TestOversizedBody(t *testing.T) {
	t.Parallel()
	srv := newServer(t, `max_body_size = "2KB"`)
	c := client(srv, true)
	big := `{"jid":"romeo@localhost","password":"` + strings.Repeat("x", 4000) + `"}`
	expect(t, c, call{method: "POST", path: "/api/users", token: token, body: big}, http.StatusRequestEntityTooLarge)
	// Without Content-Length (chunked): the limit applies while reading.
	req, _ := http.NewRequest("POST", "https://localhost/api/users", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.ContentLength = -1
	resp, err := client(srv, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversized body: %d", resp.StatusCode)
	}
	// The server is fine afterwards.
	expect(t, c, call{method: "POST", path: "/api/users", token: token, body: `{"jid":"romeo@localhost","password":"pw"}`}, http.StatusCreated)
}

func TestSlowHeadersAreDropped(t *testing.T) {
	t.Parallel()
	srv := newServer(t, `read_header_timeout = "1s"`)
	slow, err := net.Dial("tcp", srv.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := io.WriteString(slow, "GET /api/openapi.json HTTP/1.1\r\nHost: localhost\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// Others are served meanwhile.
	resp, err := http.Get("http://" + srv.HTTPAddr + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("plain listener: %d", resp.StatusCode)
	}
	// The slow client is cut off (the deadline here only bounds a failing test).
	_ = slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(slow)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept a client with incomplete headers open (read %q)", b)
	}
	if len(b) > 0 && !strings.Contains(string(b), " 408 ") {
		t.Errorf("unexpected answer to incomplete headers: %q", b)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	srv := newServer(t, `cors_origins = ["https://chat.example.org"]`)
	c := client(srv, true)
	pre := func(origin string) *http.Response {
		resp, _ := do(t, c, call{method: "OPTIONS", path: "/api/users", header: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}})
		return resp
	}
	if r := pre("https://chat.example.org"); r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://chat.example.org" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("allowed preflight: %d %v", r.StatusCode, r.Header)
	}
	if r := pre("https://evil.example"); r.StatusCode != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("refused preflight: %d %v", r.StatusCode, r.Header)
	}
	resp, _ := do(t, c, call{method: "GET", path: "/api/status", token: token, header: map[string]string{"Origin": "https://chat.example.org"}})
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://chat.example.org" {
		t.Errorf("actual request: %v", resp.Header)
	}
}

func TestTokensFileAndReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	if err := os.WriteFile(file, []byte("# admins\nfile-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, "api_tokens_file = "+strconv.Quote(file))
	c := client(srv, false)
	expect(t, c, call{method: "GET", path: "/api/status", token: "file-token-0123456789abcdef"}, http.StatusOK)
	if err := os.WriteFile(file, []byte("other-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.HTTP.Reload(srv.HTTP.Config()); err != nil {
		t.Fatal(err)
	}
	expect(t, c, call{method: "GET", path: "/api/status", token: "file-token-0123456789abcdef"}, http.StatusUnauthorized)
	expect(t, c, call{method: "GET", path: "/api/status", token: "other-token-0123456789abcdef"}, http.StatusOK)
	cfg := srv.HTTP.Config()
	cfg.ListenTLS = []string{"127.0.0.1:1"}
	if err := srv.HTTP.Reload(cfg); err == nil {
		t.Error("a listener change was accepted at run time")
	}
}
