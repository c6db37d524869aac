package main

import (
	"context"
	"fmt"
	"io"
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
	code, out := runTool(t, "--addr", srv.C2SAddr, "--sessions", "6", "--password", "secret", "--idle", "--hold", "200ms")
	if code != 0 || !strings.Contains(out, "UP sessions=6 ") || !strings.Contains(out, "DONE 6 sessions") {
		t.Fatalf("exit %d", code)
	}
}

func TestMessages(t *testing.T) {
	t.Parallel()
	srv := newServer(t, 10)
	for _, tls := range []bool{false, true} {
		args := []string{"--sessions", "10", "--user", "load%d", "--domain", "localhost", "--password", "secret",
			"--messages", "300", "--rate", "3000"}
		if tls {
			args = append(args, "--tls", "--addr", srv.TLSAddr)
		} else {
			args = append(args, "--addr", srv.C2SAddr)
		}
		code, out := runTool(t, args...)
		if code != 0 || !strings.Contains(out, "RESULT OK sent=300 delivered=300 lost=0 ") {
			t.Fatalf("tls=%v: exit %d", tls, code)
		}
	}
}

// TestLostMessages sends to an account whose session is gone: the messages
// come back as errors (or vanish), and the tool must fail.
func TestLostMessages(t *testing.T) {
	t.Parallel()
	srv := newServer(t, 2)
	o, err := parseFlags([]string{"--addr", srv.C2SAddr, "--sessions", "2", "--password", "secret",
		"--messages", "20", "--rate", "1000", "--drain", "500ms"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.progress = 0
	var out, log strings.Builder
	l := &loader{o: o, out: &out, log: &log, epoch: time.Now(), pairs: 1, msgs: newMsgStats(o.messages)}
	l.wall0 = l.epoch.UnixNano()
	ctx := context.Background()
	if failed := l.loginAll(ctx); failed != 0 {
		t.Fatalf("%d logins failed: %s", failed, log.String())
	}
	defer l.closeAll()
	l.client[1].close(time.Second) // session 1 leaves: its messages cannot be delivered
	if code := l.runMessages(ctx); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "RESULT FAILED sent=10 delivered=0 lost=20 ") {
		t.Fatalf("unexpected result:\n%s\n%s", out.String(), log.String())
	}
}

func TestLoginFailure(t *testing.T) {
	t.Parallel()
	srv := newServer(t, 2)
	code, out := runTool(t, "--addr", srv.C2SAddr, "--sessions", "3", "--password", "secret", "--idle", "--hold", "1ms")
	if code != 1 || !strings.Contains(out, "FAILED sessions=3 up=2 failed=1") {
		t.Fatalf("exit %d", code)
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--password", "p"}, // no mode
		{"--password", "p", "--idle", "--messages", "1"}, // both modes
		{"--idle"}, // no password
		{"--password", "p", "--idle", "--user", "load"},  // no %d
		{"--password", "p", "--idle", "--user", "a%d%d"}, // two %d
		{"--password", "p", "--idle", "--addr", "192.0.2.1:5222"},
		{"--password", "p", "--idle", "--user", "u%d@example.org", "--domain", "example.net"},
		{"--password", "p", "--messages", "5", "--sessions", "1"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
	o, err := parseFlags([]string{"--password", "p", "--idle", "--tls", "--user", "u%d"}, io.Discard)
	if err != nil || o.resolved != "127.0.0.1:5223" || o.domain != "localhost" || o.account(7) != "u7" {
		t.Fatalf("%+v %v", o, err)
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
