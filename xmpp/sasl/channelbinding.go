package sasl

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// TLSExporter returns the tls-exporter channel-binding data of a server-side
// connection (RFC 9266): 32 bytes of exported keying material with label
// "EXPORTER-Channel-Binding" and no context. It is defined for TLS 1.3
// only (RFC 9266 §3: with TLS 1.2 it is unsafe without the extended master
// secret), so other versions give an error.
func TLSExporter(cs *tls.ConnectionState) ([]byte, error) {
	if cs == nil || !cs.HandshakeComplete {
		return nil, errors.New("sasl: TLS handshake not complete")
	}
	if cs.Version != tls.VersionTLS13 {
		return nil, errors.New("sasl: tls-exporter needs TLS 1.3")
	}
	return cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
}

// TLSServerEndPoint returns the tls-server-end-point channel-binding data
// (RFC 5929 §4.1) for the server's leaf certificate: its hash with the hash
// function of its signature algorithm, SHA-256 when that is MD5 or SHA-1.
// Certificates whose signature algorithm has no single hash (Ed25519) have
// no tls-server-end-point binding.
func TLSServerEndPoint(cert *x509.Certificate) ([]byte, error) {
	if cert == nil {
		return nil, errors.New("sasl: no certificate")
	}
	var h crypto.Hash
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.ECDSAWithSHA256, x509.DSAWithSHA256:
		h = crypto.SHA256
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h = crypto.SHA384
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h = crypto.SHA512
	default:
		return nil, errors.New("sasl: tls-server-end-point undefined for the certificate's signature algorithm")
	}
	hh := h.New()
	hh.Write(cert.Raw)
	return hh.Sum(nil), nil
}
