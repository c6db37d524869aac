package c2s_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
)

func TestStreamErrors(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Config("[c2s]\nstream_open_timeout = \"1s\"\nmax_stanza_size = \"64KB\""))
	cases := []struct {
		name, send, want string
	}{
		{"host unknown", xmpptest.StreamOpen("example.net"), "<host-unknown"},
		{"bad namespace", `<stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams" to="localhost" version="1.0">`, "<invalid-namespace"},
		{"wrong stream namespace", `<stream:stream xmlns="jabber:client" xmlns:stream="urn:bad" to="localhost" version="1.0">`, "<invalid-namespace"},
		{"old version", `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="localhost">`, "<unsupported-version"},
		{"not well-formed", xmpptest.StreamOpen("localhost") + `<message><body></message>`, "<not-well-formed"},
		{"DTD", `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>` + xmpptest.StreamOpen("localhost"), "<restricted-xml"},
		{"comment", xmpptest.StreamOpen("localhost") + `<!-- hi -->`, "<restricted-xml"},
		{"entity", xmpptest.StreamOpen("localhost") + `<message>&lol;</message>`, `xmlns="urn:ietf:params:xml:ns:xmpp-streams"`},
		{"stanza before auth", xmpptest.StreamOpen("localhost") + `<message to="a@localhost"><body>x</body></message>`, "<not-authorized"},
		{"oversized stanza", xmpptest.StreamOpen("localhost") + `<iq type="get" id="1"><query xmlns="jabber:iq:register">` + strings.Repeat("x", 200<<10) + `</query></iq>`, "<policy-violation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := srv.DialRaw(t)
			r.Write(t, tc.send)
			got := r.ReadUntilClose(t)
			if !strings.Contains(got, "<stream:error>") || !strings.Contains(got, tc.want) {
				t.Fatalf("want a stream error containing %s, got:\n%s", tc.want, got)
			}
			if !strings.HasSuffix(got, "</stream:stream>") {
				t.Fatalf("stream not closed with </stream:stream>: %s", got)
			}
		})
	}
}

func TestSilentClientTimesOut(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Config("[c2s]\nstream_open_timeout = \"1s\""))
	r := srv.DialRaw(t)
	got := r.ReadUntilClose(t)
	if !strings.Contains(got, "<connection-timeout") {
		t.Fatalf("want connection-timeout, got %q", got)
	}
}

func TestHugeStanzaIsCutOff(t *testing.T) {
	srv := xmpptest.NewServer(t)
	c := srv.Login(t, mkUser(t, srv, "romeo")+"/a", "password")
	// 10 MB: the server must stop reading at the limit (256 KB default) and
	// answer with policy-violation, not buffer everything.
	go func() {
		chunk := []byte(strings.Repeat("A", 64<<10))
		c.Send(t, `<message to="juliet@localhost"><body>`)
		for i := 0; i < 160; i++ {
			if _, err := c.RawConn().Write(chunk); err != nil {
				return
			}
		}
	}()
	for {
		el, err := c.RecvTimeout(xmpptest.Timeout)
		if err != nil {
			if !strings.Contains(err.Error(), "stream ended") {
				t.Fatalf("expected the stream to end with a stream error: %v", err)
			}
			break
		}
		if el.Name == "error" && el.Child("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation") != nil {
			return
		}
	}
}

func mkUser(t *testing.T, srv *xmpptest.Server, name string) string {
	bare := name + "@localhost"
	srv.CreateUser(t, bare, "password")
	return bare
}

