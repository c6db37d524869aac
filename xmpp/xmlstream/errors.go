package xmlstream

import (
	"errors"
	"strconv"
)

// Stream error conditions (RFC 6120 §4.9.3) carried by *Error.
const (
	CondNotWellFormed       = "not-well-formed"
	CondRestrictedXML       = "restricted-xml"
	CondPolicyViolation     = "policy-violation"
	CondInvalidNamespace    = "invalid-namespace"
	CondUnsupportedEncoding = "unsupported-encoding"
	CondBadFormat           = "bad-format"
	CondInvalidXML          = "invalid-xml"
)

// Error is a problem with the XML received. Condition is the RFC 6120
// §4.9.3 stream error condition to send to the peer before closing the
// stream; Msg is a human-readable description for logs.
type Error struct {
	Condition string
	Msg       string
	// Offset is the input byte offset (from the start of the stream or the
	// last Reset) of the token where the problem was found.
	Offset int64
}

func (e *Error) Error() string {
	return "xmlstream: " + e.Condition + ": " + e.Msg + " (at byte " + strconv.FormatInt(e.Offset, 10) + ")"
}

// ErrStreamEnd is returned by Decoder.Element when the stream root's
// closing tag (</stream:stream>) has been read. The decoder then returns it
// for every further call until Reset.
var ErrStreamEnd = errors.New("xmlstream: end of stream")
