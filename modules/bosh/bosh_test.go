package bosh_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/modules/bosh"
	_ "github.com/metronome-xmpp/metronome/modules/message"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

func newServer(t testing.TB, toml string) *xmpptest.Server {
	t.Helper()
	srv := xmpptest.NewServer(t, xmpptest.Modules("bosh", "message"), xmpptest.HTTP(""),
		xmpptest.Config("[modules.bosh]\n"+toml))
	srv.CreateUser(t, "alice@localhost", "secret")
	srv.CreateUser(t, "bob@localhost", "secret")
	return srv
}

// client is a minimal BOSH client.
type client struct {
	t   testing.TB
	url string
	hc  *http.Client
	sid string
	rid uint64
	mu  sync.Mutex
}

func newClient(t testing.TB, srv *xmpptest.Server) *client {
	return &client{t: t, url: "http://" + srv.HTTPAddr + "/http-bind", rid: 1000 + uint64(time.Now().UnixNano()%100000),
		hc: &http.Client{Timeout: xmpptest.Timeout, Transport: &http.Transport{MaxConnsPerHost: 16}}}
}

// nextRID reserves the next rid.
func (c *client) nextRID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rid++
	return c.rid
}

// raw posts b and returns the status and the response body.
func (c *client) raw(b string, hdr http.Header) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url, strings.NewReader(b))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, out
}

// bodyXML builds a request body.
func (c *client) bodyXML(rid uint64, attrs, payload string) string {
	return fmt.Sprintf(`<body xmlns="http://jabber.org/protocol/httpbind" xmlns:xmpp="urn:xmpp:xbosh" sid="%s" rid="%d" %s>%s</body>`,
		c.sid, rid, attrs, payload)
}

// send posts a request with the next rid and returns the parsed response.
func (c *client) send(attrs, payload string) *stanza.Element {
	c.t.Helper()
	return c.sendRID(c.nextRID(), attrs, payload)
}

func (c *client) sendRID(rid uint64, attrs, payload string) *stanza.Element {
	c.t.Helper()
	resp, b := c.raw(c.bodyXML(rid, attrs, payload), nil)
	return parseResp(c.t, resp, b)
}

func parseResp(t testing.TB, resp *http.Response, b []byte) *stanza.Element {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	el, err := xmlstream.Parse(b)
	if err != nil {
		t.Fatalf("response %q: %v", b, err)
	}
	if el.Space != bosh.NS || el.Name != "body" {
		t.Fatalf("response is not a body: %s", b)
	}
	return el
}

// create opens a session.
func (c *client) create(attrs string) *stanza.Element {
	c.t.Helper()
	rid := c.nextRID()
	b := fmt.Sprintf(`<body xmlns="http://jabber.org/protocol/httpbind" xmlns:xmpp="urn:xmpp:xbosh" rid="%d" to="localhost" xml:lang="en" ver="1.11" wait="60" hold="1" content="text/xml; charset=utf-8" xmpp:version="1.0" route="xmpp:localhost:5222" %s/>`, rid, attrs)
	resp, out := c.raw(b, nil)
	el := parseResp(c.t, resp, out)
	if el.Attr("type") == "terminate" {
		c.t.Fatalf("creation refused: %s", out)
	}
	c.sid = el.Attr("sid")
	return el
}

func childOf(el *stanza.Element, space, name string) *stanza.Element {
	if el == nil {
		return nil
	}
	return el.Child(space, name)
}

// features returns the stream features of a response, sending empty
// requests until they come (XEP-0206 §3).
func (c *client) features(el *stanza.Element) *stanza.Element {
	c.t.Helper()
	for range 5 {
		if f := el.Child(stream.NS, "features"); f != nil {
			return f
		}
		el = c.send("", "")
	}
	c.t.Fatalf("no stream features: %s", el)
	return nil
}

