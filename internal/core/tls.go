package core

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// certStore holds one certificate per host, chosen by SNI. It is swapped
// whole on reload, so a handshake sees either the old or the new set.
type certStore struct {
	certs atomic.Pointer[certSet]
	once  sync.Once
	cfg   *tls.Config // shared by every connection; certificates are looked up per handshake
}

type certSet struct {
	byName map[string]*tls.Certificate
	def    *tls.Certificate
}

func (cs *certStore) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := cs.certs.Load()
	if set == nil {
		return nil, errors.New("no certificates loaded")
	}
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	if c, ok := set.byName[name]; ok {
		return c, nil
	}
	// A wildcard or parent-domain certificate (e.g. conference.example.org under example.org's).
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c, ok := set.byName[name[i+1:]]; ok {
			return c, nil
		}
	}
	return set.def, nil
}

func (cs *certStore) tlsConfig() *tls.Config {
	cs.once.Do(func() { cs.cfg = cs.newTLSConfig() })
	return cs.cfg
}

func (cs *certStore) newTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: cs.getCertificate,
		// XEP-0368: direct TLS clients may announce "xmpp-client" with ALPN.
		NextProtos: []string{"xmpp-client"},
		// TLS 1.3 is preferred automatically; 1.2 suites are Go's secure defaults.
	}
}

// CertSpec names a host's certificate files ("" = self-signed under dataDir/certs).
type CertSpec struct {
	Host      string
	Cert, Key string
}

// loadCerts loads (or generates) every host's certificate.
func loadCerts(dataDir string, specs []CertSpec) (*certSet, error) {
	set := &certSet{byName: map[string]*tls.Certificate{}}
	var errs []error
	for _, sp := range specs {
		certFile, keyFile := sp.Cert, sp.Key
		if certFile == "" {
			var err error
			certFile, keyFile, err = ensureSelfSigned(filepath.Join(dataDir, "certs"), sp.Host)
			if err != nil {
				errs = append(errs, fmt.Errorf("host %q: %w", sp.Host, err))
				continue
			}
		}
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("host %q: certificate %s: %w", sp.Host, certFile, err))
			continue
		}
		set.byName[sp.Host] = &c
		if set.def == nil {
			set.def = &c
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// ensureSelfSigned returns the paths of a self-signed certificate for host,
// creating an ECDSA P-256 one valid for ten years on first use.
func ensureSelfSigned(dir, host string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, host+".crt")
	keyFile = filepath.Join(dir, host+".key")
	if _, err := os.Stat(certFile); err == nil {
		return certFile, keyFile, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host, Organization: []string{"Metronome self-signed"}},
		DNSNames:     []string{host, "*." + host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
