package plugin

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Key text forms: a public key is "ed25519:<base64 of 32 bytes>", a private
// key file holds "ed25519-private:<base64 of the 32-byte seed>".
const (
	publicPrefix  = "ed25519:"
	privatePrefix = "ed25519-private:"
)

// Signature is the content of a .sig file beside a signed file.
type Signature struct {
	Key       string `json:"key"`       // the signer's public key, "ed25519:..."
	Signature string `json:"signature"` // base64 of the ed25519 signature of the file's bytes
}

// SigSuffix names a file's signature: index.json → index.json.sig.
const SigSuffix = ".sig"

// GenerateKey creates a signing key pair.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

// FormatPublicKey returns the "ed25519:..." form of pub.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return publicPrefix + base64.StdEncoding.EncodeToString(pub)
}

// FormatPrivateKey returns the private key file content for priv.
func FormatPrivateKey(priv ed25519.PrivateKey) string {
	return privatePrefix + base64.StdEncoding.EncodeToString(priv.Seed()) + "\n"
}

// ParsePublicKey parses "ed25519:<base64>".
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	b64, ok := strings.CutPrefix(s, publicPrefix)
	if !ok {
		return nil, fmt.Errorf("public key %q: want ed25519:<base64>", short(s))
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q: not a base64 ed25519 key", short(s))
	}
	return ed25519.PublicKey(b), nil
}

// ReadPrivateKey reads a private key file written by FormatPrivateKey.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b64, ok := strings.CutPrefix(strings.TrimSpace(string(b)), privatePrefix)
	if !ok {
		return nil, fmt.Errorf("%s: not a metronome signing key (want %s<base64>)", path, privatePrefix)
	}
	seed, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: malformed signing key", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

// Keyring is the set of trusted public keys.
type Keyring struct {
	keys map[string]ed25519.PublicKey // by FormatPublicKey
}

// LoadKeyring reads [plugins] trusted_keys: inline "ed25519:..." keys or
// files holding one.
func LoadKeyring(entries []string) (*Keyring, error) {
	kr := &Keyring{keys: map[string]ed25519.PublicKey{}}
	for _, e := range entries {
		text := e
		if !strings.HasPrefix(e, publicPrefix) {
			b, err := os.ReadFile(e)
			if err != nil {
				return nil, fmt.Errorf("trusted key: %w", err)
			}
			text = strings.TrimSpace(string(b))
		}
		k, err := ParsePublicKey(text)
		if err != nil {
			return nil, fmt.Errorf("trusted key %s: %w", e, err)
		}
		kr.keys[FormatPublicKey(k)] = k
	}
	return kr, nil
}

// Len is the number of trusted keys.
func (kr *Keyring) Len() int { return len(kr.keys) }

// Errors of signature verification.
var (
	ErrUnsigned   = errors.New("no signature")
	ErrUnknownKey = errors.New("signed by a key that is not trusted")
	ErrBadSig     = errors.New("signature does not match")
)

// Verify checks that sig (a .sig file's content) is a valid signature of
// data by a trusted key, and returns that key.
func (kr *Keyring) Verify(data, sig []byte) (string, error) {
	if len(sig) == 0 {
		return "", ErrUnsigned
	}
	var s Signature
	if err := json.Unmarshal(sig, &s); err != nil {
		return "", fmt.Errorf("malformed signature file: %w", err)
	}
	pub, err := ParsePublicKey(s.Key)
	if err != nil {
		return "", err
	}
	name := FormatPublicKey(pub)
	if _, ok := kr.keys[name]; !ok {
		return name, fmt.Errorf("%w (%s; add it to [plugins] trusted_keys if you trust it)", ErrUnknownKey, name)
	}
	raw, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil || !ed25519.Verify(pub, data, raw) {
		return name, ErrBadSig
	}
	return name, nil
}

// Sign returns the .sig file content for data.
func Sign(priv ed25519.PrivateKey, data []byte) []byte {
	s := Signature{
		Key:       FormatPublicKey(priv.Public().(ed25519.PublicKey)),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(priv, data)),
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}
