package c2s

import (
	"context"
	"errors"
	"net"

	"github.com/metronome-xmpp/metronome/module"
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
	// BOSHFraming is WebSocketFraming carried by a BOSH connection
	// manager (XEP-0124/XEP-0206, modules/bosh): the same <open/> and
	// <close/> elements, which the connection manager translates to and
	// from its <body/> wrappers. Only the transport's name differs.
	BOSHFraming
)

// ReadNotifier is implemented by connections given to ServeFramed that
// can tell when input arrives (modules/websocket, modules/bosh): an idle
// session over one then waits with no goroutine of its own, in the
// poller, as TCP sessions do (idle.go).
type ReadNotifier interface {
	// NotifyReadable arranges for f to be called once, as soon as a Read
	// would return without waiting (input, the end of the stream or an
	// error), and returns true; or, if that is already the case, returns
	// false without keeping f. f must not block.
	NotifyReadable(f func()) bool
	// Buffered reports whether a Read would return data without waiting.
	Buffered() bool
}

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

// HTTPTransport returns what a module that runs client sessions over HTTP
// (websocket, bosh) needs from its host: the host's HTTP router and the
// Server the core publishes. ok is false when either is missing (a tool
// working on the data offline loads modules without HTTP or a core); the
// module then serves nothing.
func HTTPTransport(h module.Host) (r module.Router, srv Server, ok bool, err error) {
	if r, ok = module.HTTP(h); !ok {
		return nil, nil, false, nil
	}
	v, ok := h.Lookup(ProvideName)
	if !ok {
		return nil, nil, false, nil
	}
	if srv, ok = v.(Server); !ok {
		return nil, nil, false, errors.New("the core does not serve client sessions")
	}
	return r, srv, true, nil
}

// ServeFramed runs a client stream on conn with the given framing. secure
// says the transport is already encrypted (the HTTP request came over TLS
// or through a trusted proxy): no STARTTLS is offered over a framed
// transport. done (may be nil) is called once the stream has ended.
func ServeFramed(ctx context.Context, conn net.Conn, core Core, framing Framing, secure bool, done func()) {
	serve(ctx, conn, core, false, framing, secure, done)
}

// framed reports whether the session uses RFC 7395 framing.
func (s *Session) framed() bool { return s.framing != StreamFraming }

// Transport names the session's transport for metrics and the admin API.
func (s *Session) Transport() string {
	switch s.framing {
	case WebSocketFraming:
		return "websocket"
	case BOSHFraming:
		return "bosh"
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

// SplitElements cuts what a framed session wrote into its top-level
// elements, for transports that send each element on its own (RFC 7395)
// or wrap them (BOSH): it calls send with each complete element of b
// (white space between elements is dropped) and returns what is left,
// the start of an element that a later Write completes. It relies on b
// being XML as the session writes it: '<' and '>' only as markup or
// inside quoted attribute values, no comments or CDATA sections.
func SplitElements(b []byte, send func([]byte) error) ([]byte, error) {
	depth, start := 0, -1
	i := 0
	for i < len(b) {
		if b[i] != '<' {
			i++
			continue
		}
		if depth == 0 {
			start = i
		}
		end := TagEnd(b, i)
		if end < 0 {
			break
		}
		switch {
		case i+1 < len(b) && (b[i+1] == '?' || b[i+1] == '!'):
			// XML declaration or comment: not part of an element.
		case i+1 < len(b) && b[i+1] == '/':
			depth--
		case b[end-2] != '/':
			depth++
		}
		i = end
		if depth <= 0 {
			depth = 0
			if start >= 0 && b[start+1] != '?' && b[start+1] != '!' {
				if err := send(b[start:end]); err != nil {
					return nil, err
				}
			}
			start = -1
		}
	}
	if start >= 0 {
		return b[start:], nil
	}
	return nil, nil
}

// TagEnd returns the offset just past the tag starting at b[i] ('<'),
// skipping quoted attribute values, or -1 if the tag is incomplete.
func TagEnd(b []byte, i int) int {
	var quote byte
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return j + 1
		}
	}
	return -1
}
