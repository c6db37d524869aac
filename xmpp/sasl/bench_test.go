package sasl

import (
	"context"
	"testing"

	"github.com/xdg-go/scram"
)

// countingBackend serves stored credentials and counts look-ups.
type countingBackend struct {
	creds Credentials
	n     int
}

func (cb *countingBackend) Credentials(context.Context, string, Hash) (Credentials, error) {
	cb.n++
	return cb.creds, nil
}

func (cb *countingBackend) CheckPassword(context.Context, string, string) (bool, error) {
	panic("not used")
}

// BenchmarkSCRAMSHA256Verify measures one full server-side SCRAM-SHA-256
// exchange (client-first → server-first, client-final → server-final)
// against stored keys: no PBKDF2 runs at login.
func BenchmarkSCRAMSHA256Verify(b *testing.B) {
	salt := []byte("0123456789abcdef")
	creds, err := Derive(SHA256, "pencil", salt, 4096)
	if err != nil {
		b.Fatal(err)
	}
	be := &countingBackend{creds: creds}
	cfg := Config{Backend: be, Downgrade: true, nonce: fixedNonce("serverNonce0123456789012")}

	// Precompute the client messages once (the server nonce is fixed).
	client, _ := scram.SHA256.NewClient("user", "pencil", "")
	client.WithNonceGenerator(fixedNonce("clientNonce0123456789012"))
	conv := client.NewConversation()
	c1, _ := conv.Step("")
	srv, _ := cfg.NewServer("SCRAM-SHA-256")
	s1, _, err := srv.Step(context.Background(), []byte(c1))
	if err != nil {
		b.Fatal(err)
	}
	c2, err := conv.Step(string(s1))
	if err != nil {
		b.Fatal(err)
	}
	first, final := []byte(c1), []byte(c2)
	ctx := context.Background()

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		srv, err := cfg.NewServer("SCRAM-SHA-256")
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := srv.Step(ctx, first); err != nil {
			b.Fatal(err)
		}
		if _, done, err := srv.Step(ctx, final); err != nil || !done {
			b.Fatal(err)
		}
	}
}

// BenchmarkDerive measures one key derivation per hash at 4096 iterations
// (the cost of creating an account or changing a password, per hash).
func BenchmarkDerive(b *testing.B) {
	salt := []byte("0123456789abcdef")
	for _, h := range Hashes {
		b.Run(string(h), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Derive(h, "correct horse battery staple", salt, 4096); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
