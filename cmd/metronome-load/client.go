package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xdg-go/scram"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

const (
	nsPing       = "urn:xmpp:ping"
	writeTimeout = 10 * time.Second
	// upID is the id of the ping sent after the initial presence: its
	// answer (result or error) proves the presence was processed.
	upID = "load-up"
)

// client is one logged-in session. After login a reader goroutine owns the
// wire's receiving side; writes are serialised by wmu.
type client struct {
	idx int
	jid string // bound full JID
	w   wire   // the transport: TCP, WebSocket or BOSH

	wmu  sync.Mutex
	wbuf []byte

	onMessage  func(c *client, el *stanza.Element)
	onPresence func(c *client, el *stanza.Element)
	pending    sync.Map      // IQ id → chan *stanza.Element, for request
	done       chan struct{} // closed when the reader stops
	err        error         // why the reader stopped; read after done
	closing    chan struct{} // closed when we end the stream ourselves
	closeOnce  sync.Once
}

// wire is what a session's XML travels over: an XMPP stream on TCP
// (tcpWire), RFC 7395 framing on a WebSocket (wsWire), or XEP-0206 BOSH
// requests (boshWire). The client code above it (SASL, binding, stanzas)
// is the same for all three.
type wire interface {
	// open opens the stream (restart: again, after SASL success) and
	// returns the server's features.
	open(domain string, restart bool) (*stanza.Element, error)
	// next returns the next top-level element received. Only the login,
	// then the reader goroutine, call it.
	next() (*stanza.Element, error)
	// write sends whole top-level elements (one or more); the caller
	// holds the client's wmu.
	write(b []byte) error
	// end asks the server to end the stream (</stream:stream>, <close/>,
	// a BOSH terminate request); the caller holds wmu.
	end() error
	// established says the login is over: the login deadline no longer
	// applies.
	established()
	// shutdown closes the transport at once; next then fails.
	shutdown()
	// tail returns the last bytes received, for error reports. Only the
	// goroutine calling next may call it.
	tail() string
}

// Transports of --transport.
const (
	transportTCP       = "tcp"
	transportWebSocket = "websocket"
	transportBOSH      = "bosh"
)

// loginParams is what one login needs.
type loginParams struct {
	transport string          // tcp, websocket or bosh
	url       string          // websocket, bosh: the endpoint
	hc        *http.Client    // websocket
	httpTr    *http.Transport // bosh: cloned by each session
	addr      string          // tcp: resolved loopback address
	directTLS bool
	domain    string
	local     string // account localpart
	password  string
	resource  string
	mechanism string // SCRAM-SHA-1 or SCRAM-SHA-256
	timeout   time.Duration
	// scram, when set, is this account's SCRAM client: it keeps the
	// salted password of an earlier login, as real clients do.
	scram *scram.Client
	// tlsCache, when set, lets TLS sessions resume (tickets).
	tlsCache tls.ClientSessionCache
}

// login logs one session in over p.transport: it connects (TCP: and
// negotiates TLS, STARTTLS or direct), authenticates with SCRAM, binds,
// sends initial presence and waits for the answer to a ping sent after
// it, so that the session is fully established when login returns. The
// reader goroutine is running on return.
func login(ctx context.Context, p loginParams, idx int, h handlers) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	c := &client{idx: idx, onMessage: h.message, onPresence: h.presence, done: make(chan struct{}), closing: make(chan struct{})}
	var (
		step     string
		features *stanza.Element
		err      error
		stop     = func() bool { return true }
	)
	switch p.transport {
	case transportWebSocket:
		var w *wsWire
		w, err = dialWS(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("%s@%s: WebSocket: %w", p.local, p.domain, err)
		}
		c.w = w
		stop = context.AfterFunc(ctx, w.shutdown) // login timeout, signal, duration cap
		step = "stream open"
		features, err = w.open(p.domain, false)
	case transportBOSH:
		w := newBOSHWire(p)
		c.w = w
		stop = context.AfterFunc(ctx, w.shutdown)
		step = "BOSH session creation"
		features, err = w.open(p.domain, false)
	default:
		var d net.Dialer
		raw, derr := d.DialContext(ctx, "tcp", p.addr)
		if derr != nil {
			return nil, fmt.Errorf("%s@%s: connect: %w", p.local, p.domain, derr)
		}
		w := &tcpWire{raw: raw, conn: raw}
		c.w = w
		if dl, ok := ctx.Deadline(); ok {
			_ = raw.SetDeadline(dl)
		}
		// Abort blocking reads and writes when ctx ends (signal, duration cap).
		stop = context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
		step, features, err = w.startTLS(ctx, p)
	}
	if err == nil {
		step, err = c.negotiate(p, features)
	}
	stopped := stop()
	if err != nil {
		c.w.shutdown()
		if ctx.Err() != nil || !stopped {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		return nil, fmt.Errorf("%s@%s: %s: %w; last bytes received: %q", p.local, p.domain, step, err, c.w.tail())
	}
	c.w.established()
	go c.readLoop()
	return c, nil
}

