package c2s

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/stream"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := bucket{rate: 1000, burst: 5000, tokens: 5000, last: t0}
	if d := b.take(5000, t0); d != 0 {
		t.Fatalf("the burst must pass at once, got a pause of %v", d)
	}
	if d := b.take(500, t0); d != 500*time.Millisecond {
		t.Fatalf("500 bytes over at 1000 B/s: pause %v, want 500ms", d)
	}
	// Two seconds later 2000 bytes were earned back (1500 after the debt).
	if d := b.take(1000, t0.Add(2*time.Second)); d != 0 {
		t.Fatalf("pause %v after refilling", d)
	}
	// Refill never exceeds the burst.
	if d := b.take(5001, t0.Add(time.Hour)); d != time.Millisecond {
		t.Fatalf("pause %v, want 1ms for one byte over a full burst", d)
	}
	off := bucket{}
	if d := off.take(1<<30, t0); d != 0 {
		t.Fatal("a zero rate must not limit")
	}
}

func TestRefuse(t *testing.T) {
	server, client := net.Pipe()
	go Refuse(server, stream.PolicyViolation, "too many connections from your address")
	b, _ := io.ReadAll(client)
	got := string(b)
	for _, want := range []string{"<stream:stream", "<policy-violation", "too many connections", "</stream:stream>"} {
		if !strings.Contains(got, want) {
			t.Fatalf("missing %q in %q", want, got)
		}
	}
}
