// Package jid implements XMPP addresses (JIDs) as defined by RFC 7622.
//
// A JID is an immutable value holding the canonical (enforced) form of an
// address: [ localpart "@" ] domainpart [ "/" resourcepart ]. Parse, New and
// WithResource validate and canonicalise their input once; afterwards two JIDs
// denote the same entity exactly when they are equal with ==, and String never
// allocates. The zero JID is the empty address; it is never returned alongside
// a nil error by Parse or New.
//
// What is implemented:
//
//   - RFC 7622 §3.1: the address is split at the first '/' (everything after
//     it is the resourcepart, which may itself contain '/' and '@'), then the
//     rest at the first '@'. Empty parts next to a separator are errors.
//   - RFC 7622 §3.2 domainpart: one final '.' is removed before anything else
//     (a final U+3002, U+FF0E or U+FF61 counts as such a dot too). An IP-literal
//     "[...]" must hold an IPv6 address without zone and is canonicalised to the
//     RFC 5952 text form; dotted IPv4 addresses are plain LDH names. Any other
//     domainpart is processed with the UTS #46 / IDNA2008 lookup profile of
//     golang.org/x/net/idna (non-transitional mapping: case folding, width
//     mapping, NFC; STD3 rules; hyphen, CONTEXTJ and Bidi rules); A-labels are
//     converted to U-labels, as §3.2.1 requires, so the canonical domainpart
//     is lower-case Unicode text such as "bücher.example". Empty labels are
//     rejected.
//   - RFC 7622 §3.3 localpart: PRECIS UsernameCaseMapped (RFC 8265 §3.3: width
//     mapping, lower-casing, NFC, Bidi rule, IdentifierClass), and the
//     characters " & ' / : < > @ are forbidden, including when they result
//     from mapping (e.g. U+FF20 FULLWIDTH COMMERCIAL AT).
//   - RFC 7622 §3.4 resourcepart: PRECIS OpaqueString (RFC 8265 §4.2:
//     non-ASCII spaces mapped to U+0020, NFC, FreeformClass).
//   - Each part must be 1 to 1023 bytes long in its canonical form.
//   - Input must be valid UTF-8. A part whose canonical form would not itself
//     be accepted unchanged is rejected, so that Parse(j.String()) == j
//     always holds (x/net/idna, for example, maps "aℵ" to "aא" without
//     noticing that the result breaks the Bidi rule).
//
// What is not implemented:
//
//   - JID Escaping (XEP-0106): "\20" and friends are ordinary characters.
//   - IPvFuture IP-literals ("[v1.x]") and IPv6 zones are rejected.
//   - DNS length limits (63-byte labels, 253-byte names) are not enforced, only
//     the 1023-byte limit of RFC 7622; the domainpart is not converted to
//     A-labels (use idna.Lookup.ToASCII before a DNS lookup).
//   - The legacy stringprep profiles of RFC 6122 (Nodeprep, Resourceprep).
//   - Results follow the Unicode version of the x/text and x/net tables.
//
// Performance: Parse is meant for the per-stanza hot path. Parts that are
// plain ASCII are checked with a byte table and canonicalised by ASCII
// lower-casing, which gives exactly the PRECIS/IDNA result (tests and a fuzz
// target hold the two paths to that); only non-ASCII parts and unusual ASCII
// domainparts (A-labels, odd hyphens, empty labels) go through
// x/text/secure/precis and x/net/idna. Parsing an already-canonical ASCII
// address does not allocate; the JID then shares memory with the argument.
package jid

import "strings"

// JID is an XMPP address in canonical form. It is a small comparable value:
// use == (or Equal) for comparison and as a map key. The zero value is the
// empty JID.
type JID struct {
	s      string // canonical address
	local  uint16 // length of the localpart, 0 if there is none
	domEnd uint16 // end of the domainpart in s: index of '/' or len(s)
}

// Parse parses, validates and canonicalises an address. See the package
// documentation for the rules; errors wrap one of the Err* sentinels.
func Parse(s string) (JID, error) {
	return parse(s, true)
}

// MustParse is like Parse but panics on error. Use it for constants.
func MustParse(s string) JID {
	j, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return j
}

