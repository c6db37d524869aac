package xmpptest

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// Timeout bounds every wait of the test client.
const Timeout = 30 * time.Second

// Client is a logged-in test client.
type Client struct {
	JID jid.JID
	// Features are the stream features offered after authentication.
	Features *stanza.Element
	conn     net.Conn
	dec      *xmlstream.Decoder
	in       chan *stanza.Element
	err      error // set before in is closed
}

// Login connects to the STARTTLS listener, negotiates TLS, authenticates
// with SCRAM-SHA-256 and binds the resource of full (or a server-generated
// one if full has none).
func (s *Server) Login(t testing.TB, full, password string) *Client {
	t.Helper()
	c, err := s.Connect(full, password, false)
	if err != nil {
		t.Fatalf("xmpptest: login %s: %v", full, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Connect is Login without a testing.TB; directTLS uses the XEP-0368 listener.
func (s *Server) Connect(full, password string, directTLS bool) (*Client, error) {
	c, _, err := s.connect(full, password, directTLS, nil)
	return c, err
}

// Resume connects and authenticates like Connect, then asks to resume
// the XEP-0198 session previd, having handled h stanzas of it. It returns
// the server's answer, <resumed/> or <failed/>. After <failed/> the
// client has no resource: Bind binds one.
func (s *Server) Resume(full, password, previd string, h uint32) (*Client, *stanza.Element, error) {
	var answer *stanza.Element
	c, _, err := s.connect(full, password, false, func(c *Client) (bool, error) {
		c.write(`<resume xmlns="urn:xmpp:sm:3" previd="` + previd + `" h="` + fmt.Sprint(h) + `"/>`)
		el, err := c.dec.Element()
		if err != nil {
			return false, err
		}
		answer = el
		return true, nil
	})
	return c, answer, err
}

// Resumed is Resume for a test that expects <resumed/>: it fails the
// test on any other answer, and closes the client when the test ends.
func (s *Server) Resumed(t testing.TB, full, password, previd string, h uint32) *Client {
	t.Helper()
	c, answer, err := s.Resume(full, password, previd, h)
	if err != nil {
		t.Fatalf("xmpptest: resume %s: %v", full, err)
	}
	t.Cleanup(func() { c.Close() })
	if answer.Name != "resumed" {
		t.Fatalf("resume: %s", answer)
	}
	return c
}

// Bind binds a resource on a client that authenticated and did not
// bind (after a failed Resume); the answer comes through Recv.
func (c *Client) Bind(t testing.TB, resource string) {
	c.Send(t, `<iq type="set" id="bind2"><bind xmlns="`+stream.NSBind+`"><resource>`+resource+`</resource></bind></iq>`)
}

// connect negotiates a stream up to binding; afterAuth, if not nil, runs
// after authentication instead of binding when it returns true.
func (s *Server) connect(full, password string, directTLS bool, afterAuth func(*Client) (bool, error)) (*Client, bool, error) {
	j, err := jid.Parse(full)
	if err != nil {
		return nil, false, err
	}
	addr := s.C2SAddr
	if directTLS {
		addr = s.TLSAddr
	}
	raw, err := net.DialTimeout("tcp", addr, Timeout)
	if err != nil {
		return nil, false, err
	}
	_ = raw.SetDeadline(time.Now().Add(Timeout))
	c := &Client{conn: raw, in: make(chan *stanza.Element, 1024)}
	tlsCfg := &tls.Config{ServerName: j.Domain(), InsecureSkipVerify: true}
	if directTLS {
		tc := tls.Client(raw, tlsCfg)
		if err := tc.Handshake(); err != nil {
			raw.Close()
			return nil, false, err
		}
		c.conn = tc
	}
	c.dec = xmlstream.NewDecoder(c.conn, xmlstream.Limits{MaxBytes: 1 << 20})
	fail := func(err error) (*Client, bool, error) { c.conn.Close(); return nil, false, err }
	features, err := c.open(j.Domain())
	if err != nil {
		return fail(err)
	}
	if !directTLS {
		if features.Child(stream.NSTLS, "starttls") == nil {
			return fail(errors.New("no STARTTLS offered"))
		}
		c.write(`<starttls xmlns="` + stream.NSTLS + `"/>`)
		el, err := c.dec.Element()
		if err != nil {
			return fail(err)
		}
		if el.Name != "proceed" {
			return fail(fmt.Errorf("STARTTLS: got %s", el))
		}
		tc := tls.Client(c.conn, tlsCfg)
		if err := tc.Handshake(); err != nil {
			return fail(err)
		}
		c.conn = tc
		c.dec.Reset(tc)
		if _, err = c.open(j.Domain()); err != nil {
			return fail(err)
		}
	}
	if err := c.auth(j.Local(), password); err != nil {
		return fail(err)
	}
	c.dec.Reset(c.conn)
	if c.Features, err = c.open(j.Domain()); err != nil {
		return fail(err)
	}
	if afterAuth != nil {
		done, err := afterAuth(c)
		if err != nil {
			return fail(err)
		}
		if done {
			c.JID = j
			_ = c.conn.SetDeadline(time.Time{})
			go c.readLoop()
			return c, true, nil
		}
	}
	bind := `<iq type="set" id="bind1"><bind xmlns="` + stream.NSBind + `">`
	if r := j.Resource(); r != "" {
		bind += "<resource>" + string(stanza.AppendEscaped(nil, r, false)) + "</resource>"
	}
	c.write(bind + "</bind></iq>")
	el, err := c.dec.Element()
	if err != nil {
		return fail(err)
	}
	if el.Type() != "result" {
		return fail(fmt.Errorf("bind: %s", el))
	}
	if c.JID, err = jid.Parse(el.Child(stream.NSBind, "bind").ChildText(stream.NSBind, "jid")); err != nil {
		return fail(err)
	}
	_ = c.conn.SetDeadline(time.Time{})
	go c.readLoop()
	return c, false, nil
}

func (c *Client) open(domain string) (*stanza.Element, error) {
	c.write(`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="` + stream.NS + `" to="` + domain + `" version="1.0">`)
	if _, err := c.dec.Header(); err != nil {
		return nil, err
	}
	el, err := c.dec.Element()
	if err != nil {
		return nil, err
	}
	if el.Name != "features" {
		return nil, fmt.Errorf("expected features, got %s", el)
	}
	return el, nil
}

func (c *Client) write(s string) {
	_, _ = c.conn.Write([]byte(s))
}

func (c *Client) auth(user, password string) error {
	cl, err := scram.SHA256.NewClient(user, password, "")
	if err != nil {
		return err
	}
	conv := cl.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		return err
	}
	c.write(`<auth xmlns="` + stream.NSSASL + `" mechanism="SCRAM-SHA-256">` + base64.StdEncoding.EncodeToString([]byte(first)) + `</auth>`)
	for {
		el, err := c.dec.Element()
		if err != nil {
			return err
		}
		data, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text()))
		switch el.Name {
		case "challenge":
			resp, err := conv.Step(string(data))
			if err != nil {
				return err
			}
			c.write(`<response xmlns="` + stream.NSSASL + `">` + base64.StdEncoding.EncodeToString([]byte(resp)) + `</response>`)
		case "success":
			if _, err := conv.Step(string(data)); err != nil {
				return fmt.Errorf("server signature: %w", err)
			}
			return nil
		default:
			return fmt.Errorf("SASL: %s", el)
		}
	}
}

