package jid

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/bidirule"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// maxPartLen is the RFC 7622 limit on each part, in bytes of UTF-8, applied to
// the canonical (enforced) form.
const maxPartLen = 1023

// Byte classes for the ASCII fast paths.
const (
	cLocal  = 1 << iota // may appear in a localpart (IdentifierClass ASCII minus RFC 7622 §3.3.1 exclusions)
	cDomain             // letter, digit, '-' or '.' (STD3 / LDH)
	cRes                // may appear in a resourcepart (FreeformClass ASCII: 0x20..0x7E)
	cUpper              // 'A'..'Z': needs lowercasing in local- and domainparts
)

var asciiClass = func() (t [256]uint8) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] |= cRes
		switch c {
		case ' ', '"', '&', '\'', '/', ':', '<', '>', '@':
		default:
			t[c] |= cLocal
		}
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.':
			t[c] |= cDomain
		case 'A' <= c && c <= 'Z':
			t[c] |= cDomain | cUpper
		}
	}
	return t
}()

// isForbiddenLocal reports whether r is one of the characters RFC 7622 §3.3.1
// excludes from localparts on top of PRECIS IdentifierClass.
func isForbiddenLocal(r rune) bool {
	switch r {
	case '"', '&', '\'', '/', ':', '<', '>', '@':
		return true
	}
	return false
}

// canonLocal validates and canonicalises a non-empty localpart. off is the
// byte offset of p within ctx.input. If lower is true, out is ASCII and its
// canonical form is out with 'A'..'Z' mapped to lower case (done when the
// final string is assembled, to save an allocation).
func canonLocal(p string, off int, ctx errCtx, fast bool) (out string, lower bool, err error) {
	ascii := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c >= utf8.RuneSelf {
			ascii = false
			continue
		}
		k := asciiClass[c]
		if k&cLocal == 0 {
			return "", false, ctx.err(ErrInvalidLocal, nil,
				"character %s at byte %d is not allowed in a localpart", describeRune(rune(c)), off+i)
		}
		lower = lower || k&cUpper != 0
	}
	if ascii && fast {
		// For ASCII input UsernameCaseMapped is exactly ASCII lowercasing.
		if len(p) > maxPartLen {
			return "", false, ctx.err(ErrLocalTooLong, nil, "localpart is %d bytes, the maximum is %d", len(p), maxPartLen)
		}
		return p, lower, nil
	}
	if err := checkUTF8(p, off, ctx, ErrInvalidLocal); err != nil {
		return "", false, err
	}
	out, err = enforce(usernameCaseMapped, p)
	if err != nil {
		detail, cause := precisDetail(precis.UsernameCaseMapped, usernameDiag, "UsernameCaseMapped", p, off, err)
		return "", false, ctx.err(ErrInvalidLocal, cause, "%s", detail)
	}
	if i := strings.IndexFunc(out, isForbiddenLocal); i >= 0 {
		r, _ := utf8.DecodeRuneInString(out[i:])
		return "", false, ctx.err(ErrInvalidLocal, nil,
			"localpart %s canonicalises to %s, which contains the forbidden character %s", clip(p), clip(out), describeRune(r))
	}
	if out == "" {
		return "", false, ctx.err(ErrInvalidLocal, nil, "localpart %s canonicalises to the empty string", clip(p))
	}
	if len(out) > maxPartLen {
		return "", false, ctx.err(ErrLocalTooLong, nil,
			"localpart is %d bytes after canonicalisation, the maximum is %d", len(out), maxPartLen)
	}
	return out, false, nil
}

