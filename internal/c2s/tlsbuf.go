package c2s

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"unsafe"
)

// The read buffers crypto/tls keeps
//
// A tls.Conn keeps, for as long as the connection lives, the buffers it
// grew for the largest record and handshake message it read: with a
// ClientHello that carries an X25519MLKEM768 key share (1.2 KB, what
// current browsers, OpenSSL 3.5 and Go send), that is about 2 KiB of raw
// input and 1.5 KiB of handshake data per connection — a fifth of an idle
// session. crypto/tls has no way to give them back, so releaseTLSBuffers
// drops them when they are empty: the handshake buffer once the handshake
// is done, the raw input buffer when the session goes quiet (idle.go).
// The next record read allocates a buffer of its own size again.
//
// This reaches into unexported fields, found by name and type when the
// program starts; if a Go release renames or changes them, nothing is
// released (TestTLSBuffersFound fails, so that it is noticed).

var tlsBufs = func() (o struct {
	ok                    bool
	rawInput, input, hand uintptr
}) {
	t := reflect.TypeFor[tls.Conn]()
	buf, rd := reflect.TypeFor[bytes.Buffer](), reflect.TypeFor[bytes.Reader]()
	raw, ok1 := t.FieldByName("rawInput")
	in, ok2 := t.FieldByName("input")
	hand, ok3 := t.FieldByName("hand")
	if !ok1 || !ok2 || !ok3 || raw.Type != buf || in.Type != rd || hand.Type != buf {
		return o
	}
	o.ok, o.rawInput, o.input, o.hand = true, raw.Offset, in.Offset, hand.Offset
	return o
}()

// releaseTLSBuffers drops tc's empty read buffers: the handshake buffer,
// and with rawInput the raw input buffer and the plaintext reader that
// points into it. It must run on the goroutine that reads tc, between
// reads (crypto/tls guards these fields with its input lock, held only
// during a read).
func releaseTLSBuffers(tc *tls.Conn, rawInput bool) {
	if !tlsBufs.ok {
		return
	}
	base := unsafe.Pointer(tc)
	if hand := (*bytes.Buffer)(unsafe.Add(base, tlsBufs.hand)); hand.Len() == 0 && hand.Cap() > 0 {
		*hand = bytes.Buffer{}
	}
	if !rawInput {
		return
	}
	raw := (*bytes.Buffer)(unsafe.Add(base, tlsBufs.rawInput))
	in := (*bytes.Reader)(unsafe.Add(base, tlsBufs.input))
	if raw.Len() == 0 && in.Len() == 0 && raw.Cap() > 0 {
		*raw = bytes.Buffer{}
		in.Reset(nil)
	}
}
