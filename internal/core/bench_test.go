package core_test

import (
	"encoding/base64"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/c2s"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/module"
	_ "github.com/metronome-xmpp/metronome/modules/message"
	_ "github.com/metronome-xmpp/metronome/modules/presence"
	_ "github.com/metronome-xmpp/metronome/modules/roster"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// routeProbe is a module that only remembers its module.Host, through which
// the benchmark finds the server-side sessions of its two clients.
type routeProbe struct{}

var probeHost atomic.Pointer[module.Host]

func init() { module.Register(routeProbe{}) }

func (routeProbe) Info() module.Info {
	return module.Info{ID: "bench.routeprobe", New: func() module.Module { return new(routeProbe) }}
}

func (*routeProbe) Provision(h module.Host) error {
	probeHost.Store(&h)
	return nil
}

// rawLogin logs a session in over direct TLS with SASL PLAIN and binds
// resource, reading the server's answers as raw text: the client side
// allocates nothing per received stanza, so the benchmark's allocation
// count is the server's.
func rawLogin(b *testing.B, srv *xmpptest.Server, user, resource string) io.Reader {
	c := srv.DialTLS(b, "localhost")
	c.Write(b, xmpptest.StreamOpen("localhost"))
	c.ReadUntil(b, "</stream:features>")
	creds := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00password"))
	c.Write(b, `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">`+creds+`</auth>`)
	c.ReadUntil(b, "success")
	c.Write(b, xmpptest.StreamOpen("localhost"))
	c.ReadUntil(b, "</stream:features>")
	c.Write(b, `<iq type="set" id="b"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>`+resource+`</resource></bind></iq>`)
	c.ReadUntil(b, "</iq>")
	_ = c.Conn.SetReadDeadline(time.Time{})
	return c.Conn
}

// countingDiscard counts the bytes the recipient's client receives and
// wakes one waiter when a count is reached.
type countingDiscard struct {
	n      atomic.Int64
	target atomic.Int64 // wake the waiter when n reaches it; 0: nobody waits
	wake   chan struct{}
}

func (w *countingDiscard) Write(p []byte) (int, error) {
	n := w.n.Add(int64(len(p)))
	if t := w.target.Load(); t > 0 && n >= t && w.target.CompareAndSwap(t, 0) {
		w.wake <- struct{}{}
	}
	return len(p), nil
}

// waitFor blocks until at least t bytes were received.
func (w *countingDiscard) waitFor(t int64) {
	w.target.Store(t)
	if w.n.Load() >= t && w.target.CompareAndSwap(t, 0) {
		return
	}
	<-w.wake
}

// BenchmarkRouteMessageLocal routes one chat message from one bound local
// session to another bound local session through the core's entry point
// for client stanzas, Server.Process, exactly as the c2s reader calls it
// after decoding: validation, 'from' stamping, the pre-message/full and
// message/full events (the message module delivers), and the enqueueing on
// the recipient's session, whose writer goroutine sends it over TLS to a
// real client. The same decoded stanza is routed every time (Process only
// stamps the same 'from' on it again), so allocs/op counts the routing,
// not the decoding; it is process-wide, so it includes the recipient
// session's writer.
func BenchmarkRouteMessageLocal(b *testing.B) {
	srv := xmpptest.NewServer(b, xmpptest.Modules("roster", "presence", "message", "routeprobe"))
	srv.CreateUser(b, "romeo@localhost", "password")
	srv.CreateUser(b, "juliet@localhost", "password")
	_ = rawLogin(b, srv, "romeo", "orchard")
	julietConn := rawLogin(b, srv, "juliet", "balcony")
	received := &countingDiscard{wake: make(chan struct{}, 1)}
	go func() { _, _ = io.Copy(received, julietConn) }()

	h := *probeHost.Load()
	session := func(full string) *c2s.Session {
		s, ok := h.Session(jid.MustParse(full)).(*c2s.Session)
		if !ok {
			b.Fatalf("no session %s", full)
		}
		return s
	}
	romeo := session("romeo@localhost/orchard")
	_ = session("juliet@localhost/balcony")
	msg, err := xmlstream.ParseNS([]byte(`<message to="juliet@localhost/balcony" type="chat" id="m1"><body>hi</body></message>`), stanza.NSClient)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	srv.Core.Process(ctx, romeo, msg) // stamps 'from' once and for all
	size := int64(len(msg.Append(nil, stanza.NSClient)))
	want := func(n int64) { // waits until n messages were received
		deadline := time.Now().Add(10 * time.Second)
		for received.n.Load() < n*size {
			if time.Now().After(deadline) {
				b.Fatalf("the recipient received %d bytes, want %d (%d messages)", received.n.Load(), n*size, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	want(1)

	var sent int64 = 1
	b.ReportAllocs()
	for b.Loop() {
		srv.Core.Process(ctx, romeo, msg)
		sent++
		// Keep the recipient's queue short, as a reading client does: a
		// session with megabytes queued is closed as a slow consumer.
		if sent%64 == 0 && sent*size-received.n.Load() > 32<<10 {
			received.waitFor(sent*size - 8<<10)
		}
	}
	want(sent)
	if received.n.Load() != sent*size {
		b.Fatalf("the recipient received %d bytes, want %d", received.n.Load(), sent*size)
	}
}
