package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/standard"
)

func newServer(t *testing.T, users int) *xmpptest.Server {
	t.Helper()
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "ping"))
	for i := range users {
		srv.CreateUser(t, fmt.Sprintf("load%d@localhost", i), "secret")
	}
	return srv
}

func runTool(t *testing.T, args ...string) (int, string) {
	t.Helper()
	o, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("flags %q: %v", args, err)
	}
	o.progress = 0
	var out, log strings.Builder
	code := run(context.Background(), o, &out, &log)
	t.Logf("stdout:\n%s\nstderr:\n%s", out.String(), log.String())
	return code, out.String()
}

func TestIdle(t *testing.T) {
	t.Parallel()
	srv := newServer(t, 6)
	js := filepath.Join(t.TempDir(), "idle.json")
	code, out := runTool(t, "idle", "--addr", srv.C2SAddr, "--sessions", "6", "--password", "secret", "--hold", "200ms",
		"--settle", "10ms", "--server-pid", strconv.Itoa(os.Getpid()), "--json", js)
	if code != 0 || !strings.Contains(out, "UP sessions=6 ") || !strings.Contains(out, "MEMORY ") ||
		!strings.Contains(out, "DONE 6 sessions") || !strings.Contains(out, "RESULT OK") {
		t.Fatalf("exit %d", code)
	}
	var r result
	b, err := os.ReadFile(js)
	if err != nil || json.Unmarshal(b, &r) != nil {
		t.Fatalf("json: %v\n%s", err, b)
	}
	if !r.OK || r.Login == nil || r.Login.Attempted != 6 || r.Login.Failed != 0 || r.Login.P99ms <= 0 ||
		r.Idle == nil || r.Idle.RSSAfterKiB <= 0 || r.Mechanism != "SCRAM-SHA-1" {
		t.Fatalf("json result: %s", b)
	}
}

func TestRelogin(t *testing.T) {
	t.Parallel()
	srv := newServer(t, 4)
	js := filepath.Join(t.TempDir(), "idle.json")
	code, out := runTool(t, "idle", "--addr", srv.C2SAddr, "--sessions", "4", "--password", "secret", "--hold", "10ms",
		"--relogin", "--tls-resume", "--mechanism", "SCRAM-SHA-256", "--json", js)
	if code != 0 || !strings.Contains(out, "UP1 sessions=4 ") || !strings.Contains(out, "UP sessions=4 ") || !strings.Contains(out, "RESULT OK") {
		t.Fatalf("exit %d", code)
	}
	var r result
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &r); err != nil || r.FirstLogin == nil || r.Login == nil || r.Login.Failed != 0 || !r.Relogin || !r.TLSResume {
		t.Fatalf("json: %v\n%s", err, b)
	}
}

func TestChat(t *testing.T) {
	t.Parallel()
	srv := newServer(t, 10)
	for _, tls := range []bool{false, true} {
		js := filepath.Join(t.TempDir(), "chat.json")
		args := []string{"chat", "--sessions", "10", "--user", "load%d", "--domain", "localhost", "--password", "secret",
			"--rates", "1000,3000", "--step", "100ms", "--server-pid", strconv.Itoa(os.Getpid()), "--json", js}
		if tls {
			args = append(args, "--tls", "--addr", srv.TLSAddr, "--mechanism", "SCRAM-SHA-256")
		} else {
			args = append(args, "--addr", srv.C2SAddr)
		}
		code, out := runTool(t, args...)
		if code != 0 || !strings.Contains(out, "RESULT OK") {
			t.Fatalf("tls=%v: exit %d", tls, code)
		}
		var r result
		b, _ := os.ReadFile(js)
		if err := json.Unmarshal(b, &r); err != nil || len(r.Steps) != 2 {
			t.Fatalf("json: %v\n%s", err, b)
		}
		for i, want := range []int{100, 300} {
			s := r.Steps[i]
			if s.Sent != want || s.Delivered != want || s.Lost != 0 || s.NeverDelivered != 0 || s.ServerCPU < 0 {
				t.Fatalf("step %d: %+v", i, s)
			}
		}
	}
}

func TestMUC(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "ping", "disco"),
		xmpptest.Component("conference.localhost", "muc", ""))
	for i := range 12 {
		srv.CreateUser(t, fmt.Sprintf("load%d@localhost", i), "secret")
	}
	js := filepath.Join(t.TempDir(), "muc.json")
	// 12 sessions in rooms of 5: two rooms, two sessions left out.
	code, out := runTool(t, "muc", "--addr", srv.C2SAddr, "--sessions", "12", "--password", "secret",
		"--room-size", "5", "--rates", "500", "--step", "100ms", "--server-pid", strconv.Itoa(os.Getpid()), "--json", js)
	if code != 0 || !strings.Contains(out, "JOINED rooms=2 occupants=10") || !strings.Contains(out, "RESULT OK") {
		t.Fatalf("exit %d", code)
	}
	var r result
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &r); err != nil || len(r.Steps) != 1 || r.Rooms != 2 || r.RoomSize != 5 {
		t.Fatalf("json: %v\n%s", err, b)
	}
	// 50 messages, each to the 5 occupants of its room (the sender too).
	if s := r.Steps[0]; s.Sent != 50 || s.Expected != 250 || s.Delivered != 250 || s.NeverDelivered != 0 || s.Duplicates != 0 {
		t.Fatalf("step: %+v", s)
	}
}