func TestLoginSTARTTLSAndDirectTLS(t *testing.T) {
	srv := xmpptest.NewServer(t)
	bare := mkUser(t, srv, "romeo")
	c, err := srv.Connect(bare+"/orchard", "password", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.JID.String() != bare+"/orchard" {
		t.Fatalf("bound %s", c.JID)
	}
	d, err := srv.Connect(bare, "password", true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.JID.Resource() == "" {
		t.Fatal("no server-generated resource")
	}
}

func TestWrongPasswordsAreThrottled(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Config("[c2s.auth_throttle]\nper_ip = 100\nper_account = 3\nwindow = \"1m\""))
	bare := mkUser(t, srv, "romeo")
	for i := 0; i < 5; i++ {
		if _, err := srv.Connect(bare, "wrong", false); err == nil {
			t.Fatal("login with a wrong password succeeded")
		}
	}
	// The account is now throttled: even the right password is refused for a while.
	if _, err := srv.Connect(bare, "password", false); err == nil || !strings.Contains(err.Error(), "temporary-auth-failure") {
		t.Fatalf("want temporary-auth-failure while throttled, got %v", err)
	}
	// Other accounts keep working.
	other := mkUser(t, srv, "juliet")
	c, err := srv.Connect(other, "password", false)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestResourceConflictTakeover(t *testing.T) {
	srv := xmpptest.NewServer(t)
	bare := mkUser(t, srv, "romeo")
	old := srv.Login(t, bare+"/phone", "password")
	srv.Login(t, bare+"/phone", "password")
	for {
		el, err := old.RecvTimeout(xmpptest.Timeout)
		if err != nil {
			t.Fatalf("old session: expected <conflict/> stream error, got %v", err)
		}
		if el.Name == "error" && el.Child("urn:ietf:params:xml:ns:xmpp-streams", "conflict") != nil {
			return
		}
	}
}

func TestManyParallelConnections(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Config("[c2s]\nmax_sessions_per_user = 0"))
	bare := mkUser(t, srv, "romeo")
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	// 500 connections at once; half of them misbehave.
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%2 == 0 {
				c, err := srv.Connect(fmt.Sprintf("%s/r%d", bare, i), "password", i%4 == 0)
				if err != nil {
					errs <- err
					return
				}
				c.Close()
				return
			}
			conn, err := net.DialTimeout("tcp", srv.C2SAddr, xmpptest.Timeout)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			_, _ = conn.Write([]byte(xmpptest.StreamOpen("localhost") + "<a><b></a>"))
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			b, _ := io.ReadAll(conn)
			if !strings.Contains(string(b), "not-well-formed") {
				errs <- fmt.Errorf("garbage connection %d: got %q", i, b)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMechanismsFollowStoredHashes(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.SCRAMHashes("SHA-256"))
	r := srv.DialTLS(t, "localhost")
	r.Write(t, xmpptest.StreamOpen("localhost"))
	got := r.ReadUntil(t, "</stream:features>")
	for _, m := range []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN"} {
		if !strings.Contains(got, "<mechanism>"+m+"</mechanism>") {
			t.Errorf("%s not offered: %s", m, got)
		}
	}
	for _, m := range []string{"SCRAM-SHA-1", "SCRAM-SHA-512"} {
		if strings.Contains(got, m) {
			t.Errorf("%s offered without stored keys: %s", m, got)
		}
	}
	bare := mkUser(t, srv, "romeo")
	c, err := srv.Connect(bare, "password", false) // the test client uses SCRAM-SHA-256
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestReadRateShapesWithoutLoss: a client over its read rate is slowed
// down, not disconnected, and nothing it sent is lost.
func TestReadRateShapesWithoutLoss(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Config("[c2s]\nread_rate = \"20KB\"\nread_burst = \"4KB\""))
	bare := mkUser(t, srv, "romeo")
	c := srv.Login(t, bare+"/a", "password")
	var b strings.Builder
	for i := 0; i < 40; i++ { // ~40 KB: about two seconds at 20 KB/s
		fmt.Fprintf(&b, `<iq type="get" id="q%d" to="localhost"><nope xmlns="urn:example:%s"/></iq>`, i, strings.Repeat("x", 900))
	}
	c.Send(t, b.String())
	for i := 0; i < 40; i++ {
		el := c.Recv(t)
		if el.ID() != fmt.Sprintf("q%d", i) || el.Type() != "error" {
			t.Fatalf("answer %d: %s", i, el)
		}
	}
}