// login authenticates with PLAIN over the session, restarts and binds.
func (c *client) login(user, resource string) string {
	c.t.Helper()
	cr := c.create("")
	f := c.features(cr)
	if mechs := f.Child(stream.NSSASL, "mechanisms"); mechs == nil || !strings.Contains(mechs.String(), "PLAIN") {
		c.t.Fatalf("features %s", f)
	}
	el := c.send("", `<auth xmlns="`+stream.NSSASL+`" mechanism="PLAIN">`+
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00secret"))+`</auth>`)
	if el.Child(stream.NSSASL, "success") == nil {
		c.t.Fatalf("auth: %s", el)
	}
	el = c.send(`xmpp:restart="true" to="localhost"`, "")
	if childOf(c.features(el), stream.NSBind, "bind") == nil {
		c.t.Fatalf("no bind after restart: %s", el)
	}
	el = c.send("", `<iq xmlns="jabber:client" type="set" id="b1"><bind xmlns="`+stream.NSBind+`"><resource>`+resource+`</resource></bind></iq>`)
	iq := el.Child(stanza.NSClient, "iq")
	if iq == nil || iq.Type() != "result" {
		c.t.Fatalf("bind: %s", el)
	}
	return iq.Child(stream.NSBind, "bind").ChildText(stream.NSBind, "jid")
}

// async sends a request in the background; the result comes on the channel.
func (c *client) async(rid uint64, attrs, payload string) chan *stanza.Element {
	ch := make(chan *stanza.Element, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(c.bodyXML(rid, attrs, payload)))
		resp, err := c.hc.Do(req)
		if err != nil {
			ch <- nil
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		el, err := xmlstream.Parse(b)
		if err != nil {
			el = stanza.New("error", "unparsable", "text", string(b))
		}
		ch <- el
	}()
	return ch
}

// push sends a payload that gets no reply of its own: the request is
// held until the next one (an empty poll, returned) pushes it out.
func (c *client) push(payload string) chan *stanza.Element {
	c.t.Helper()
	ch := c.async(c.nextRID(), "", payload)
	pending(ch, 50*time.Millisecond)
	poll := c.async(c.nextRID(), "", "")
	if el := recv(c.t, ch); el.Attr("type") != "" {
		c.t.Fatalf("push: %s", el)
	}
	return poll
}

func recv(t testing.TB, ch chan *stanza.Element) *stanza.Element {
	t.Helper()
	select {
	case el := <-ch:
		if el == nil {
			t.Fatal("request failed")
		}
		return el
	case <-time.After(xmpptest.Timeout):
		t.Fatal("no response")
	}
	return nil
}

// pending reports whether a response came already.
func pending(ch chan *stanza.Element, d time.Duration) bool {
	select {
	case el := <-ch:
		ch <- el
		return false
	case <-time.After(d):
		return true
	}
}

func expectTerminate(t testing.TB, el *stanza.Element, cond string) {
	t.Helper()
	if el.Attr("type") != "terminate" || el.Attr("condition") != cond {
		t.Fatalf("want terminate %q, got %s", cond, el)
	}
}

func TestCreationAttributes(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := newClient(t, srv)
	el := c.create(`ack="1"`)
	for attr, want := range map[string]string{
		"wait": "60", "requests": "2", "hold": "1", "inactivity": "60", "polling": "5", "maxpause": "300",
		"ver": "1.11", "from": "localhost", "secure": "true",
	} {
		if got := el.Attr(attr); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	if len(el.Attr("sid")) < 20 || el.Attr("authid") == "" {
		t.Errorf("sid %q authid %q", el.Attr("sid"), el.Attr("authid"))
	}
	if ack := el.Attr("ack"); ack != strconv.FormatUint(c.rid, 10) {
		t.Errorf("ack %q, want the creation rid %d", ack, c.rid)
	}
	var version, restartlogic string
	for _, a := range el.Attrs {
		if a.Space == bosh.NSXBOSH && a.Name == "version" {
			version = a.Value
		}
		if a.Space == bosh.NSXBOSH && a.Name == "restartlogic" {
			restartlogic = a.Value
		}
	}
	if version != "1.0" || restartlogic != "true" {
		t.Errorf("xmpp:version %q xmpp:restartlogic %q", version, restartlogic)
	}
	if f := el.Child(stream.NS, "features"); f == nil || f.Child(stream.NSSASL, "mechanisms") == nil {
		t.Errorf("no SASL features in the creation response: %s", el)
	}
	// A client asking for less gets less; an old 'ver' is answered with it.
	c2 := newClient(t, srv)
	rid := c2.nextRID()
	resp, b := c2.raw(fmt.Sprintf(`<body xmlns="%s" rid="%d" to="localhost" ver="1.6" wait="10" hold="0"/>`, bosh.NS, rid), nil)
	el = parseResp(t, resp, b)
	if el.Attr("wait") != "10" || el.Attr("hold") != "0" || el.Attr("requests") != "1" || el.Attr("ver") != "1.6" {
		t.Errorf("polling session creation: %s", b)
	}
}

func TestCreationErrors(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := newClient(t, srv)
	for _, tc := range []struct{ body, cond string }{
		{fmt.Sprintf(`<body xmlns="%s" rid="5" ver="1.11"/>`, bosh.NS), "improper-addressing"},
		{fmt.Sprintf(`<body xmlns="%s" rid="5" ver="1.11" to="elsewhere.example"/>`, bosh.NS), "host-unknown"},
		{fmt.Sprintf(`<body xmlns="%s" ver="1.11" to="localhost"/>`, bosh.NS), "bad-request"},
		{`<body xmlns="urn:other" rid="5" to="localhost"/>`, "bad-request"},
		{fmt.Sprintf(`<body xmlns="%s" rid="5" to="localhost"><message>`, bosh.NS), "bad-request"},
		{fmt.Sprintf(`<!DOCTYPE x [<!ENTITY a "b">]><body xmlns="%s" rid="5" to="localhost"/>`, bosh.NS), "bad-request"},
		{fmt.Sprintf(`<body xmlns="%s" rid="5" to="localhost">text</body>`, bosh.NS), "bad-request"},
		{fmt.Sprintf(`<body xmlns="%s" rid="5" sid="nosuchsession"/>`, bosh.NS), "item-not-found"},
	} {
		resp, b := c.raw(tc.body, nil)
		expectTerminate(t, parseResp(t, resp, b), tc.cond)
	}
	// A legacy client (no 'ver') gets HTTP error codes (XEP-0124 §17.1).
	resp, _ := c.raw(fmt.Sprintf(`<body xmlns="%s" rid="5" to="localhost" content="bad/type; x"/>`, bosh.NS), nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("legacy bad-request: HTTP %d", resp.StatusCode)
	}
}

func TestLoginMessageTerminate(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := newClient(t, srv)
	if j := c.login("alice", "bosh"); j != "alice@localhost/bosh" {
		t.Fatalf("bound %q", j)
	}
	bob := srv.Login(t, "bob@localhost/tcp", "secret")

	held := c.push(`<message xmlns="jabber:client" to="bob@localhost/tcp" type="chat" id="m1"><body>hi bob</body></message>`)
	bob.Expect(t, `<message from="alice@localhost/bosh" type="chat" id="m1"><body>hi bob</body></message>`)

	// A held empty request returns when a stanza arrives.
	if !pending(held, 200*time.Millisecond) {
		t.Fatal("an empty request was not held")
	}
	bob.Send(t, `<message to="alice@localhost/bosh" type="chat" id="m2"><body>hi alice</body></message>`)
	el := recv(t, held)
	m := el.Child(stanza.NSClient, "message")
	if m == nil || m.ChildText(stanza.NSClient, "body") != "hi alice" || m.From() != "bob@localhost/tcp" {
		t.Fatalf("got %s", el)
	}

	// Payloads without a namespace are taken as jabber:client.
	held = c.push(`<message to="bob@localhost/tcp" type="chat" id="m3"><body>plain</body></message>`)
	bob.Expect(t, `<message from="alice@localhost/bosh" type="chat" id="m3"><body>plain</body></message>`)

	// Terminate with a final stanza (with a request held): delivered
	// before the stream ends.
	el = c.send(`type="terminate"`, `<message xmlns="jabber:client" to="bob@localhost/tcp" type="chat" id="m4"><body>bye</body></message>`)
	bob.Expect(t, `<message from="alice@localhost/bosh" type="chat" id="m4"><body>bye</body></message>`)
	first := recv(t, held)
	if first.Attr("type") != "terminate" && el.Attr("type") != "terminate" {
		t.Fatalf("no terminate body: held %s, terminate request %s", first, el)
	}
	waitFor(t, "the session to unbind", func() bool { return srv.Core.SessionCount() == 1 })
	// The sid is no longer usable.
	el = c.send("", "")
	if el.Attr("type") != "terminate" {
		t.Fatalf("request after terminate: %s", el)
	}
	bob.Close()
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(xmpptest.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWaitExpires(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "max_wait = \"1s\"")
	c := newClient(t, srv)
	c.login("alice", "w")
	start := time.Now()
	el := c.send("", "")
	if d := time.Since(start); d < 900*time.Millisecond || d > 10*time.Second {
		t.Errorf("empty response after %v, want about 1s", d)
	}
	if len(el.Children) != 0 || el.Attr("type") != "" {
		t.Errorf("got %s", el)
	}
}

func TestRetransmission(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := newClient(t, srv)
	c.create("")
	rid := c.nextRID()
	req := c.bodyXML(rid, "", `<auth xmlns="`+stream.NSSASL+`" mechanism="PLAIN">`+
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret"))+`</auth>`)
	_, first := c.raw(req, nil)
	if !bytes.Contains(first, []byte("<success")) {
		t.Fatalf("auth: %s", first)
	}
	// The response was "lost": the client sends the same request again.
	_, again := c.raw(req, nil)
	if !bytes.Equal(first, again) {
		t.Fatalf("retransmission differs:\n%s\n%s", first, again)
	}
	// The session goes on (the auth was not processed twice).
	el := c.send(`xmpp:restart="true"`, "")
	if childOf(c.features(el), stream.NSBind, "bind") == nil {
		t.Fatalf("after retransmission: %s", el)
	}
	// A rid too old to be cached: item-not-found.
	el = c.sendRID(rid-1, "", "")
	expectTerminate(t, el, "item-not-found")
}

func TestHeldRepeat(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := newClient(t, srv)
	c.login("alice", "r")
	bob := srv.Login(t, "bob@localhost/tcp", "secret")
	rid := c.nextRID()
	first := c.async(rid, "", "")
	pending(first, 100*time.Millisecond)
	// The same rid again while it is held: the first gets a recoverable
	// error, the second the response (§14.3).
	second := c.async(rid, "", "")
	// Whichever reached the server first gets the error at once (under
	// load the two may arrive in either order).
	var errored, other chan *stanza.Element
	select {
	case el := <-first:
		errored, other = first, second
		first <- el
	case el := <-second:
		errored, other = second, first
		second <- el
	case <-time.After(xmpptest.Timeout):
		t.Fatal("neither request of a repeated rid was answered")
	}
	if el := recv(t, errored); el.Attr("type") != "error" {
		t.Fatalf("earlier request of a repeated rid: %s", el)
	}
	bob.Send(t, `<message to="alice@localhost/r" id="x"><body>after repeat</body></message>`)
	if el := recv(t, other); el.Child(stanza.NSClient, "message") == nil {
		t.Fatalf("later request of a repeated rid: %s", el)
	}
}

func TestOutOfOrder(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := newClient(t, srv)
	c.login("alice", "o")
	bob := srv.Login(t, "bob@localhost/tcp", "secret")
	r1, r2 := c.nextRID(), c.nextRID()
	later := c.async(r2, "", `<message xmlns="jabber:client" to="bob@localhost/tcp" id="two"><body>2</body></message>`)
	if !pending(later, 200*time.Millisecond) {
		t.Fatal("a request ahead of the window's start was answered before the gap filled")
	}
	bob.ExpectNothing(t)
	el := c.sendRID(r1, "", `<message xmlns="jabber:client" to="bob@localhost/tcp" id="one"><body>1</body></message>`)
	bob.Expect(t, `<message id="one"><body>1</body></message>`)
	bob.Expect(t, `<message id="two"><body>2</body></message>`)
	if el.Attr("type") != "" {
		t.Fatalf("got %s", el)
	}
	// r2 is held now; a poll pushes it out.
	poll := c.async(c.nextRID(), "", "")
	if el := recv(t, later); el.Attr("type") != "" {
		t.Fatalf("got %s", el)
	}
	pending(poll, 50*time.Millisecond)
}

func TestWindowAndOveractivity(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	t.Run("out of window", func(t *testing.T) {
		c := newClient(t, srv)
		c.login("alice", "win")
		el := c.sendRID(c.rid+5, "", "")
		expectTerminate(t, el, "item-not-found")
		// The session is over.
		el = c.send("", "")
		expectTerminate(t, el, "item-not-found")
	})
	t.Run("too many requests", func(t *testing.T) {
		c := newClient(t, srv)
		c.login("bob", "many")
		r1, r2, r3 := c.nextRID(), c.nextRID(), c.nextRID()
		held := c.async(r1, "", "")
		pending(held, 100*time.Millisecond)
		ahead := c.async(r3, "", "")
		pending(ahead, 100*time.Millisecond)
		// Three unanswered requests with requests='2'.
		el := c.sendRID(r2, "", "")
		expectTerminate(t, el, "policy-violation")
		expectTerminate(t, recv(t, held), "policy-violation")
		expectTerminate(t, recv(t, ahead), "policy-violation")
	})
	waitFor(t, "the sessions to end", func() bool { return srv.Core.SessionCount() == 0 })
}

func TestPollingTooOften(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "polling = \"5s\"")
	c := newClient(t, srv)
	rid := c.nextRID()
	resp, b := c.raw(fmt.Sprintf(`<body xmlns="%s" rid="%d" to="localhost" ver="1.11" wait="0" hold="0"/>`, bosh.NS, rid), nil)
	el := parseResp(t, resp, b)
	c.sid = el.Attr("sid")
	if el.Attr("hold") != "0" || el.Attr("requests") != "1" {
		t.Fatalf("polling creation %s", b)
	}
	c.send("", "") // first poll
	el = c.send("", "")
	expectTerminate(t, el, "policy-violation")
}

func TestMalformedBody(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := newClient(t, srv)
	c.login("alice", "m")
	resp, b := c.raw(`<body xmlns="http://jabber.org/protocol/httpbind" sid="`+c.sid+`" rid="`+strconv.FormatUint(c.nextRID(), 10)+`"><message>`, nil)
	expectTerminate(t, parseResp(t, resp, b), "bad-request")
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "max_body = \"4KiB\"")
	c := newClient(t, srv)
	c.login("alice", "big")
	big := c.bodyXML(c.nextRID(), "", `<message xmlns="jabber:client" to="bob@localhost"><body>`+strings.Repeat("x", 8<<10)+`</body></message>`)
	resp, _ := c.raw(big, nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("HTTP %d, want 413", resp.StatusCode)
	}
}

func TestInactivity(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "max_inactivity = \"1s\"")
	c := newClient(t, srv)
	c.login("alice", "idle")
	if n := srv.Core.SessionCount(); n != 1 {
		t.Fatalf("%d sessions", n)
	}
	// No request held: after max_inactivity the session ends.
	waitFor(t, "the inactive session to end", func() bool { return srv.Core.SessionCount() == 0 })
	expectTerminate(t, c.send("", ""), "item-not-found")
}

func TestPause(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "max_inactivity = \"1s\"\nmax_pause = \"5s\"")
	c := newClient(t, srv)
	c.login("alice", "p")
	held := c.async(c.nextRID(), "", "")
	pending(held, 100*time.Millisecond)
	el := c.send(`pause="3"`, "")
	if el.Attr("type") != "" || len(el.Children) != 0 {
		t.Fatalf("pause response %s", el)
	}
	recv(t, held)
	time.Sleep(1500 * time.Millisecond) // past max_inactivity, within the pause
	if srv.Core.SessionCount() != 1 {
		t.Fatal("a paused session ended before its pause")
	}
	if el := c.send(`pause="60"`, ""); el.Attr("condition") != "policy-violation" {
		t.Fatalf("pause beyond maxpause: %s", el)
	}
}