// TestLostMessages sends to an account whose session is gone: the messages
// bounce (no offline storage here), and the tool must fail.
func TestLostMessages(t *testing.T) {
	t.Parallel()
	srv := newServer(t, 2)
	o, err := parseFlags([]string{"chat", "--addr", srv.C2SAddr, "--sessions", "2", "--password", "secret",
		"--rates", "1000", "--step", "20ms", "--drain", "300ms"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.progress = 0
	var out, log strings.Builder
	l := &loader{o: o, out: &out, log: &log, epoch: time.Now(), res: &result{}}
	l.wall0 = l.epoch.UnixNano()
	l.tr = newTraffic(l)
	ctx := context.Background()
	if failed := l.loginAll(ctx); failed != 0 {
		t.Fatalf("%d logins failed: %s", failed, log.String())
	}
	defer l.closeAll()
	l.client[1].close(time.Second) // session 1 leaves: its messages cannot be delivered
	if code := l.tr.run(ctx); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out.String())
	}
	s := l.res.Steps[0]
	// Session 1 can send nothing, and what session 0 sends to it bounces.
	if s.Sent == 0 || s.Sent == 20 || s.Delivered != 0 || s.Bounced != s.Sent || s.NeverDelivered != 20 ||
		!strings.Contains(l.res.Error, "20 never delivered") {
		t.Fatalf("unexpected result: %+v %q\n%s", s, l.res.Error, log.String())
	}
}

func TestLoginFailure(t *testing.T) {
	t.Parallel()
	srv := newServer(t, 2)
	code, out := runTool(t, "idle", "--addr", srv.C2SAddr, "--sessions", "3", "--password", "secret", "--hold", "1ms")
	if code != 1 || !strings.Contains(out, "FAILED sessions=3 up=2 failed=1") || !strings.Contains(out, "RESULT FAILED: 1 logins failed") {
		t.Fatalf("exit %d", code)
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--password", "p"},         // no scenario
		{"talk", "--password", "p"}, // unknown scenario
		{"idle"},                    // no password
		{"idle", "--password", "p", "--user", "load"},  // no %d
		{"idle", "--password", "p", "--user", "a%d%d"}, // two %d
		{"idle", "--password", "p", "--addr", "192.0.2.1:5222"},
		{"idle", "--password", "p", "--user", "u%d@example.org", "--domain", "example.net"},
		{"chat", "--password", "p", "--sessions", "1"},
		{"chat", "--password", "p", "--rates", "10,x"},
		{"chat", "--password", "p", "--rates", "-5"},
		{"muc", "--password", "p", "--sessions", "10", "--room-size", "20"},
		{"muc", "--password", "p", "--sessions", "100", "--room-size", "65"},
		{"idle", "--password", "p", "--mechanism", "PLAIN"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
	o, err := parseFlags([]string{"muc", "--password", "p", "--tls", "--user", "u%d", "--rates", "10, 20.5", "--room-size", "10"}, io.Discard)
	if err != nil || o.resolved != "127.0.0.1:5223" || o.domain != "localhost" || o.account(7) != "u7" ||
		o.service != "conference.localhost" || !slices.Equal(o.rates, []float64{10, 20.5}) {
		t.Fatalf("%+v %v", o, err)
	}
}

func TestProc(t *testing.T) {
	cpu, err := procCPU(os.Getpid())
	if err != nil || cpu < 0 {
		t.Fatalf("procCPU: %v %v", cpu, err)
	}
	rss, err := procRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("procRSS: %v %v", rss, err)
	}
	if _, err := procCPU(-1); err == nil {
		t.Fatal("procCPU(-1): no error")
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 50, 0.9: 90, 0.99: 99, 1: 100} {
		if got := percentile(lat, q); got != want {
			t.Errorf("p%v = %v, want %v", q, got, want)
		}
	}
}

func newWebServer(t *testing.T, users int) *xmpptest.Server {
	t.Helper()
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "ping", "websocket", "bosh"), xmpptest.HTTP(""))
	for i := range users {
		srv.CreateUser(t, fmt.Sprintf("load%d@localhost", i), "secret")
	}
	return srv
}