// canonDomain validates and canonicalises a non-empty domainpart. See
// canonLocal for off and lower.
func canonDomain(d string, off int, ctx errCtx, fast bool) (out string, lower bool, err error) {
	// RFC 7622 §3.2: a final label separator is stripped before anything else.
	stripped := false
	if strings.HasSuffix(d, ".") {
		d, stripped = d[:len(d)-1], true
	}
	if d == "" {
		return "", false, ctx.err(ErrEmptyDomain, nil, "domainpart at byte %d is only a trailing dot", off)
	}
	if d[0] == '[' {
		out, err := canonIPLiteral(d, off, ctx)
		return out, false, err
	}
	ascii := true
	for i := 0; i < len(d); i++ {
		c := d[i]
		if c >= utf8.RuneSelf {
			ascii = false
			continue
		}
		k := asciiClass[c]
		if k&cDomain == 0 {
			return "", false, ctx.err(ErrInvalidDomain, nil,
				"character %s at byte %d is not allowed in a domainpart", describeRune(rune(c)), off+i)
		}
		lower = lower || k&cUpper != 0
	}
	if ascii && fast && simpleLDH(d) {
		// Plain NR-LDH labels: IDNA2008 / UTS #46 mapping is ASCII lowercasing.
		if len(d) > maxPartLen {
			return "", false, ctx.err(ErrDomainTooLong, nil, "domainpart is %d bytes, the maximum is %d", len(d), maxPartLen)
		}
		return d, lower, nil
	}
	if err := checkUTF8(d, off, ctx, ErrInvalidDomain); err != nil {
		return "", false, err
	}
	out, err = enforce(idna.Lookup.ToUnicode, d)
	if err != nil {
		return "", false, ctx.err(ErrInvalidDomain, err, "domainpart %s is not a valid IDNA domain name", clip(d))
	}
	// UTS #46 maps U+3002, U+FF0E and U+FF61 to '.', so a final one of those
	// counts as the (single) trailing label separator too.
	if !stripped && strings.HasSuffix(out, ".") {
		out = out[:len(out)-1]
	}
	if out == "" {
		return "", false, ctx.err(ErrInvalidDomain, nil, "domainpart %s canonicalises to the empty string", clip(d))
	}
	if out[0] == '.' || out[len(out)-1] == '.' || strings.Contains(out, "..") {
		return "", false, ctx.err(ErrInvalidDomain, nil, "domainpart %s has an empty label", clip(d))
	}
	if strings.ContainsAny(out, "@/[]") {
		// Cannot happen with STD3 rules; kept so that a change in x/net/idna
		// cannot make String() ambiguous.
		return "", false, ctx.err(ErrInvalidDomain, nil, "domainpart %s canonicalises to %s", clip(d), clip(out))
	}
	if len(out) > maxPartLen {
		return "", false, ctx.err(ErrDomainTooLong, nil,
			"domainpart is %d bytes after canonicalisation, the maximum is %d", len(out), maxPartLen)
	}
	return out, false, nil
}

// simpleLDH reports whether every label of the ASCII LDH string d is non-empty,
// neither starts nor ends with '-', and has no "--" at positions 3-4 (which
// would make it an R-LDH label such as an A-label "xn--...", handled by the
// slow path).
func simpleLDH(d string) bool {
	start := 0
	for i := 0; i <= len(d); i++ {
		if i < len(d) && d[i] != '.' {
			continue
		}
		l := d[start:i]
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' || (len(l) >= 4 && l[2] == '-' && l[3] == '-') {
			return false
		}
		start = i + 1
	}
	return true
}

// canonIPLiteral handles an RFC 3986 IP-literal holding an IPv6 address. The
// canonical form is the RFC 5952 text form, in brackets.
func canonIPLiteral(d string, off int, ctx errCtx) (string, error) {
	if len(d) < 2 || d[len(d)-1] != ']' {
		return "", ctx.err(ErrInvalidDomain, nil, "IP literal at byte %d has no closing ']'", off)
	}
	inner := d[1 : len(d)-1]
	addr, err := netip.ParseAddr(inner)
	if err != nil {
		return "", ctx.err(ErrInvalidDomain, err, "IP literal at byte %d is not a valid IPv6 address", off)
	}
	if !addr.Is6() {
		return "", ctx.err(ErrInvalidDomain, nil, "IP literal at byte %d holds an IPv4 address; write it without brackets", off)
	}
	if addr.Zone() != "" {
		return "", ctx.err(ErrInvalidDomain, nil, "IP literal at byte %d has a zone identifier", off)
	}
	var buf [64]byte
	b := addr.AppendTo(buf[:0])
	if string(b) == inner {
		return d, nil
	}
	return "[" + string(b) + "]", nil
}