func TestScriptSyntax(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	base := "http://" + srv.HTTPAddr + "/http-bind"
	get := func(query string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(base + "?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	create := fmt.Sprintf(`<body xmlns="%s" rid="77" to="localhost" ver="1.11" wait="60" hold="1"/>`, bosh.NS)
	resp, out := get("callback=cb_1&data=" + url.QueryEscape(create))
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.HasPrefix(out, `cb_1({"reply":"\u003cbody `) || !strings.HasSuffix(out, `"});`) || !strings.Contains(out, `sid=\"`) {
		t.Fatalf("JSONP reply %q", out)
	}
	// XEP-0252: ?<body>, answered _BOSH_("...").
	resp, out = get(url.PathEscape(fmt.Sprintf(`<body xmlns="%s" rid="9" to="localhost" ver="1.11"/>`, bosh.NS)))
	if !strings.HasPrefix(out, `_BOSH_("\u003cbody `) || !strings.HasSuffix(out, `")`) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("script syntax reply %q", out)
	}
	// '+' stays a '+' (base64 data is not URL-escaped by XEP-0252 clients).
	sid := strings.Split(strings.Split(out, `sid=\"`)[1], `\"`)[0]
	auth := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret"))
	_, out = get(strings.ReplaceAll(url.PathEscape(fmt.Sprintf(`<body xmlns="%s" rid="10" sid="%s"><auth xmlns="%s" mechanism="PLAIN">%s</auth></body>`,
		bosh.NS, sid, stream.NSSASL, auth)), "%2B", "+"))
	if !strings.Contains(out, `\u003csuccess`) {
		t.Fatalf("auth over script syntax: %q", out)
	}
	// A callback that is not an identifier is refused.
	if _, out = get("callback=alert(1)//&data=" + url.QueryEscape(create)); strings.Contains(out, "alert") {
		t.Fatalf("unsafe callback echoed: %q", out)
	}
	// A plain GET says what the endpoint is.
	if resp, _ = get(""); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	srv := newServer(t, `allowed_origins = ["https://chat.example"]`)
	c := newClient(t, srv)
	create := fmt.Sprintf(`<body xmlns="%s" rid="5" to="localhost" ver="1.11"/>`, bosh.NS)
	resp, _ := c.raw(create, http.Header{"Origin": {"https://chat.example"}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://chat.example" {
		t.Fatalf("allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = c.raw(create, http.Header{"Origin": {"https://evil.example"}})
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin: %d %v", resp.StatusCode, resp.Header)
	}
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, c.url, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp = preflight("https://chat.example")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://chat.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp = preflight("https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("preflight from another origin: %d", resp.StatusCode)
	}
}

// Another session's sid with a wrong rid ends that session as §14.2
// requires, but a blind attacker cannot guess a sid; a valid rid in the
// window from elsewhere is indistinguishable from the client. What must
// not happen: a request for an unknown sid touching any session.
func TestUnknownSIDDoesNotTouchOthers(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := newClient(t, srv)
	c.login("alice", "victim")
	other := newClient(t, srv)
	other.sid = c.sid[:len(c.sid)-1] + "x"
	if c.sid[len(c.sid)-1] == 'x' {
		other.sid = c.sid[:len(c.sid)-1] + "y"
	}
	expectTerminate(t, other.sendRID(c.rid+1, "", ""), "item-not-found")
	held := c.push(`<presence xmlns="jabber:client"/>`)
	if !pending(held, 100*time.Millisecond) {
		t.Fatalf("victim's session affected: %s", <-held)
	}
}

func TestPerAddressLimit(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("bosh", "message"),
		xmpptest.HTTP(`trusted_proxies = ["127.0.0.1"]`),
		xmpptest.Config("[c2s]\nmax_connections_per_ip = 1"))
	c := newClient(t, srv)
	create := fmt.Sprintf(`<body xmlns="%s" rid="5" to="localhost" ver="1.11"/>`, bosh.NS)
	from := http.Header{"X-Forwarded-For": {"192.0.2.7"}}
	resp, b := c.raw(create, from)
	if el := parseResp(t, resp, b); el.Attr("type") == "terminate" {
		t.Fatalf("first session refused: %s", b)
	}
	resp, b = c.raw(create, from)
	expectTerminate(t, parseResp(t, resp, b), "policy-violation")
	resp, b = c.raw(create, http.Header{"X-Forwarded-For": {"192.0.2.8"}})
	if el := parseResp(t, resp, b); el.Attr("type") == "terminate" {
		t.Fatalf("another address refused: %s", b)
	}
}

// BenchmarkMessageRoundTrip: a BOSH client sends a message to its own
// full JID; the request is held until the message comes back in it. One
// HTTP request per round trip, over loopback.
func BenchmarkMessageRoundTrip(b *testing.B) {
	srv := newServer(b, "")
	c := newClient(b, srv)
	j := c.login("alice", "bench")
	msg := `<message xmlns="jabber:client" to="` + j + `" type="chat"><body>ping</body></message>`
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		el := c.send("", msg)
		if el.Child(stanza.NSClient, "message") == nil {
			b.Fatalf("got %s", el)
		}
	}
}

