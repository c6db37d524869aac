package jid

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them (test with errors.Is); the wrapping error's message says what is wrong
// and where.
var (
	// ErrEmpty: the whole address is the empty string.
	ErrEmpty = errors.New("jid: empty address")
	// ErrEmptyLocal: an '@' with nothing before it.
	ErrEmptyLocal = errors.New("jid: empty localpart")
	// ErrEmptyDomain: no domainpart (e.g. "juliet@", "/foo", ".").
	ErrEmptyDomain = errors.New("jid: empty domainpart")
	// ErrEmptyResource: a '/' with nothing after it.
	ErrEmptyResource = errors.New("jid: empty resourcepart")
	// ErrLocalTooLong: canonical localpart longer than 1023 bytes.
	ErrLocalTooLong = errors.New("jid: localpart too long")
	// ErrDomainTooLong: canonical domainpart longer than 1023 bytes.
	ErrDomainTooLong = errors.New("jid: domainpart too long")
	// ErrResourceTooLong: canonical resourcepart longer than 1023 bytes.
	ErrResourceTooLong = errors.New("jid: resourcepart too long")
	// ErrInvalidLocal: localpart rejected by PRECIS UsernameCaseMapped or
	// containing one of the characters RFC 7622 §3.3.1 forbids.
	ErrInvalidLocal = errors.New("jid: invalid localpart")
	// ErrInvalidDomain: domainpart that is neither a valid IDNA2008/UTS #46
	// domain name nor a valid IP address.
	ErrInvalidDomain = errors.New("jid: invalid domainpart")
	// ErrInvalidResource: resourcepart rejected by PRECIS OpaqueString.
	ErrInvalidResource = errors.New("jid: invalid resourcepart")
)

// parseError is the concrete type of the errors returned by this package.
// Callers use errors.Is with the sentinels above.
type parseError struct {
	kind   error  // one of the sentinels
	where  string // e.g. `in "foo bar@example.org"` or `in localpart "foo bar"`
	detail string // what is wrong, may be empty
	cause  error  // underlying PRECIS / IDNA / netip error, may be nil
}

func (e *parseError) Error() string {
	msg := e.kind.Error()
	if e.where != "" {
		msg += " " + e.where
	}
	if e.detail != "" {
		msg += ": " + e.detail
	}
	if e.cause != nil {
		msg += " (" + e.cause.Error() + ")"
	}
	return msg
}

// Unwrap returns the sentinel and, if any, the underlying library error.
func (e *parseError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// errCtx describes the string being validated, for error messages.
type errCtx struct {
	input string // string offsets refer to
	label string // "" for a whole address, else "localpart" etc.
}

const maxQuoted = 96

// clip quotes s for an error message, truncating it if it is long.
func clip(s string) string {
	trunc := false
	if len(s) > maxQuoted {
		n := maxQuoted
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s, trunc = s[:n], true
	}
	q := strconv.Quote(s)
	if trunc {
		q += "..."
	}
	return q
}

func (c errCtx) where() string {
	q := clip(c.input)
	if c.label != "" {
		return "in " + c.label + " " + q
	}
	return "in " + q
}

func (c errCtx) err(kind error, cause error, format string, args ...any) error {
	return &parseError{kind: kind, where: c.where(), detail: fmt.Sprintf(format, args...), cause: cause}
}

// describeRune formats r for error messages: U+0022 '"'.
func describeRune(r rune) string {
	if r == utf8.RuneError {
		return "U+FFFD"
	}
	return fmt.Sprintf("%U %s", r, strconv.QuoteRune(r))
}
