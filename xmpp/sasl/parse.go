package sasl

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// maxMessage bounds the size of one client message.
const maxMessage = 8 << 10

// clientFirst is a parsed client-first-message (RFC 5802 §7):
//
//	gs2-header = gs2-cbind-flag "," [ authzid ] ","
//	gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
//	client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
type clientFirst struct {
	flag      byte   // 'n', 'y' or 'p'
	cbName    string // when flag is 'p'
	authzid   string // decoded saslname, "" when absent
	gs2Header string // flag "," [authzid] ","
	bare      string // client-first-message-bare
	username  string // decoded saslname, not prepared
	nonce     string // c-nonce
}

// clientFinal is a parsed client-final-message (RFC 5802 §7):
//
//	client-final-message-without-proof = channel-binding "," nonce ["," extensions]
//	client-final-message = client-final-message-without-proof "," proof
type clientFinal struct {
	cbind        []byte // decoded c=
	nonce        string // r=
	proof        []byte // decoded p=
	withoutProof string
}

func malformed(text string) *Failure { return fail(MalformedRequest, text) }

// checkMessage applies the checks common to all SCRAM client messages.
func checkMessage(msg string) *Failure {
	if len(msg) > maxMessage {
		return malformed("message too long")
	}
	if !utf8.ValidString(msg) {
		return malformed("invalid UTF-8")
	}
	if strings.IndexByte(msg, 0) >= 0 {
		return malformed("NUL in message")
	}
	return nil
}

func parseClientFirst(msg string) (clientFirst, *Failure) {
	var cf clientFirst
	if f := checkMessage(msg); f != nil {
		return cf, f
	}
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return cf, malformed("missing gs2 header")
	}
	switch {
	case flag == "n" || flag == "y":
		cf.flag = flag[0]
	case strings.HasPrefix(flag, "p="):
		cf.flag = 'p'
		cf.cbName = flag[2:]
		if !validCBName(cf.cbName) {
			return cf, malformed("invalid channel-binding name")
		}
	default:
		return cf, malformed("invalid gs2 channel-binding flag")
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return cf, malformed("missing gs2 header")
	}
	if authz != "" {
		v, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return cf, malformed("invalid gs2 authzid")
		}
		if cf.authzid, ok = decodeName(v); !ok {
			return cf, malformed("invalid authzid encoding")
		}
	}
	cf.gs2Header = msg[:len(msg)-len(bare)]
	cf.bare = bare

	attr, rest, _ := strings.Cut(bare, ",")
	if strings.HasPrefix(attr, "m=") {
		return cf, malformed("mandatory SCRAM extension not supported")
	}
	v, ok := strings.CutPrefix(attr, "n=")
	if !ok {
		return cf, malformed("missing username")
	}
	if cf.username, ok = decodeName(v); !ok {
		return cf, malformed("invalid username encoding")
	}
	attr, rest, more := strings.Cut(rest, ",")
	if cf.nonce, ok = strings.CutPrefix(attr, "r="); !ok || !printable(cf.nonce) {
		return cf, malformed("missing or invalid nonce")
	}
	if more {
		if f := checkExtensions(rest); f != nil {
			return cf, f
		}
	}
	return cf, nil
}

func parseClientFinal(msg string) (clientFinal, *Failure) {
	var cf clientFinal
	if f := checkMessage(msg); f != nil {
		return cf, f
	}
	attr, rest, _ := strings.Cut(msg, ",")
	v, ok := strings.CutPrefix(attr, "c=")
	if !ok {
		return cf, malformed("missing channel binding")
	}
	var f *Failure
	if cf.cbind, f = decodeBase64(v); f != nil {
		return cf, f
	}
	attr, rest, more := strings.Cut(rest, ",")
	if cf.nonce, ok = strings.CutPrefix(attr, "r="); !ok || !printable(cf.nonce) {
		return cf, malformed("missing or invalid nonce")
	}
	if !more {
		return cf, malformed("missing proof")
	}
	// The proof is the last attribute; extensions may come before it.
	ext, proofAttr := "", rest
	if i := strings.LastIndexByte(rest, ','); i >= 0 {
		ext, proofAttr = rest[:i], rest[i+1:]
	}
	p, ok := strings.CutPrefix(proofAttr, "p=")
	if !ok {
		return cf, malformed("missing proof")
	}
	if ext != "" {
		if f := checkExtensions(ext); f != nil {
			return cf, f
		}
	}
	cf.withoutProof = msg[:len(msg)-len(proofAttr)-1]
	if cf.proof, f = decodeBase64(p); f != nil {
		return cf, f
	}
	return cf, nil
}

// checkExtensions validates extensions = attr-val *("," attr-val), where
// attr-val = ALPHA "=" value and value = 1*value-char. The mandatory
// extension attribute "m" is refused (RFC 5802 §5.1).
func checkExtensions(s string) *Failure {
	for {
		attr, rest, more := strings.Cut(s, ",")
		if len(attr) < 3 || !isAlpha(attr[0]) || attr[1] != '=' {
			return malformed("invalid attribute")
		}
		if attr[0] == 'm' {
			return malformed("mandatory SCRAM extension not supported")
		}
		if !more {
			return nil
		}
		s = rest
	}
}

func decodeBase64(s string) ([]byte, *Failure) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, &Failure{Condition: IncorrectEncoding, Text: "invalid base64 in SCRAM attribute", Err: err}
	}
	return b, nil
}

// decodeName decodes a saslname: 1*(value-safe-char / "=2C" / "=3D").
// The caller has already split on ','.
func decodeName(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	if strings.IndexByte(s, '=') < 0 {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		switch s[i+1 : i+3] {
		case "2C":
			b.WriteByte(',')
		case "3D":
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// encodeName encodes a saslname.
func encodeName(s string) string {
	if !strings.ContainsAny(s, ",=") {
		return s
	}
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// printable reports whether s is a valid c-nonce: 1*printable, where
// printable = %x21-2B / %x2D-7E.
func printable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// validCBName reports whether s is a cb-name: 1*(ALPHA / DIGIT / "." / "-").
func validCBName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && (c < '0' || c > '9') && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