// When the HTTP server shuts down, held requests are answered with
// system-shutdown at once (the server does not wait for them).
func TestShutdown(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := newClient(t, srv)
	c.login("alice", "sd")
	held := c.async(c.nextRID(), "", "")
	pending(held, 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.HTTP.Shutdown(ctx); err != nil {
		t.Fatalf("HTTP shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("HTTP shutdown took %v", d)
	}
	expectTerminate(t, recv(t, held), "system-shutdown")
	waitFor(t, "the session to end", func() bool { return srv.Core.SessionCount() == 0 })
}

// Acknowledgements (§9): with ack="1" at creation, a response to a rid
// lower than the highest received in order carries ack.
func TestAcks(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := newClient(t, srv)
	c.create(`ack="1"`)
	r1, r2 := c.nextRID(), c.nextRID()
	first := c.async(r1, "", "")
	pending(first, 100*time.Millisecond)
	second := c.async(r2, `ack="`+strconv.FormatUint(r1-1, 10)+`"`, "")
	el := recv(t, first)
	if el.Attr("ack") != strconv.FormatUint(r2, 10) {
		t.Fatalf("response to %d while %d was received: %s", r1, r2, el)
	}
	c.sendRID(r2+1, `type="terminate"`, "")
	recv(t, second)
}

// Requests of an existing session work in the script syntax too.
func TestScriptSession(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	base := "http://" + srv.HTTPAddr + "/http-bind?callback=cb&data="
	get := func(body string) string {
		t.Helper()
		resp, err := http.Get(base + url.QueryEscape(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		s := string(b)
		if !strings.HasPrefix(s, "cb(") || !strings.HasSuffix(s, ");") {
			t.Fatalf("reply %q", s)
		}
		var v struct{ Reply string }
		if err := json.Unmarshal([]byte(s[3:len(s)-2]), &v); err != nil {
			t.Fatal(err)
		}
		return v.Reply
	}
	out := get(fmt.Sprintf(`<body xmlns="%s" rid="100" to="localhost" ver="1.11" wait="60" hold="1"/>`, bosh.NS))
	el, err := xmlstream.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	sid := el.Attr("sid")
	out = get(fmt.Sprintf(`<body xmlns="%s" rid="101" sid="%s"><auth xmlns="%s" mechanism="PLAIN">%s</auth></body>`,
		bosh.NS, sid, stream.NSSASL, base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret"))))
	if !strings.Contains(out, "<success") {
		t.Fatalf("auth over JSONP: %s", out)
	}
}

// A request held longer than the HTTP server's read timeout still gets
// its response (the handler extends its connection's deadlines).
func TestWaitBeyondReadTimeout(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("bosh", "message"),
		xmpptest.HTTP("read_timeout = \"1s\"\nwrite_timeout = \"1s\""),
		xmpptest.Config("[modules.bosh]\nmax_wait = \"2s\""))
	srv.CreateUser(t, "alice@localhost", "secret")
	c := newClient(t, srv)
	c.login("alice", "long")
	start := time.Now()
	el := c.send("", "")
	if d := time.Since(start); d < 1900*time.Millisecond || el.Attr("type") != "" {
		t.Fatalf("after %v: %s", d, el)
	}
}

// Key sequencing (§15.3): each request's key hashes to the previous one;
// newkey starts a new sequence; a wrong key ends the session unprocessed.
func TestKeySequence(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	bob := srv.Login(t, "bob@localhost/tcp", "secret")
	k := make([]string, 6) // k[i] = hex(SHA-1(k[i-1])), k[0] = seed
	k[0] = "seed"
	for i := 1; i < len(k); i++ {
		sum := sha1.Sum([]byte(k[i-1]))
		k[i] = hex.EncodeToString(sum[:])
	}
	c := newClient(t, srv)
	c.create(`key="` + strings.ToUpper(k[5]) + `"`) // compared without regard to case
	auth := `<auth xmlns="` + stream.NSSASL + `" mechanism="PLAIN">` + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")) + `</auth>`
	if el := c.send(`key="`+k[4]+`"`, auth); el.Child(stream.NSSASL, "success") == nil {
		t.Fatalf("auth with the right key: %s", el)
	}
	// A new sequence starts with newkey.
	n1 := sha1.Sum([]byte("other seed"))
	n2 := sha1.Sum([]byte(hex.EncodeToString(n1[:])))
	el := c.send(`xmpp:restart="true" key="`+k[3]+`" newkey="`+hex.EncodeToString(n2[:])+`"`, "")
	if el.Child(stream.NS, "features") == nil {
		t.Fatalf("restart: %s", el)
	}
	bindRID := c.nextRID()
	el = c.sendRID(bindRID, `key="`+hex.EncodeToString(n1[:])+`"`, `<iq xmlns="jabber:client" type="set" id="b"><bind xmlns="`+stream.NSBind+`"><resource>k</resource></bind></iq>`)
	if el.Child(stanza.NSClient, "iq") == nil {
		t.Fatalf("bind with the new key: %s", el)
	}
	// A repeat with another key does not get the cached response, and
	// does not end the session.
	el = c.sendRID(bindRID, `key="`+k[2]+`"`, "")
	expectTerminate(t, el, "item-not-found")
	held := c.async(c.nextRID(), `key="other seed"`, `<message xmlns="jabber:client" to="bob@localhost/tcp" id="k1"><body>keyed</body></message>`)
	bob.Expect(t, `<message id="k1"><body>keyed</body></message>`)
	// A request with a wrong key is not processed, and ends the session.
	el = c.send(`key="`+k[1]+`"`, `<message xmlns="jabber:client" to="bob@localhost/tcp"><body>injected</body></message>`)
	expectTerminate(t, el, "item-not-found")
	expectTerminate(t, recv(t, held), "item-not-found")
	bob.ExpectNothing(t)
}

// A stream error ends the session with remote-stream-error carrying the
// <stream:error/> (XEP-0206 §6).
func TestRemoteStreamError(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := newClient(t, srv)
	c.login("alice", "se")
	el := c.send("", `<unknown xmlns="urn:example:nothing"/>`)
	expectTerminate(t, el, "remote-stream-error")
	se := el.Child(stream.NS, "error")
	if se == nil || se.Child(stream.NSErrors, "unsupported-stanza-type") == nil {
		t.Fatalf("no stream error in %s", el)
	}
	waitFor(t, "the session to end", func() bool { return srv.Core.SessionCount() == 0 })
}
