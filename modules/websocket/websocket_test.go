package websocket_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/metronome-xmpp/metronome/internal/c2s"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/message"
	_ "github.com/metronome-xmpp/metronome/modules/ping"
	_ "github.com/metronome-xmpp/metronome/modules/websocket"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

const openTag = `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>`

type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func newServer(t *testing.T, toml string) *xmpptest.Server {
	t.Helper()
	srv := xmpptest.NewServer(t, xmpptest.Modules("websocket", "message"), xmpptest.HTTP(""),
		xmpptest.Config("[modules.websocket]\n"+toml))
	srv.CreateUser(t, "alice@localhost", "secret")
	srv.CreateUser(t, "bob@localhost", "secret")
	return srv
}

// dial connects to the endpoint; url is ws://<plain listener> unless tls.
func dial(t *testing.T, srv *xmpptest.Server, useTLS bool, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), xmpptest.Timeout)
	defer cancel()
	if opts == nil {
		opts = &websocket.DialOptions{Subprotocols: []string{"xmpp"}}
	}
	u := "ws://" + srv.HTTPAddr + "/xmpp-websocket"
	if useTLS {
		u = "wss://" + srv.HTTPSAddr + "/xmpp-websocket"
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}, //nolint:gosec // self-signed test certificate
		}}
	}
	return websocket.Dial(ctx, u, opts)
}

func connect(t *testing.T, srv *xmpptest.Server, useTLS bool) *wsClient {
	t.Helper()
	ws, _, err := dial(t, srv, useTLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Subprotocol() != "xmpp" {
		t.Fatalf("subprotocol %q", ws.Subprotocol())
	}
	c := &wsClient{t: t, ws: ws}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return c
}

func (c *wsClient) send(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), xmpptest.Timeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one message, which must be one complete XML element.
func (c *wsClient) recv() *stanza.Element {
	c.t.Helper()
	el, err := c.read()
	if err != nil {
		c.t.Fatal(err)
	}
	return el
}

func (c *wsClient) read() (*stanza.Element, error) {
	ctx, cancel := context.WithTimeout(context.Background(), xmpptest.Timeout)
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		c.t.Fatalf("message type %v", typ)
	}
	el, err := xmlstream.ParseNS(b, stanza.NSClient)
	if err != nil {
		c.t.Fatalf("message %q is not one XML element: %v", b, err)
	}
	return el, nil
}

func (c *wsClient) expect(space, name string) *stanza.Element {
	c.t.Helper()
	el := c.recv()
	if el.Space != space || el.Name != name {
		c.t.Fatalf("got %s, want {%s}%s", el, space, name)
	}
	return el
}

// open sends <open/> and reads the server's <open/> and features.
func (c *wsClient) open() *stanza.Element {
	c.t.Helper()
	c.send(openTag)
	o := c.expect(c2s.NSFraming, "open")
	if o.Attr("from") != "localhost" || o.Attr("id") == "" || o.Attr("version") != "1.0" {
		c.t.Fatalf("open reply %s", o)
	}
	return c.expect(stream.NS, "features")
}

// login authenticates with PLAIN and binds resource.
func (c *wsClient) login(user, resource string) {
	c.t.Helper()
	f := c.open()
	if f.Child(stream.NSTLS, "starttls") != nil {
		c.t.Fatalf("STARTTLS offered over WebSocket: %s", f)
	}
	mechs := f.Child(stream.NSSASL, "mechanisms")
	if mechs == nil || !strings.Contains(mechs.String(), "PLAIN") {
		c.t.Fatalf("features %s", f)
	}
	c.send(`<auth xmlns="` + stream.NSSASL + `" mechanism="PLAIN">` +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00secret")) + `</auth>`)
	c.expect(stream.NSSASL, "success")
	f = c.open()
	if f.Child(stream.NSBind, "bind") == nil {
		c.t.Fatalf("no bind after restart: %s", f)
	}
	c.send(`<iq type="set" id="b1"><bind xmlns="` + stream.NSBind + `"><resource>` + resource + `</resource></bind></iq>`)
	res := c.expect(stanza.NSClient, "iq")
	if res.Type() != "result" || res.Child(stream.NSBind, "bind").ChildText(stream.NSBind, "jid") != user+"@localhost/"+resource {
		c.t.Fatalf("bind result %s", res)
	}
}

// expectClosed reads <close/> and then the end of the WebSocket.
func (c *wsClient) expectClosed() {
	c.t.Helper()
	c.expect(c2s.NSFraming, "close")
	_, err := c.read()
	if err == nil || websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		c.t.Fatalf("after <close/>: %v", err)
	}
}

func TestLoginMessageClose(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	for _, useTLS := range []bool{false, true} {
		c := connect(t, srv, useTLS)
		res := "ws"
		if useTLS {
			res = "wss"
		}
		c.login("alice", res)
		bob := srv.Login(t, "bob@localhost/tcp", "secret")

		c.send(`<message to="bob@localhost/tcp" type="chat" id="m1"><body>hi bob</body></message>`)
		bob.Expect(t, `<message from="alice@localhost/`+res+`" type="chat" id="m1"><body>hi bob</body></message>`)
		bob.Send(t, `<message to="alice@localhost/`+res+`" type="chat" id="m2"><body>hi alice</body></message>`)
		m := c.expect(stanza.NSClient, "message")
		if m.ChildText(stanza.NSClient, "body") != "hi alice" || m.From() != "bob@localhost/tcp" {
			t.Fatalf("got %s", m)
		}

		c.send(`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`)
		c.expectClosed()
		bob.Close()
	}
}