// negotiate runs what follows the stream's first features on every
// transport: SASL, the restart, binding, initial presence, and a ping
// whose answer marks the session as up. It returns the failed step.
func (c *client) negotiate(p loginParams, features *stanza.Element) (string, error) {
	if !offers(features, p.mechanism) {
		return "SASL", errors.New(p.mechanism + " not offered")
	}
	if err := c.auth(p.scram, p.mechanism, p.local, p.password); err != nil {
		return "SASL", err
	}
	if _, err := c.w.open(p.domain, true); err != nil {
		return "stream open after SASL", err
	}
	b := []byte(`<iq type="set" id="bind"><bind xmlns="` + stream.NSBind + `">`)
	if p.resource != "" {
		b = append(b, "<resource>"...)
		b = stanza.AppendEscaped(b, p.resource, false)
		b = append(b, "</resource>"...)
	}
	b = append(b, "</bind></iq>"...)
	if err := c.write(b); err != nil {
		return "bind", err
	}
	el, err := c.w.next()
	if err != nil {
		return "bind", err
	}
	if el.Name != "iq" || el.Type() != "result" || el.ID() != "bind" {
		return "bind", fmt.Errorf("got %s", el)
	}
	c.jid = el.Child(stream.NSBind, "bind").ChildText(stream.NSBind, "jid")
	if c.jid == "" {
		return "bind", fmt.Errorf("no JID in %s", el)
	}
	// Initial presence, then a ping whose answer marks the session as up.
	if err := c.writeString(`<presence/><iq type="get" id="` + upID + `" to="` + p.domain + `"><ping xmlns="` + nsPing + `"/></iq>`); err != nil {
		return "presence", err
	}
	for {
		el, err := c.w.next()
		if err != nil {
			return "waiting for the ping answer", err
		}
		if el.Name == "iq" && el.ID() == upID && (el.Type() == "result" || el.Type() == "error") {
			return "", nil
		}
		c.handle(el) // presence echoes, server pings, early messages
	}
}

// tcpWire is an XMPP stream over TCP (RFC 6120), with TLS.
type tcpWire struct {
	raw  net.Conn // the TCP connection
	conn net.Conn // what is read and written: the TLS connection
	dec  *xmlstream.Decoder
	in   tailReader // what the decoder reads: conn, keeping the last bytes for error reports
}

// startTLS negotiates TLS (STARTTLS or direct), up to the features of the
// encrypted stream. It returns the failed step.
func (w *tcpWire) startTLS(ctx context.Context, p loginParams) (step string, features *stanza.Element, err error) {
	// The server's certificate is not verified: the tool only talks to a
	// server on loopback, usually with a generated self-signed certificate.
	tlsCfg := &tls.Config{ServerName: p.domain, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, ClientSessionCache: p.tlsCache}
	if p.directTLS {
		tc := tls.Client(w.raw, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return "TLS handshake", nil, err
		}
		w.conn = tc
	}
	w.in.r = w.conn
	w.dec = xmlstream.NewDecoder(&w.in, xmlstream.Limits{MaxBytes: 1 << 20})
	if features, err = w.open(p.domain, false); err != nil {
		return "stream open", nil, err
	}
	if p.directTLS {
		return "", features, nil
	}
	if features.Child(stream.NSTLS, "starttls") == nil {
		return "STARTTLS", nil, errors.New("not offered")
	}
	if err := w.write([]byte(`<starttls xmlns="` + stream.NSTLS + `"/>`)); err != nil {
		return "STARTTLS", nil, err
	}
	el, err := w.dec.Element()
	if err != nil {
		return "STARTTLS", nil, err
	}
	if el.Name != "proceed" {
		return "STARTTLS", nil, fmt.Errorf("got %s", el)
	}
	if w.dec.Buffered() > 0 {
		return "STARTTLS", nil, errors.New("data after <proceed/>")
	}
	tc := tls.Client(w.raw, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return "TLS handshake", nil, err
	}
	w.conn = tc
	w.in.r = tc
	w.dec.Reset(&w.in)
	if features, err = w.open(p.domain, false); err != nil {
		return "stream open after STARTTLS", nil, err
	}
	return "", features, nil
}

