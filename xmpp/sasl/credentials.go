package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// Hash names a SCRAM hash function, as in the mechanism name.
type Hash string

// SCRAM hash functions.
const (
	SHA1   Hash = "SHA-1"
	SHA256 Hash = "SHA-256"
	SHA512 Hash = "SHA-512"
)

// Hashes lists the supported hashes, strongest first.
var Hashes = []Hash{SHA512, SHA256, SHA1}

// New returns the hash constructor, or nil for an unknown hash.
func (h Hash) New() func() hash.Hash {
	switch h {
	case SHA1:
		return sha1.New
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return nil
}

// Size returns the digest size in bytes, 0 for an unknown hash.
func (h Hash) Size() int {
	switch h {
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	case SHA512:
		return sha512.Size
	}
	return 0
}

// Mechanism returns the SCRAM mechanism name ("SCRAM-SHA-256"), with the
// -PLUS suffix if plus is set.
func (h Hash) Mechanism(plus bool) string {
	if plus {
		return "SCRAM-" + string(h) + "-PLUS"
	}
	return "SCRAM-" + string(h)
}

// Credentials are the stored SCRAM credentials of one user for one hash
// (RFC 5802 §3): the salt and iteration count given to the client and the
// StoredKey and ServerKey the server verifies against. They are not
// password-equivalent for PLAIN, but anyone holding them can impersonate the
// server to the user, so keep them secret.
type Credentials struct {
	Salt      []byte
	Iter      int
	StoredKey []byte
	ServerKey []byte
}

// valid reports whether c is usable with hash h.
func (c Credentials) valid(h Hash) bool {
	return c.Iter > 0 && len(c.Salt) > 0 && len(c.StoredKey) == h.Size() && len(c.ServerKey) == h.Size()
}

// ErrBadPassword is returned by Derive for a password that OpaqueString
// rejects (empty, or with disallowed code points).
var ErrBadPassword = errors.New("sasl: invalid password")

// MaxIter bounds the iteration count Derive accepts.
const MaxIter = 1 << 24

// Derive computes the stored credentials for password (RFC 5802 §3):
// SaltedPassword = PBKDF2-HMAC-h(OpaqueString(password), salt, iter),
// StoredKey = h(HMAC(SaltedPassword, "Client Key")) and
// ServerKey = HMAC(SaltedPassword, "Server Key"). The password is prepared
// with the PRECIS OpaqueString profile (RFC 8265, which supersedes SASLprep);
// for ASCII passwords both give the same result.
func Derive(h Hash, password string, salt []byte, iter int) (Credentials, error) {
	newHash := h.New()
	if newHash == nil {
		return Credentials{}, fmt.Errorf("sasl: unknown hash %q", h)
	}
	if iter < 1 || iter > MaxIter {
		return Credentials{}, fmt.Errorf("sasl: iteration count %d out of range", iter)
	}
	if len(salt) == 0 {
		return Credentials{}, errors.New("sasl: empty salt")
	}
	pw, err := PrepPassword(password)
	if err != nil {
		return Credentials{}, err
	}
	salted, err := pbkdf2.Key(newHash, pw, salt, iter, h.Size())
	if err != nil {
		return Credentials{}, fmt.Errorf("sasl: pbkdf2: %w", err)
	}
	clientKey := hmacSum(newHash, salted, "Client Key")
	hh := newHash()
	hh.Write(clientKey)
	return Credentials{
		Salt:      append([]byte(nil), salt...),
		Iter:      iter,
		StoredKey: hh.Sum(nil),
		ServerKey: hmacSum(newHash, salted, "Server Key"),
	}, nil
}

func hmacSum(newHash func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(newHash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// PrepPassword applies the PRECIS OpaqueString profile to a password.
func PrepPassword(password string) (string, error) {
	if !utf8.ValidString(password) {
		return "", ErrBadPassword
	}
	pw, err := precis.OpaqueString.String(password)
	if err != nil || pw == "" {
		return "", ErrBadPassword
	}
	return pw, nil
}

// ErrBadUsername is returned by PrepUsername.
var ErrBadUsername = errors.New("sasl: invalid username")

// PrepUsername returns the canonical form of a username (a JID localpart):
// the PRECIS UsernameCaseMapped profile (RFC 8265), without the characters
// RFC 7622 §3.3.1 forbids in localparts, at most 1023 bytes.
func PrepUsername(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", ErrBadUsername
	}
	u, err := precis.UsernameCaseMapped.String(s)
	if err != nil || u == "" || len(u) > 1023 || strings.ContainsAny(u, "\"&'/:<>@") {
		return "", ErrBadUsername
	}
	return u, nil
}