func TestSubprotocolRequired(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	ws, resp, err := dial(t, srv, false, &websocket.DialOptions{})
	if err == nil {
		_ = ws.CloseNow()
		t.Fatal("upgrade accepted without the xmpp subprotocol")
	}
	if resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("response %v, err %v", resp, err)
	}
}

func TestOrigin(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "allowed_origins = [\"https://chat.example\"]\nping_interval = \"1s\"")
	hdr := func(origin string) *websocket.DialOptions {
		return &websocket.DialOptions{Subprotocols: []string{"xmpp"}, HTTPHeader: http.Header{"Origin": {origin}}}
	}
	ws, resp, err := dial(t, srv, false, hdr("https://evil.example"))
	if err == nil {
		_ = ws.CloseNow()
		t.Fatal("bad origin accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("response %v, err %v", resp, err)
	}
	for _, o := range []string{"https://chat.example", "http://" + srv.HTTPAddr} {
		ws, _, err := dial(t, srv, false, hdr(o))
		if err != nil {
			t.Fatalf("origin %s: %v", o, err)
		}
		c := &wsClient{t: t, ws: ws}
		c.open()
		_ = ws.CloseNow()
	}
}

func TestMalformedXML(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := connect(t, srv, false)
	c.open()
	c.send(`<message><body>x</message>`)
	e := c.expect(stream.NS, "error")
	if e.Child(stream.NSErrors, "not-well-formed") == nil {
		t.Fatalf("stream error %s", e)
	}
	c.expectClosed()
}

func TestBadOpen(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := connect(t, srv, false)
	c.send(`<stream:stream xmlns:stream="http://etherx.jabber.org/streams" xmlns="jabber:client" to="localhost" version="1.0">`)
	// An unfinished element: the server waits for more, so close it to
	// make it a complete (wrong) root.
	c.send(`</stream:stream>`)
	c.expect(c2s.NSFraming, "open")
	e := c.expect(stream.NS, "error")
	if e.Child(stream.NSErrors, string(stream.InvalidNamespace)) == nil {
		t.Fatalf("stream error %s", e)
	}
	c.expectClosed()
}

func TestClientGone(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := connect(t, srv, false)
	c.login("alice", "gone")
	bob := srv.Login(t, "bob@localhost/tcp", "secret")
	if n := srv.Core.SessionCount(); n != 2 {
		t.Fatalf("%d sessions", n)
	}
	_ = c.ws.CloseNow()
	// The session ends with the WebSocket.
	deadline := time.Now().Add(xmpptest.Timeout)
	for srv.Core.SessionCount() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("session still bound after the WebSocket closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	bob.Close()
}

// The TCP listeners' per-address limit applies, to the client's address
// as the HTTP server resolves it behind a trusted proxy.
func TestPerAddressLimit(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("websocket", "message"),
		xmpptest.HTTP(`trusted_proxies = ["127.0.0.1"]`),
		xmpptest.Config("[c2s]\nmax_connections_per_ip = 1"))
	from := func(ip string) *websocket.DialOptions {
		return &websocket.DialOptions{Subprotocols: []string{"xmpp"}, HTTPHeader: http.Header{"X-Forwarded-For": {ip}}}
	}
	first, _, err := dial(t, srv, false, from("192.0.2.7"))
	if err != nil {
		t.Fatal(err)
	}
	if ws, resp, err := dial(t, srv, false, from("192.0.2.7")); err == nil {
		_ = ws.CloseNow()
		t.Fatal("a second connection from the same address was accepted")
	} else if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("response %v, err %v", resp, err)
	}
	other, _, err := dial(t, srv, false, from("192.0.2.8"))
	if err != nil {
		t.Fatalf("another address refused: %v", err)
	}
	_ = other.CloseNow()
	// Once the first session has ended, the address may connect again.
	_ = first.CloseNow()
	deadline := time.Now().Add(xmpptest.Timeout)
	for {
		ws, _, err := dial(t, srv, false, from("192.0.2.7"))
		if err == nil {
			_ = ws.CloseNow()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the address stayed counted after its session ended: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIdlePing: an idle WebSocket session waits with no goroutine of its
// own (c2s.ReadNotifier); its idle timeout still brings an XMPP ping, an
// answer keeps it, and silence ends it with connection-timeout.
func TestIdlePing(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("websocket", "message", "ping"), xmpptest.HTTP(""),
		xmpptest.Config("[c2s]\nidle_timeout = \"1s\"\nping_timeout = \"1s\""))
	srv.CreateUser(t, "alice@localhost", "secret")
	c := connect(t, srv, false)
	c.login("alice", "ws")
	ping := c.expect(stanza.NSClient, "iq")
	if ping.Type() != "get" || ping.Child("urn:xmpp:ping", "ping") == nil {
		t.Fatalf("want a ping, got %s", ping)
	}
	c.send(`<iq type="result" to="localhost" id="` + ping.ID() + `"/>`)
	// Pinged again after another idle period, and closed for silence.
	if again := c.expect(stanza.NSClient, "iq"); again.Child("urn:xmpp:ping", "ping") == nil {
		t.Fatalf("want a second ping, got %s", again)
	}
	e := c.expect(stream.NS, "error")
	if e.Child(stream.NSErrors, "connection-timeout") == nil {
		t.Fatalf("want connection-timeout, got %s", e)
	}
}
