package sasl

import (
	"encoding/base64"
	"slices"
	"strings"
)

// DowngradeHash computes the XEP-0474 (SASL SCRAM Downgrade Protection,
// v0.5.0) hash for hash function h: with the advertised mechanisms sorted
// (i;octet) and joined by U+001E, then, if channel-binding types were
// advertised with XEP-0440, U+001F and the sorted types joined by U+001E,
// it returns base64(h(S)). The server sends it as the "h" attribute of the
// server-first-message; clients compute the same over what they received.
func DowngradeHash(h Hash, mechanisms, cbTypes []string) string {
	mechs := slices.Clone(mechanisms)
	slices.Sort(mechs)
	s := strings.Join(mechs, "\x1e")
	if len(cbTypes) > 0 {
		cbs := slices.Clone(cbTypes)
		slices.Sort(cbs)
		s += "\x1f" + strings.Join(cbs, "\x1e")
	}
	newHash := h.New()
	if newHash == nil {
		return ""
	}
	hh := newHash()
	hh.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(hh.Sum(nil))
}
