package c2s

import (
	"context"
	"net"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// Framing is how a transport delimits the stream: the classic XML stream
// of RFC 6120 (TCP), or the framed stream of RFC 7395 (WebSocket).
type Framing uint8

const (
	// StreamFraming is RFC 6120: <stream:stream> ... </stream:stream>.
	StreamFraming Framing = iota
	// WebSocketFraming is RFC 7395 §3.3: the stream is a sequence of
	// complete top-level elements, opened by <open/> and closed by
	// <close/> in the urn:ietf:params:xml:ns:xmpp-framing namespace.
	// The connection given to ServeFramed must deliver the bytes of the
	// client's messages in order on Read, and send each top-level element
	// it is given on Write as one message: every Write holds whole
	// elements (see modules/websocket).
	WebSocketFraming
)

// NSFraming is the RFC 7395 framing namespace.
const NSFraming = "urn:ietf:params:xml:ns:xmpp-framing"

// ProvideName is the name under which the core publishes, on every host,
// a Server that transport modules (WebSocket) hand their connections to.
const ProvideName = "core.c2s"

// Server runs client sessions over connections accepted by a module.
type Server interface {
	// C2SConfig returns the current c2s limits (MaxStanzaSize...).
	C2SConfig() Config
	// ServeFramed runs a client session on conn (see the package function
	// ServeFramed); done is called once the session has ended.
	ServeFramed(conn net.Conn, framing Framing, secure bool, done func())
	// AcquireRemote counts a connection from addr (host:port, or a bare
	// IP) against [c2s] max_connections_per_ip, as the TCP listeners do;
	// ok is false when the address is over the limit. release must be
	// called once when the connection ends.
	AcquireRemote(addr string) (release func(), ok bool)
}

// ServeFramed runs a client stream on conn with the given framing. secure
// says the transport is already encrypted (the HTTP request came over TLS
// or through a trusted proxy): no STARTTLS is offered over a framed
// transport. done (may be nil) is called once the stream has ended.
func ServeFramed(ctx context.Context, conn net.Conn, core Core, framing Framing, secure bool, done func()) {
	serve(ctx, conn, core, false, framing, secure, done)
}

// framed reports whether the session uses RFC 7395 framing.
func (s *Session) framed() bool { return s.framing == WebSocketFraming }

// Transport names the session's transport for metrics and the admin API.
func (s *Session) Transport() string {
	if s.framed() {
		return "websocket"
	}
	return "tcp"
}

// readHeader reads the next stream header: the stream root's start tag,
// or with RFC 7395 framing an <open/> element.
func (s *Session) readHeader(dec *xmlstream.Decoder) (xmlstream.Header, error) {
	if !s.framed() {
		return dec.Header()
	}
	el, err := dec.Element()
	if err != nil {
		return xmlstream.Header{}, err
	}
	if isFramingClose(el) {
		return xmlstream.Header{}, xmlstream.ErrStreamEnd
	}
	return xmlstream.Header{Name: el.Name, Space: el.Space, DefaultNS: stanza.NSClient, Attrs: el.Attrs}, nil
}

// isFramingClose reports whether el is RFC 7395's <close/>.
func isFramingClose(el *stanza.Element) bool {
	return el.Space == NSFraming && el.Name == "close"
}

// appendHeader writes the server's stream header.
func (s *Session) appendHeader(buf []byte, h stream.Header) []byte {
	if !s.framed() {
		return h.Append(buf)
	}
	buf = append(buf, `<open xmlns="`+NSFraming+`"`...)
	for _, kv := range [...][2]string{{"from", h.From}, {"to", h.To}, {"id", h.ID}, {"version", "1.0"}, {"xml:lang", h.Lang}} {
		if kv[1] != "" {
			buf = append(buf, ' ')
			buf = append(buf, kv[0]...)
			buf = append(buf, `="`...)
			buf = stanza.AppendEscaped(buf, kv[1], true)
			buf = append(buf, '"')
		}
	}
	return append(buf, "/>"...)
}

// appendStreamError writes a stream error; framed, it declares the
// stream: prefix itself (RFC 7395 §3.6).
func (s *Session) appendStreamError(buf []byte, e *stream.Error) []byte {
	if !s.framed() {
		return e.Append(buf)
	}
	const open = "<stream:error"
	n := len(buf)
	buf = e.Append(buf)
	tail := append([]byte(nil), buf[n+len(open):]...)
	buf = append(buf[:n+len(open)], ` xmlns:stream="`+stream.NS+`"`...)
	return append(buf, tail...)
}

// appendClose writes the end of the stream.
func (s *Session) appendClose(buf []byte) []byte {
	if s.framed() {
		return append(buf, `<close xmlns="`+NSFraming+`"/>`...)
	}
	return append(buf, stream.Close...)
}