// open sends a stream header and reads the server's header and features.
func (w *tcpWire) open(domain string, restart bool) (*stanza.Element, error) {
	if restart {
		w.dec.Restart()
	}
	if err := w.write([]byte(`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="` + stream.NS +
		`" to="` + domain + `" version="1.0">`)); err != nil {
		return nil, err
	}
	if _, err := w.dec.Header(); err != nil {
		return nil, err
	}
	return expectFeatures(w.dec.Element())
}

// expectFeatures checks that el is <stream:features/>.
func expectFeatures(el *stanza.Element, err error) (*stanza.Element, error) {
	if err != nil {
		return nil, err
	}
	if el.Name != "features" || el.Space != stream.NS {
		return nil, fmt.Errorf("expected <stream:features/>, got %s", el)
	}
	return el, nil
}

func (w *tcpWire) next() (*stanza.Element, error) { return w.dec.Element() }

func (w *tcpWire) write(b []byte) error {
	_ = w.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := w.conn.Write(b)
	return err
}

func (w *tcpWire) end() error { return w.write([]byte(stream.Close)) }

func (w *tcpWire) established() { _ = w.raw.SetDeadline(time.Time{}) }

func (w *tcpWire) shutdown() { _ = w.conn.Close() }

func (w *tcpWire) tail() string { return w.in.tail() }

// tailReader reads from r and keeps the last bytes read, to show what the
// server sent last when something goes wrong.
type tailReader struct {
	r    io.Reader
	buf  [320]byte
	next int  // write position in buf
	full bool // buf has wrapped
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	b := p[:n]
	if len(b) > len(t.buf) {
		b = b[len(b)-len(t.buf):]
	}
	for len(b) > 0 {
		k := copy(t.buf[t.next:], b)
		b = b[k:]
		t.next += k
		if t.next == len(t.buf) {
			t.next, t.full = 0, true
		}
	}
	return n, err
}

// tail returns the last bytes read (up to the buffer's size). Only the
// goroutine reading may call it.
func (t *tailReader) tail() string {
	if !t.full {
		return string(t.buf[:t.next])
	}
	return string(t.buf[t.next:]) + string(t.buf[:t.next])
}

func offers(features *stanza.Element, mech string) bool {
	m := features.Child(stream.NSSASL, "mechanisms")
	if m == nil {
		return false
	}
	for el := range m.Elements {
		if el.Name == "mechanism" && strings.TrimSpace(el.Text()) == mech {
			return true
		}
	}
	return false
}

// newSCRAM returns a SCRAM client for one account.
func newSCRAM(mechanism, user, password string) (*scram.Client, error) {
	hash := scram.SHA256
	if mechanism == "SCRAM-SHA-1" {
		hash = scram.SHA1
	}
	return hash.NewClient(user, password, "")
}