// New builds a JID from its parts, validating and canonicalising each of them
// as Parse does. An empty local or resource means that part is absent; the
// domain is required. The parts are not split further: '@' and '/' are
// invalid characters in the localpart and domainpart, while the resourcepart
// may contain them. Error offsets refer to the offending part.
func New(local, domain, resource string) (JID, error) {
	if domain == "" {
		return JID{}, &parseError{kind: ErrEmptyDomain, detail: "the domainpart is required"}
	}
	var (
		l, r           string
		lowerL, lowerD bool
		err            error
	)
	if local != "" {
		if l, lowerL, err = canonLocal(local, 0, errCtx{input: local, label: "localpart"}, true); err != nil {
			return JID{}, err
		}
	}
	d, lowerD, err := canonDomain(domain, 0, errCtx{input: domain, label: "domainpart"}, true)
	if err != nil {
		return JID{}, err
	}
	if resource != "" {
		if r, err = canonResource(resource, 0, errCtx{input: resource, label: "resourcepart"}, true); err != nil {
			return JID{}, err
		}
	}
	return build(l, lowerL, d, lowerD, r), nil
}

// Local returns the localpart, or "" if there is none.
func (j JID) Local() string {
	return j.s[:j.local]
}

func (j JID) domStart() int {
	if j.local == 0 {
		return 0
	}
	return int(j.local) + 1
}

// Domain returns the domainpart ("" only for the zero JID).
func (j JID) Domain() string {
	return j.s[j.domStart():j.domEnd]
}

// Resource returns the resourcepart, or "" if there is none.
func (j JID) Resource() string {
	if int(j.domEnd) >= len(j.s) {
		return ""
	}
	return j.s[j.domEnd+1:]
}

// Bare returns j without its resourcepart. It does not allocate.
func (j JID) Bare() JID {
	return JID{s: j.s[:j.domEnd], local: j.local, domEnd: j.domEnd}
}

// DomainJID returns the JID made of j's domainpart only. It does not allocate.
func (j JID) DomainJID() JID {
	d := j.Domain()
	return JID{s: d, domEnd: uint16(len(d))}
}

// WithResource returns j with its resourcepart replaced by r, canonicalised
// with OpaqueString. An empty r gives j.Bare(). It fails on the zero JID.
func (j JID) WithResource(r string) (JID, error) {
	if j.IsZero() {
		return JID{}, &parseError{kind: ErrEmptyDomain, detail: "cannot add a resourcepart to the zero JID"}
	}
	if r == "" {
		return j.Bare(), nil
	}
	r, err := canonResource(r, 0, errCtx{input: r, label: "resourcepart"}, true)
	if err != nil {
		return JID{}, err
	}
	bare := j.s[:j.domEnd]
	var b strings.Builder
	b.Grow(len(bare) + 1 + len(r))
	b.WriteString(bare)
	b.WriteByte('/')
	b.WriteString(r)
	return JID{s: b.String(), local: j.local, domEnd: j.domEnd}, nil
}

// IsZero reports whether j is the zero (empty) JID.
func (j JID) IsZero() bool { return j.s == "" }

// IsBare reports whether j is a non-zero JID without a resourcepart.
func (j JID) IsBare() bool { return j.s != "" && int(j.domEnd) == len(j.s) }

// IsFull reports whether j has a resourcepart.
func (j JID) IsFull() bool { return int(j.domEnd) < len(j.s) }

// IsDomain reports whether j is a non-zero JID with neither localpart nor
// resourcepart (a server or component address).
func (j JID) IsDomain() bool { return j.IsBare() && j.local == 0 }

// String returns the canonical form of j ("" for the zero JID). It does not
// allocate.
func (j JID) String() string { return j.s }

// Equal reports whether j and o are the same address; it is the same as ==.
func (j JID) Equal(o JID) bool { return j == o }

// Compare returns -1, 0 or +1 comparing the canonical strings of j and o
// byte-wise; useful with slices.SortFunc.
func (j JID) Compare(o JID) int { return strings.Compare(j.s, o.s) }

// AppendText implements encoding.TextAppender.
func (j JID) AppendText(b []byte) ([]byte, error) {
	return append(b, j.s...), nil
}

// MarshalText implements encoding.TextMarshaler. The zero JID marshals to
// empty text.
func (j JID) MarshalText() ([]byte, error) {
	return []byte(j.s), nil
}

// UnmarshalText implements encoding.TextUnmarshaler using Parse, except that
// empty text gives the zero JID (so that the zero value round-trips).
func (j *JID) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*j = JID{}
		return nil
	}
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*j = v
	return nil
}