// canonResource validates and canonicalises a non-empty resourcepart.
func canonResource(r string, off int, ctx errCtx, fast bool) (string, error) {
	ascii := true
	for i := 0; i < len(r); i++ {
		c := r[i]
		if c >= utf8.RuneSelf {
			ascii = false
			continue
		}
		if asciiClass[c]&cRes == 0 {
			return "", ctx.err(ErrInvalidResource, nil,
				"character %s at byte %d is not allowed in a resourcepart", describeRune(rune(c)), off+i)
		}
	}
	if ascii && fast {
		// OpaqueString leaves printable ASCII untouched.
		if len(r) > maxPartLen {
			return "", ctx.err(ErrResourceTooLong, nil, "resourcepart is %d bytes, the maximum is %d", len(r), maxPartLen)
		}
		return r, nil
	}
	if err := checkUTF8(r, off, ctx, ErrInvalidResource); err != nil {
		return "", err
	}
	out, err := enforce(opaqueString, r)
	if err != nil {
		detail, cause := precisDetail(precis.OpaqueString, precis.OpaqueString, "OpaqueString", r, off, err)
		return "", ctx.err(ErrInvalidResource, cause, "%s", detail)
	}
	if out == "" {
		return "", ctx.err(ErrInvalidResource, nil, "resourcepart %s canonicalises to the empty string", clip(r))
	}
	if len(out) > maxPartLen {
		return "", ctx.err(ErrResourceTooLong, nil,
			"resourcepart is %d bytes after canonicalisation, the maximum is %d", len(out), maxPartLen)
	}
	return out, nil
}

func checkUTF8(s string, off int, ctx errCtx, kind error) error {
	if utf8.ValidString(s) {
		return nil
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return ctx.err(kind, nil, "invalid UTF-8 at byte %d", off+i)
			}
		}
	}
	return ctx.err(kind, nil, "invalid UTF-8")
}

// enforce applies f and, if that changed the string, checks that f accepts
// its own output unchanged, so that canonicalisation is idempotent even where
// the underlying library is not. (x/net/idna, for one, maps "aℵ" to "aא"
// without applying the Bidi rule to the mapped label, and then rejects "aא".)
// It returns s itself when s is already canonical.
func enforce(f func(string) (string, error), s string) (string, error) {
	out, err := f(s)
	if err != nil {
		return "", err
	}
	if out == s {
		return s, nil
	}
	again, err := f(out)
	if err != nil {
		return "", fmt.Errorf("canonical form %s is itself invalid: %w", clip(out), err)
	}
	if again != out {
		return "", fmt.Errorf("canonical form %s is not stable (maps to %s)", clip(out), clip(again))
	}
	return out, nil
}

func usernameCaseMapped(s string) (string, error) { return precisApply(precis.UsernameCaseMapped, s) }
func opaqueString(s string) (string, error)       { return precisApply(precis.OpaqueString, s) }

// precisApply is p.String(s), except that it returns s itself, without
// allocating a new string, when s is already in canonical form.
func precisApply(p *precis.Profile, s string) (string, error) {
	var buf [128]byte // the output stays on the stack unless it is longer
	out, err := p.Append(buf[:0], []byte(s))
	if err != nil {
		return "", err
	}
	if string(out) == s {
		return s, nil
	}
	return string(out), nil
}

// usernameDiag is UsernameCaseMapped without the Bidi rule, used only to
// find the offending character for error messages.
var usernameDiag = precis.NewIdentifier(precis.FoldWidth, precis.LowerCase(), precis.Norm(norm.NFC))