// auth runs a SCRAM exchange (RFC 5802, RFC 7677), checking the server's
// signature.
func (c *client) auth(cl *scram.Client, mechanism, user, password string) error {
	if cl == nil {
		var err error
		if cl, err = newSCRAM(mechanism, user, password); err != nil {
			return err
		}
	}
	conv := cl.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		return err
	}
	if err := c.writeString(`<auth xmlns="` + stream.NSSASL + `" mechanism="` + mechanism + `">` +
		base64.StdEncoding.EncodeToString([]byte(first)) + `</auth>`); err != nil {
		return err
	}
	for {
		el, err := c.w.next()
		if err != nil {
			return err
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text()))
		if err != nil {
			return fmt.Errorf("bad base64 in %s", el)
		}
		switch el.Name {
		case "challenge":
			resp, err := conv.Step(string(data))
			if err != nil {
				return err
			}
			if err := c.writeString(`<response xmlns="` + stream.NSSASL + `">` +
				base64.StdEncoding.EncodeToString([]byte(resp)) + `</response>`); err != nil {
				return err
			}
		case "success":
			if _, err := conv.Step(string(data)); err != nil {
				return fmt.Errorf("server signature: %w", err)
			}
			if !conv.Valid() {
				return errors.New("server signature not verified")
			}
			return nil
		default:
			return fmt.Errorf("%s", el)
		}
	}
}

func (c *client) readLoop() {
	defer close(c.done)
	for {
		el, err := c.w.next()
		if err != nil {
			select {
			case <-c.closing:
				c.err = err
			default: // not closed by us: keep what came last for the report
				c.err = fmt.Errorf("%w; last bytes received: %q", err, c.w.tail())
			}
			return
		}
		c.handle(el)
	}
}

// handle processes one element received after binding.
func (c *client) handle(el *stanza.Element) {
	switch el.Name {
	case "message":
		if c.onMessage != nil {
			c.onMessage(c, el)
		}
	case "presence":
		if c.onPresence != nil {
			c.onPresence(c, el)
		}
	case "iq":
		t := el.Type()
		if t != "get" && t != "set" {
			if ch, ok := c.pending.LoadAndDelete(el.ID()); ok {
				ch.(chan *stanza.Element) <- el
			}
			return
		}
		// Answer pings (the server's idle check); refuse anything else.
		b := []byte(`<iq id="`)
		b = stanza.AppendEscaped(b, el.ID(), true)
		if f := el.From(); f != "" {
			b = append(b, `" to="`...)
			b = stanza.AppendEscaped(b, f, true)
		}
		if p := el.FirstChild(); t == "get" && p != nil && p.Space == nsPing && p.Name == "ping" {
			b = append(b, `" type="result"/>`...)
		} else {
			b = append(b, `" type="error"><error type="cancel"><service-unavailable xmlns="`+stanza.NSStanzas+`"/></error></iq>`...)
		}
		_ = c.write(b)
	}
}

// request sends an IQ with the given id and waits for its answer.
func (c *client) request(ctx context.Context, iq, id string, timeout time.Duration) (*stanza.Element, error) {
	ch := make(chan *stanza.Element, 1)
	c.pending.Store(id, ch)
	defer c.pending.Delete(id)
	if err := c.writeString(iq); err != nil {
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case el := <-ch:
		return el, nil
	case <-t.C:
		return nil, fmt.Errorf("no answer to IQ %s within %s", id, timeout)
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case <-c.done:
		return nil, fmt.Errorf("stream closed: %v", c.err)
	}
}

func (c *client) writeString(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.write([]byte(s))
}

func (c *client) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.write(b)
}

// sendMessage sends message seq of type typ to the JID to; its id and
// body carry the sequence number, and the body the send timestamp (Unix
// nanoseconds).
func (c *client) sendMessage(to, typ string, seq int, sent int64) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], `<message type="`...)
	b = append(b, typ...)
	b = append(b, `" to="`...)
	b = stanza.AppendEscaped(b, to, true)
	b = append(b, `" id="m`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `"><body>`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, sent, 10)
	b = append(b, `</body></message>`...)
	c.wbuf = b
	return c.w.write(b)
}

// parseBody returns the sequence number and send timestamp of a message
// sent by sendMessage.
func parseBody(body string) (seq int, sent int64, ok bool) {
	a, b, found := strings.Cut(body, " ")
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.Atoi(a)
	t, err2 := strconv.ParseInt(b, 10, 64)
	return s, t, err1 == nil && err2 == nil && s >= 0
}

// close ends the stream, waits up to wait for the server to close its
// side, then closes the connection. Calls after the first do nothing.
func (c *client) close(wait time.Duration) {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.wmu.Lock()
		_ = c.w.end()
		c.wmu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
		c.w.shutdown()
		<-c.done
	})
}
