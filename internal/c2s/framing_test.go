package c2s_test

import (
	"context"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/c2s"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
)

const wsOpen = `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>`

// framed runs a WebSocket-framed session on a pipe, sends in and returns
// everything the server wrote until it closed the connection.
func framed(t *testing.T, srv *xmpptest.Server, secure bool, in string) string {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	done := make(chan struct{})
	go c2s.ServeFramed(context.Background(), server, srv.Core, c2s.WebSocketFraming, secure, func() { close(done) })
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(client)
		out <- string(b)
	}()
	_ = client.SetWriteDeadline(time.Now().Add(xmpptest.Timeout))
	if _, err := client.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-out:
		<-done
		return got
	case <-time.After(xmpptest.Timeout):
		t.Fatal("the session did not end")
		return ""
	}
}

func TestFramedStream(t *testing.T) {
	srv := xmpptest.NewServer(t)
	const closeTag = `<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`
	t.Run("insecure", func(t *testing.T) {
		got := framed(t, srv, false, wsOpen)
		if !strings.HasPrefix(got, `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="localhost" id="`) ||
			!strings.Contains(got, `<stream:error xmlns:stream="http://etherx.jabber.org/streams"><policy-violation`) ||
			!strings.HasSuffix(got, closeTag) || strings.Contains(got, "stream:stream") {
			t.Fatalf("require_encryption over an insecure WebSocket: %s", got)
		}
	})
	t.Run("features and close", func(t *testing.T) {
		got := framed(t, srv, true, wsOpen+closeTag)
		if !strings.Contains(got, `<stream:features xmlns:stream="http://etherx.jabber.org/streams">`) ||
			strings.Contains(got, "starttls") || !strings.Contains(got, `version="1.0"`) ||
			!strings.Contains(got, `xml:lang="en"`) || !strings.HasSuffix(got, "</stream:features>"+closeTag) {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("no starttls", func(t *testing.T) {
		got := framed(t, srv, true, wsOpen+`<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>`)
		if !strings.Contains(got, "<policy-violation") || !strings.HasSuffix(got, closeTag) {
			t.Fatalf("got %s", got)
		}
	})
}

func TestSplitElements(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		rest string
	}{
		{`<a/>`, []string{`<a/>`}, ""},
		{` <a x="1>2"><b/>t</a>` + "\n" + `<c y='/>'/>`, []string{`<a x="1>2"><b/>t</a>`, `<c y='/>'/>`}, ""},
		{`<stream:features xmlns:stream="s"><x/></stream:features><open xmlns="f"/>`,
			[]string{`<stream:features xmlns:stream="s"><x/></stream:features>`, `<open xmlns="f"/>`}, ""},
		{`<a/><b><c/>`, []string{`<a/>`}, `<b><c/>`},
		{`<a/><b x="`, []string{`<a/>`}, `<b x="`},
		{`<?xml version='1.0'?><a/>`, []string{`<a/>`}, ""},
		{`<open a="1"/><message x='>'><body>a&lt;</body></message> <r/><partial x="`,
			[]string{`<open a="1"/>`, `<message x='>'><body>a&lt;</body></message>`, `<r/>`}, `<partial x="`},
	} {
		var got []string
		rest, err := c2s.SplitElements([]byte(tc.in), func(b []byte) error { got = append(got, string(b)); return nil })
		if err != nil || !reflect.DeepEqual(got, tc.want) || string(rest) != tc.rest {
			t.Errorf("%q: got %q rest %q err %v; want %q rest %q", tc.in, got, rest, err, tc.want, tc.rest)
		}
	}
}
