package sasl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/xdg-go/scram"
)

// TestTLSChannelBinding checks the channel-binding helpers against what the
// xdg-go/scram client computes on the other end of a real TLS 1.3
// connection, and runs a -PLUS exchange with each type.
func TestTLSChannelBinding(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(1),
		Subject:            pkix.Name{CommonName: "example.org"},
		DNSNames:           []string{"example.org"},
		NotBefore:          time.Now().Add(-time.Hour),
		NotAfter:           time.Now().Add(time.Hour),
		SignatureAlgorithm: x509.ECDSAWithSHA384,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}

	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	server := tls.Server(c1, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	client := tls.Client(c2, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	ss, cs := server.ConnectionState(), client.ConnectionState()

	exporter, err := TLSExporter(&ss)
	if err != nil {
		t.Fatal(err)
	}
	endpoint, err := TLSServerEndPoint(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if len(endpoint) != 48 {
		t.Fatalf("end-point hash length %d, want 48 (SHA-384)", len(endpoint))
	}
	cbExp, err := scram.NewTLSExporterBinding(&cs)
	if err != nil {
		t.Fatal(err)
	}
	cbEnd, err := scram.NewTLSServerEndpointBinding(&cs)
	if err != nil {
		t.Fatal(err)
	}

	b := newTestBackend(map[string]string{"user": "pencil"})
	cfg := Config{Backend: b, TLS: true, CB: ChannelBinding{Exporter: exporter, EndPoint: endpoint}}
	for _, cb := range []scram.ChannelBinding{cbExp, cbEnd} {
		c, _ := scram.SHA256.NewClient("user", "pencil", "")
		srv, _ := cfg.NewServer("SCRAM-SHA-256-PLUS")
		if err := runXDG(t, srv, c.NewConversationWithChannelBinding(cb), nil); err != nil {
			t.Fatalf("%s: %v", cb.Type, err)
		}
	}

	// The exporter computed on demand: offering -PLUS does not compute it,
	// a tls-exporter exchange does, and one with the end-point type does not.
	calls := 0
	lazy := Config{Backend: b, TLS: true, CB: ChannelBinding{EndPoint: endpoint, ExportFunc: func() []byte { calls++; return exporter }}}
	if !slices.Contains(lazy.Offered(), "SCRAM-SHA-256-PLUS") || !slices.Contains(lazy.CBTypes(), CBTLSExporter) || calls != 0 {
		t.Fatalf("lazy exporter: offered %v, types %v, %d calls", lazy.Offered(), lazy.CBTypes(), calls)
	}
	for i, cb := range []scram.ChannelBinding{cbEnd, cbExp} {
		c, _ := scram.SHA256.NewClient("user", "pencil", "")
		srv, _ := lazy.NewServer("SCRAM-SHA-256-PLUS")
		if err := runXDG(t, srv, c.NewConversationWithChannelBinding(cb), nil); err != nil {
			t.Fatalf("lazy exporter, %s: %v", cb.Type, err)
		}
		if calls != i {
			t.Fatalf("lazy exporter, after %s: %d calls, want %d", cb.Type, calls, i)
		}
	}

	if _, err := TLSExporter(nil); err == nil {
		t.Fatal("TLSExporter(nil): no error")
	}
	ss.Version = tls.VersionTLS12
	if _, err := TLSExporter(&ss); err == nil {
		t.Fatal("TLSExporter on TLS 1.2: no error")
	}
	leaf.SignatureAlgorithm = x509.PureEd25519
	if _, err := TLSServerEndPoint(leaf); err == nil {
		t.Fatal("TLSServerEndPoint on Ed25519: no error")
	}
}