// TestWebTransports runs the idle and chat scenarios over WebSocket (with
// and without TLS) and BOSH (HTTPS and HTTP).
func TestWebTransports(t *testing.T) {
	t.Parallel()
	srv := newWebServer(t, 20)
	for _, tc := range []struct{ transport, url, name string }{
		{"websocket", "wss://" + srv.HTTPSAddr + "/xmpp-websocket", "WebSocket over TLS"},
		{"websocket", "ws://" + srv.HTTPAddr + "/xmpp-websocket", "WebSocket"},
		{"bosh", "https://" + srv.HTTPSAddr + "/http-bind", "BOSH over HTTPS"},
		{"bosh", "http://" + srv.HTTPAddr + "/http-bind", "BOSH over HTTP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := filepath.Join(t.TempDir(), "idle.json")
			code, out := runTool(t, "idle", "--transport", tc.transport, "--url", tc.url, "--sessions", "20", "--password", "secret",
				"--hold", "300ms", "--settle", "10ms", "--server-pid", strconv.Itoa(os.Getpid()), "--mechanism", "SCRAM-SHA-256", "--json", js)
			if code != 0 || !strings.Contains(out, "UP sessions=20 ") || !strings.Contains(out, "DONE 20 sessions") || !strings.Contains(out, "RESULT OK") {
				t.Fatalf("idle: exit %d", code)
			}
			var r result
			b, _ := os.ReadFile(js)
			if err := json.Unmarshal(b, &r); err != nil || r.Transport != tc.name || r.Server != tc.url || r.Login == nil || r.Login.Failed != 0 {
				t.Fatalf("idle json: %v\n%s", err, b)
			}
			js = filepath.Join(t.TempDir(), "chat.json")
			code, out = runTool(t, "chat", "--transport", tc.transport, "--url", tc.url, "--sessions", "20", "--password", "secret",
				"--rates", "1000", "--step", "200ms", "--drain", "10s", "--server-pid", strconv.Itoa(os.Getpid()), "--json", js)
			if code != 0 || !strings.Contains(out, "RESULT OK") {
				t.Fatalf("chat: exit %d", code)
			}
			b, _ = os.ReadFile(js)
			if err := json.Unmarshal(b, &r); err != nil || len(r.Steps) != 1 {
				t.Fatalf("chat json: %v\n%s", err, b)
			}
			if s := r.Steps[0]; s.Sent != 200 || s.Delivered != 200 || s.Lost != 0 || s.NeverDelivered != 0 || s.Duplicates != 0 || s.P99ms <= 0 {
				t.Fatalf("chat step: %+v", s)
			}
		})
	}
}

func TestEachElement(t *testing.T) {
	t.Parallel()
	type el struct {
		s        string
		name     string
		declared bool
	}
	for _, tc := range []struct {
		in   string
		want []el
		err  bool
	}{
		{`<presence/>`, []el{{`<presence/>`, "presence", false}}, false},
		{`<presence/><iq type="get" id="a"><ping xmlns="urn:xmpp:ping"/></iq>`,
			[]el{{`<presence/>`, "presence", false}, {`<iq type="get" id="a"><ping xmlns="urn:xmpp:ping"/></iq>`, "iq", false}}, false},
		{`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="X">eA==</auth>`,
			[]el{{`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="X">eA==</auth>`, "auth", true}}, false},
		{`<message to="a@b/c>d" id="m1"><body>1 2 &lt;x&gt;</body></message>`,
			[]el{{`<message to="a@b/c>d" id="m1"><body>1 2 &lt;x&gt;</body></message>`, "message", false}}, false},
		{`<stream:features xmlns:stream="x"/>`, []el{{`<stream:features xmlns:stream="x"/>`, "stream:features", true}}, false},
		{`<iq type='get' xmlns='jabber:client'/>`, []el{{`<iq type='get' xmlns='jabber:client'/>`, "iq", true}}, false},
		{`<message><body>`, nil, true},
		{`<message to="x`, nil, true},
	} {
		var got []el
		err := eachElement([]byte(tc.in), func(b []byte, nameEnd int, declared bool) error {
			got = append(got, el{string(b), string(b[1:nameEnd]), declared})
			return nil
		})
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %+v, %v; want %+v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestTransportFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"idle", "--password", "p", "--transport", "udp"},
		{"idle", "--password", "p", "--transport", "websocket", "--url", "https://127.0.0.1/xmpp-websocket"},
		{"idle", "--password", "p", "--transport", "bosh", "--url", "wss://127.0.0.1/http-bind"},
		{"idle", "--password", "p", "--transport", "bosh", "--url", "https://192.0.2.1/http-bind"},
		{"idle", "--password", "p", "--transport", "websocket", "--tls"},
		{"idle", "--password", "p", "--transport", "websocket", "--addr", "127.0.0.1:5222"},
		{"idle", "--password", "p", "--url", "wss://127.0.0.1/xmpp-websocket"}, // tcp with --url
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
	for _, tc := range []struct{ transport, url, want string }{
		{"websocket", "", "wss://127.0.0.1:5281/xmpp-websocket"},
		{"bosh", "", "https://127.0.0.1:5281/http-bind"},
		{"websocket", "ws://localhost:5280/ws", "ws://localhost:5280/ws"},
		{"bosh", "http://[::1]/http-bind", "http://[::1]/http-bind"},
	} {
		args := []string{"chat", "--password", "p", "--transport", tc.transport}
		if tc.url != "" {
			args = append(args, "--url", tc.url)
		}
		o, err := parseFlags(args, io.Discard)
		if err != nil || o.url != tc.want || o.resolved != tc.want {
			t.Errorf("%q: %v, url %q", args, err, o.url)
		}
	}
}
