package xmpptest

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Raw is an unauthenticated connection for protocol and bad-input tests.
type Raw struct {
	Conn net.Conn
}

// DialRaw opens a plain TCP connection to the STARTTLS listener.
func (s *Server) DialRaw(t testing.TB) *Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.C2SAddr, Timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Raw{Conn: c}
}

// DialTLS opens a direct TLS connection (XEP-0368 listener).
func (s *Server) DialTLS(t testing.TB, serverName string) *Raw {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: Timeout}, "tcp", s.TLSAddr,
		&tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Raw{Conn: c}
}

// Write sends raw bytes.
func (r *Raw) Write(t testing.TB, s string) {
	t.Helper()
	_ = r.Conn.SetWriteDeadline(time.Now().Add(Timeout))
	if _, err := r.Conn.Write([]byte(s)); err != nil {
		t.Fatalf("xmpptest: raw write: %v", err)
	}
}

// ReadUntilClose reads everything until the server closes the connection
// (or Timeout passes) and returns it.
func (r *Raw) ReadUntilClose(t testing.TB) string {
	t.Helper()
	_ = r.Conn.SetReadDeadline(time.Now().Add(Timeout))
	b, err := io.ReadAll(r.Conn)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("xmpptest: the server did not close the connection; got so far: %s", b)
		}
	}
	return string(b)
}

// ReadUntil reads until the received text contains want (or fails after Timeout).
func (r *Raw) ReadUntil(t testing.TB, want string) string {
	t.Helper()
	_ = r.Conn.SetReadDeadline(time.Now().Add(Timeout))
	var sb strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(sb.String(), want) {
		n, err := r.Conn.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			t.Fatalf("xmpptest: waiting for %q: %v; got: %s", want, err, sb.String())
		}
	}
	return sb.String()
}

// StreamOpen is a client stream header for host.
func StreamOpen(host string) string {
	return `<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="` + host + `" version="1.0">`
}
