// Package stream holds the stream-level pieces of RFC 6120 that are not
// stanzas: stream error conditions (§4.9.3), the stream header and the
// namespaces of stream negotiation (STARTTLS, SASL, bind, session).
package stream

import (
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Namespaces of stream negotiation.
const (
	NS        = stanza.NSStream
	NSErrors  = "urn:ietf:params:xml:ns:xmpp-streams"
	NSTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	NSSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSession = "urn:ietf:params:xml:ns:xmpp-session"
	NSSASLCB  = "urn:xmpp:sasl-cb:0" // XEP-0440
)

// Condition is a stream error condition (RFC 6120 §4.9.3).
type Condition string

// Stream error conditions.
const (
	BadFormat              Condition = "bad-format"
	BadNamespacePrefix     Condition = "bad-namespace-prefix"
	Conflict               Condition = "conflict"
	ConnectionTimeout      Condition = "connection-timeout"
	HostGone               Condition = "host-gone"
	HostUnknown            Condition = "host-unknown"
	ImproperAddressing     Condition = "improper-addressing"
	InternalServerError    Condition = "internal-server-error"
	InvalidFrom            Condition = "invalid-from"
	InvalidNamespace       Condition = "invalid-namespace"
	InvalidXML             Condition = "invalid-xml"
	NotAuthorized          Condition = "not-authorized"
	NotWellFormed          Condition = "not-well-formed"
	PolicyViolation        Condition = "policy-violation"
	RemoteConnectionFailed Condition = "remote-connection-failed"
	Reset                  Condition = "reset"
	ResourceConstraint     Condition = "resource-constraint"
	RestrictedXML          Condition = "restricted-xml"
	SeeOtherHost           Condition = "see-other-host"
	SystemShutdown         Condition = "system-shutdown"
	UndefinedCondition     Condition = "undefined-condition"
	UnsupportedEncoding    Condition = "unsupported-encoding"
	UnsupportedFeature     Condition = "unsupported-feature"
	UnsupportedStanzaType  Condition = "unsupported-stanza-type"
	UnsupportedVersion     Condition = "unsupported-version"
)

// Error is a stream error.
type Error struct {
	Condition Condition
	Text      string
	// App is an application-specific condition (RFC 6120 §4.9.4), such
	// as XEP-0198's <handled-count-too-high/>; nil for none.
	App *stanza.Element
}

// Error implements error.
func (e *Error) Error() string {
	if e.Text != "" {
		return "stream error: " + string(e.Condition) + ": " + e.Text
	}
	return "stream error: " + string(e.Condition)
}

// Append writes <stream:error> for e (the caller closes the stream after it).
func (e *Error) Append(buf []byte) []byte {
	buf = append(buf, "<stream:error><"...)
	buf = append(buf, e.Condition...)
	buf = append(buf, ` xmlns="`+NSErrors+`"/>`...)
	if e.Text != "" {
		buf = append(buf, `<text xmlns="`+NSErrors+`" xml:lang="en">`...)
		buf = stanza.AppendEscaped(buf, e.Text, false)
		buf = append(buf, "</text>"...)
	}
	if e.App != nil {
		buf = e.App.Append(buf, "")
	}
	return append(buf, "</stream:error>"...)
}

// Header is the opening of a stream as the server sends it.
type Header struct {
	ContentNS string // jabber:client, jabber:server, ...
	From, To  string
	ID        string
	Lang      string
}

// Append writes the XML declaration and the <stream:stream> open tag.
func (h Header) Append(buf []byte) []byte {
	buf = append(buf, `<?xml version='1.0'?><stream:stream xmlns="`...)
	buf = stanza.AppendEscaped(buf, h.ContentNS, true)
	buf = append(buf, `" xmlns:stream="`+NS+`" version="1.0"`...)
	for _, kv := range [...][2]string{{"from", h.From}, {"to", h.To}, {"id", h.ID}, {"xml:lang", h.Lang}} {
		if kv[1] != "" {
			buf = append(buf, ' ')
			buf = append(buf, kv[0]...)
			buf = append(buf, `="`...)
			buf = stanza.AppendEscaped(buf, kv[1], true)
			buf = append(buf, '"')
		}
	}
	return append(buf, '>')
}

// Close is the closing tag of a stream.
const Close = "</stream:stream>"
