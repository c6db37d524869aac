package httpupload

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
)

// slot is what a PUT token vouches for. It travels inside the token, so
// the server keeps no state per slot.
type slot struct {
	Owner   string `json:"u"` // localpart of the uploader
	Size    int64  `json:"s"`
	Type    string `json:"t"`
	Expires int64  `json:"e"` // Unix seconds
}

// errBadToken covers every way a token can be wrong; the client learns
// only that it is not valid for this URL.
var errBadToken = errors.New("invalid upload token")

var b64 = base64.RawURLEncoding

// sign returns the token for s at host/id/name: base64url(JSON slot) "."
// base64url(HMAC-SHA256(key, host \n id \n name \n payload)).
func (s slot) sign(key []byte, host, id, name string) string {
	payload, _ := json.Marshal(s)
	p := b64.EncodeToString(payload)
	return p + "." + b64.EncodeToString(mac(key, host, id, name, p))
}

func mac(key []byte, host, id, name, payload string) []byte {
	m := hmac.New(sha256.New, key)
	for _, part := range []string{host, id, name, payload} {
		m.Write([]byte(part))
		m.Write([]byte{'\n'})
	}
	return m.Sum(nil)
}

// verify checks token for host/id/name and returns its slot. Expiry is
// the caller's business.
func verify(key []byte, host, id, name, token string) (slot, error) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return slot{}, errBadToken
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, host, id, name, p)) {
		return slot{}, errBadToken
	}
	raw, err := b64.DecodeString(p)
	if err != nil {
		return slot{}, errBadToken
	}
	var s slot
	if err := json.Unmarshal(raw, &s); err != nil || s.Size <= 0 || s.Owner == "" {
		return slot{}, errBadToken
	}
	return s, nil
}

// newID returns a random file id: 128 bits, lowercase base32.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// validID reports whether s has the shape newID produces.
func validID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// escapeName percent-encodes a file name for a URL path (§3: non-ASCII
// characters must be percent-encoded).
func escapeName(name string) string { return url.PathEscape(name) }