func (c *Client) readLoop() {
	for {
		el, err := c.dec.Element()
		if err != nil {
			c.err = err
			close(c.in)
			return
		}
		c.in <- el
	}
}

// Send writes raw XML to the server.
func (c *Client) Send(t testing.TB, xml string) {
	t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(Timeout))
	if _, err := c.conn.Write([]byte(xml)); err != nil {
		t.Fatalf("xmpptest: %s: send: %v", c.JID, err)
	}
}

// Recv returns the next stanza, failing the test after Timeout.
func (c *Client) Recv(t testing.TB) *stanza.Element {
	t.Helper()
	el, err := c.RecvTimeout(Timeout)
	if err != nil {
		t.Fatalf("xmpptest: %s: %v", c.JID, err)
	}
	return el
}

// RecvTimeout returns the next stanza or an error after d or when the stream ended.
func (c *Client) RecvTimeout(d time.Duration) (*stanza.Element, error) {
	select {
	case el, ok := <-c.in:
		if !ok {
			return nil, fmt.Errorf("stream ended: %v", c.err)
		}
		return el, nil
	case <-time.After(d):
		return nil, errors.New("nothing received in time")
	}
}

// Expect fails unless the next stanza matches the pattern (see Match).
func (c *Client) Expect(t testing.TB, pattern string) *stanza.Element {
	t.Helper()
	want, err := xmlstream.ParseNS([]byte(pattern), stanza.NSClient)
	if err != nil {
		t.Fatalf("xmpptest: bad pattern %q: %v", pattern, err)
	}
	got := c.Recv(t)
	if err := Match(want, got, nil); err != nil {
		t.Fatalf("xmpptest: %s received\n\t%s\nexpected\n\t%s\n%v", c.JID, got, want, err)
	}
	return got
}

// ExpectNothing fails if a stanza arrives within a short quiet period.
func (c *Client) ExpectNothing(t testing.TB) {
	t.Helper()
	if el, err := c.RecvTimeout(300 * time.Millisecond); err == nil {
		t.Fatalf("xmpptest: %s received unexpected %s", c.JID, el)
	}
}

// Close ends the stream politely and waits for the server to close it.
func (c *Client) Close() {
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.conn.Write([]byte(stream.Close))
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-c.in:
			if ok {
				continue
			}
		case <-timer.C:
		}
		break
	}
	_ = c.conn.Close()
}

// RawConn is the client's connection, for writing bytes behind the client's back.
func (c *Client) RawConn() net.Conn { return c.conn }

// Kill drops the TCP connection without closing the stream.
func (c *Client) Kill() { _ = c.conn.Close() }