// precisDetail explains, for an error message, why profile p (named name)
// rejected s with err, and returns the detail and the cause worth showing
// besides it. diag is p without the Bidi rule. Error path only.
func precisDetail(p, diag *precis.Profile, name, s string, off int, err error) (string, error) {
	allowed := p.Allowed()
	prev := 0
	for i, r := range s {
		start := prev
		prev = i
		if allowed.Contains(r) {
			continue
		}
		// Check r with its neighbours, for the sake of contextual rules.
		end := i + utf8.RuneLen(r)
		if _, n := utf8.DecodeRuneInString(s[end:]); n > 0 {
			end += n
		}
		if _, err := diag.String(s[start:end]); err != nil {
			return fmt.Sprintf("character %s at byte %d is not allowed here by PRECIS %s", describeRune(r), off+i, name), nil
		}
	}
	if errors.Is(err, bidirule.ErrInvalid) {
		return fmt.Sprintf("%s does not satisfy the Bidi Rule (RFC 5893)", clip(s)), nil
	}
	return fmt.Sprintf("%s is rejected by PRECIS %s", clip(s), name), err
}

// writePart appends s to b, ASCII-lowercasing it if lower is set.
func writePart(b *strings.Builder, s string, lower bool) {
	if !lower {
		b.WriteString(s)
		return
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
}

// build assembles a JID from canonical parts (l or r empty means absent).
func build(l string, lowerL bool, d string, lowerD bool, r string) JID {
	if l == "" && r == "" && !lowerD {
		return JID{s: d, domEnd: uint16(len(d))}
	}
	n := len(d)
	if l != "" {
		n += len(l) + 1
	}
	if r != "" {
		n += len(r) + 1
	}
	var b strings.Builder
	b.Grow(n)
	if l != "" {
		writePart(&b, l, lowerL)
		b.WriteByte('@')
	}
	writePart(&b, d, lowerD)
	domEnd := b.Len()
	if r != "" {
		b.WriteByte('/')
		b.WriteString(r)
	}
	return JID{s: b.String(), local: uint16(len(l)), domEnd: uint16(domEnd)}
}

// parse implements Parse. With fast=false every part goes through
// PRECIS/IDNA even when it is ASCII; tests use that to check the fast paths.
func parse(s string, fast bool) (JID, error) {
	if s == "" {
		return JID{}, ErrEmpty
	}
	ctx := errCtx{input: s}

	// RFC 7622 §3.1: split at the first '/', then at the first '@' before it.
	rest, res, hasRes := s, "", false
	if i := strings.IndexByte(s, '/'); i >= 0 {
		rest, res, hasRes = s[:i], s[i+1:], true
	}
	local, domain, hasLocal := "", rest, false
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		local, domain, hasLocal = rest[:i], rest[i+1:], true
	}
	if hasLocal && local == "" {
		return JID{}, ctx.err(ErrEmptyLocal, nil, "nothing before '@'")
	}
	domOff := 0
	if hasLocal {
		domOff = len(local) + 1
	}
	if domain == "" {
		return JID{}, ctx.err(ErrEmptyDomain, nil, "nothing at byte %d", domOff)
	}
	if hasRes && res == "" {
		return JID{}, ctx.err(ErrEmptyResource, nil, "nothing after '/'")
	}

	var (
		l, d, r        string
		lowerL, lowerD bool
		err            error
	)
	if hasLocal {
		if l, lowerL, err = canonLocal(local, 0, ctx, fast); err != nil {
			return JID{}, err
		}
	}
	if d, lowerD, err = canonDomain(domain, domOff, ctx, fast); err != nil {
		return JID{}, err
	}
	if hasRes {
		if r, err = canonResource(res, len(rest)+1, ctx, fast); err != nil {
			return JID{}, err
		}
	}
	if !lowerL && !lowerD && l == local && d == domain && r == res {
		// Already canonical: keep the input, no allocation.
		return JID{s: s, local: uint16(len(l)), domEnd: uint16(len(rest))}, nil
	}
	return build(l, lowerL, d, lowerD, r), nil
}
