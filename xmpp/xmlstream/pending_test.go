package xmlstream

import (
	"errors"
	"testing"
)

// chunkReader returns one chunk per Read; pending reports whether chunks
// remain, as a transport with buffered input would.
type chunkReader struct {
	chunks []string
	reads  int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	r.reads++
	if len(r.chunks) == 0 {
		return 0, errors.New("read would block")
	}
	n := copy(p, r.chunks[0])
	if n == len(r.chunks[0]) {
		r.chunks = r.chunks[1:]
	} else {
		r.chunks[0] = r.chunks[0][n:]
	}
	return n, nil
}

func TestWouldBlock(t *testing.T) {
	r := &chunkReader{chunks: []string{streamHead + `<a/> `, `<b>te`, `xt</b>`, "  \n", `<c/>`}}
	d := NewDecoder(r, Limits{})
	if _, err := d.Header(); err != nil {
		t.Fatal(err)
	}
	avail := false // chunks the "transport" may return without blocking
	d.SetPending(func() bool { return avail })
	next := func(want string) {
		t.Helper()
		el, err := d.Element()
		if err != nil || el.Name != want {
			t.Fatalf("Element = %v, %v; want <%s/>", el, err, want)
		}
	}
	wouldBlock := func() {
		t.Helper()
		reads := r.reads
		if el, err := d.Element(); !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("Element = %v, %v; want ErrWouldBlock", el, err)
		}
		if r.reads != reads {
			t.Fatal("ErrWouldBlock after a read")
		}
		if d.t.buf != nil || d.t.pooled != nil {
			t.Fatal("an idle stream keeps its read buffer")
		}
	}
	next("a")     // buffered with the header
	wouldBlock()  // the trailing space is consumed, then nothing is buffered
	avail = true  // the transport became readable: "<b>te"
	next("b")     // mid-element, the tokenizer reads on ("xt</b>") without asking
	avail = false //
	wouldBlock()  //
	avail = true  // whitespace, then the transport fails: its error comes through
	r.chunks = r.chunks[:1]
	if _, err := d.Element(); err == nil || errors.Is(err, ErrWouldBlock) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
}

func TestWouldBlockWhitespace(t *testing.T) {
	r := &chunkReader{chunks: []string{streamHead, "   ", "<c/>"}}
	d := NewDecoder(r, Limits{})
	if _, err := d.Header(); err != nil {
		t.Fatal(err)
	}
	ready := 0 // how many more reads the transport can serve
	d.SetPending(func() bool { return ready > 0 })
	if _, err := d.Element(); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("err = %v", err)
	}
	ready = 1 // the keepalive
	d.SetPending(func() bool { ready--; return ready >= 0 })
	if _, err := d.Element(); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("after a whitespace keepalive: err = %v", err)
	}
	d.SetPending(nil) // blocking again: reads on
	if el, err := d.Element(); err != nil || el.Name != "c" {
		t.Fatalf("Element = %v, %v", el, err)
	}
}
