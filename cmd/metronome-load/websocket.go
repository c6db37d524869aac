package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/coder/websocket"

	"github.com/metronome-xmpp/metronome/internal/c2s"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// nsFraming is the namespace of RFC 7395's <open/> and <close/>.
const nsFraming = "urn:ietf:params:xml:ns:xmpp-framing"

// wsWire is XMPP over WebSocket (RFC 7395): every top-level element is one
// text message, the stream is opened with <open/> and ended with <close/>.
type wsWire struct {
	ws *websocket.Conn
	// ctx is the connection's, for every read and write: it ends with
	// shutdown. (coder/websocket keeps the context of a Reader for the
	// rest of its message, so a login's shorter context must not be
	// used: the login ends the connection through shutdown instead.)
	ctx    context.Context
	cancel context.CancelFunc
	dec    *xmlstream.Decoder
	in     tailReader // reads msgs, keeping the last bytes
	msgs   wsMessages
	out    []byte // the element being sent, with its namespace
}

// dialWS opens the WebSocket with the "xmpp" subprotocol (RFC 7395 §3.1).
func dialWS(ctx context.Context, p loginParams) (*wsWire, error) {
	ws, _, err := websocket.Dial(ctx, p.url, &websocket.DialOptions{HTTPClient: p.hc, Subprotocols: []string{"xmpp"}})
	if err != nil {
		return nil, err
	}
	if ws.Subprotocol() != "xmpp" {
		_ = ws.CloseNow()
		return nil, fmt.Errorf("the server selected the subprotocol %q, not xmpp", ws.Subprotocol())
	}
	ws.SetReadLimit(1 << 20)
	w := &wsWire{ws: ws}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.msgs = wsMessages{ws: ws, ctx: w.ctx}
	w.in.r = &w.msgs
	w.dec = xmlstream.NewDecoder(&w.in, xmlstream.Limits{MaxBytes: 1 << 20})
	// Each message is a root element: the framed stream has no wrapper.
	w.dec.SetFragmentMode(stanza.NSClient)
	return w, nil
}

// open sends <open/> and reads the server's <open/> and features (RFC 7395
// §3.4); after SASL success the stream is opened the same way (§3.5).
func (w *wsWire) open(domain string, _ bool) (*stanza.Element, error) {
	if err := w.send([]byte(`<open xmlns="` + nsFraming + `" to="` + domain + `" version="1.0"/>`)); err != nil {
		return nil, err
	}
	el, err := w.dec.Element()
	if err != nil {
		return nil, err
	}
	if el.Space != nsFraming || el.Name != "open" {
		return nil, fmt.Errorf("expected <open/>, got %s", el)
	}
	return expectFeatures(w.dec.Element())
}

func (w *wsWire) next() (*stanza.Element, error) { return w.dec.Element() }

// write sends each element of b as one message, declaring jabber:client
// where the element does not (RFC 7395 §3.3.3: every message is a
// standalone element with its namespace declarations).
func (w *wsWire) write(b []byte) error {
	return eachElement(b, func(el []byte, nameEnd int, declared bool) error {
		if !declared {
			w.out = append(w.out[:0], el[:nameEnd]...)
			w.out = append(w.out, ` xmlns="`+stanza.NSClient+`"`...)
			el = append(w.out, el[nameEnd:]...)
			w.out = el
		}
		return w.send(el)
	})
}

func (w *wsWire) send(msg []byte) error {
	ctx, cancel := context.WithTimeout(w.ctx, writeTimeout)
	defer cancel()
	return w.ws.Write(ctx, websocket.MessageText, msg)
}

func (w *wsWire) end() error { return w.send([]byte(`<close xmlns="` + nsFraming + `"/>`)) }

func (w *wsWire) established() {}

func (w *wsWire) shutdown() {
	w.cancel()
	_ = w.ws.CloseNow()
}

func (w *wsWire) tail() string { return w.in.tail() }

// wsMessages reads the text messages of a WebSocket one after the other, as
// one byte stream for the decoder (which reads in fragment mode).
type wsMessages struct {
	ws  *websocket.Conn
	ctx context.Context
	cur io.Reader // the message being read
}

func (m *wsMessages) Read(p []byte) (int, error) {
	for {
		if m.cur == nil {
			typ, r, err := m.ws.Reader(m.ctx)
			if err != nil {
				return 0, err
			}
			if typ != websocket.MessageText {
				return 0, errors.New("binary WebSocket message (RFC 7395 uses text messages only)")
			}
			m.cur = r
		}
		n, err := m.cur.Read(p)
		if errors.Is(err, io.EOF) {
			m.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// eachElement calls f with each top-level element of b, which holds whole
// elements as this tool writes them (no comments, CDATA sections or
// processing instructions; '<' and '>' only as markup or inside quoted
// attribute values). nameEnd is the offset just past the element's name,
// and declared says whether its start tag declares its namespace (an
// xmlns attribute or a prefixed name).
func eachElement(b []byte, f func(el []byte, nameEnd int, declared bool) error) error {
	rest, err := c2s.SplitElements(b, func(el []byte) error {
		nameEnd := 1
		for nameEnd < len(el) && !isTagDelim(el[nameEnd]) {
			nameEnd++
		}
		tag := el[:c2s.TagEnd(el, 0)]
		declared := bytes.IndexByte(el[1:nameEnd], ':') >= 0 || bytes.Contains(tag, []byte(` xmlns="`)) ||
			bytes.Contains(tag, []byte(` xmlns='`))
		return f(el, nameEnd, declared)
	})
	if err == nil && len(bytes.TrimSpace(rest)) > 0 {
		err = fmt.Errorf("incomplete element in %q", rest)
	}
	return err
}

func isTagDelim(c byte) bool {
	return c == ' ' || c == '/' || c == '>' || c == '\t' || c == '\n' || c == '\r'
}
