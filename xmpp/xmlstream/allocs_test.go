package xmlstream

import (
	"bytes"
	"io"
	"testing"
)

func TestTokenizerAllocs(t *testing.T) {
	in, _ := benchStream(200)
	r := bytes.NewReader(in)
	tk := NewTokenizer(r, Limits{})
	run := func() {
		r.Reset(in)
		tk.Reset(r)
		for {
			if _, err := tk.Next(); err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				return
			}
		}
	}
	run() // grow the buffers
	// The read buffer goes back to a sync.Pool at the end of each stream;
	// under the race detector the pool drops some of what it is given, so
	// a stream may allocate its buffer again (never more than that).
	want := 0.0
	if raceEnabled {
		want = 1
	}
	if n := testing.AllocsPerRun(20, run); n > want {
		t.Errorf("tokenizer: %v allocations per stream of 200 messages, want at most %v", n, want)
	}
}

func TestElementAllocs(t *testing.T) {
	in, _ := benchStream(200)
	r := bytes.NewReader(in)
	d := NewDecoder(r, Limits{})
	var n int
	run := func() {
		r.Reset(in)
		d.Reset(r)
		if _, err := d.Header(); err != nil {
			t.Fatal(err)
		}
		for n = 0; ; n++ {
			if _, err := d.Element(); err != nil {
				if err != ErrStreamEnd {
					t.Fatal(err)
				}
				return
			}
		}
	}
	run()
	// Header: the Attrs slice and the attribute values that are not
	// common strings (from, to). Elements: four allocations each at most
	// (elements, attributes, nodes, one string for all the text).
	if allocs := testing.AllocsPerRun(10, run); allocs > float64(4*n+4) {
		t.Errorf("%v allocations for %d stanzas", allocs, n)
	} else {
		t.Logf("%.2f allocations per stanza", (allocs-4)/float64(n))
	}
}

func TestInternTable(t *testing.T) {
	for _, s := range internList {
		got, ok := intern([]byte(s))
		if !ok || got != s {
			t.Errorf("intern(%q) = %q, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "messag", "messages", "urn:xmpp:unknown", string(make([]byte, 100))} {
		if _, ok := intern([]byte(s)); ok {
			t.Errorf("intern(%q) succeeded", s)
		}
	}
	// Probe lengths stay short.
	maxProbe := 0
	for _, s := range internList {
		h := internHash(s)
		p := 0
		for internTab[(h+uint(p))&(1<<internBits-1)] != s {
			p++
		}
		maxProbe = max(maxProbe, p)
	}
	if maxProbe > 4 {
		t.Errorf("longest intern probe %d", maxProbe)
	}
}
