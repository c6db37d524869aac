package c2s

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
	"unsafe"
)

// TestTLSBuffersFound fails when a Go release changes the crypto/tls
// fields releaseTLSBuffers works on: idle sessions would then keep their
// buffers, silently.
func TestTLSBuffersFound(t *testing.T) {
	if !tlsBufs.ok {
		t.Fatal("crypto/tls.Conn has no rawInput/input/hand fields of the expected types: releaseTLSBuffers does nothing")
	}
}

// TestReleaseTLSBuffers: over a real TLS 1.3 connection with a large
// ClientHello (the X25519MLKEM768 key share), the buffers are dropped
// once empty, and the connection goes on working both ways.
func TestReleaseTLSBuffers(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c) // echo
	}()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	tc := TLSServer(raw, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	defer tc.Close()
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	base := unsafe.Pointer(tc)
	hand := (*bytes.Buffer)(unsafe.Add(base, tlsBufs.hand))
	rawIn := (*bytes.Buffer)(unsafe.Add(base, tlsBufs.rawInput))
	if hand.Cap() < 1024 || rawIn.Cap() < 1024 {
		t.Fatalf("after the handshake: hand %d, rawInput %d bytes of capacity; the ClientHello should have grown both", hand.Cap(), rawIn.Cap())
	}
	releaseTLSBuffers(tc, false)
	if hand.Cap() != 0 || rawIn.Cap() < 1024 {
		t.Fatalf("after release(false): hand %d, rawInput %d", hand.Cap(), rawIn.Cap())
	}
	buf := make([]byte, 5)
	for i, msg := range []string{"hello", "again"} {
		if _, err := tc.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %d: %q, %v", i, buf, err)
		}
		releaseTLSBuffers(tc, true)
		if rawIn.Cap() != 0 {
			t.Fatalf("after release(true): rawInput %d bytes of capacity", rawIn.Cap())
		}
	}
	// Unread plaintext is kept.
	if _, err := tc.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "01234" {
		t.Fatalf("first half: %q, %v", buf, err)
	}
	releaseTLSBuffers(tc, true)
	if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "56789" {
		t.Fatalf("second half after release: %q, %v", buf, err)
	}
}
