package hostmeta_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/hostmeta"
)

func get(t *testing.T, srv *xmpptest.Server, host, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: host}, //nolint:gosec // self-signed test certificates
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, srv.HTTPSAddr)
		},
		ForceAttemptHTTP2: true,
	}}
	req, _ := http.NewRequest("GET", "https://"+host+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

type xrdDoc struct {
	XMLName xml.Name `xml:"http://docs.oasis-open.org/ns/xri/xrd-1.0 XRD"`
	Links   []struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
	} `xml:"Link"`
}

func TestHostMetaPerHost(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Hosts("localhost", "example.net"), xmpptest.Modules("hostmeta"), xmpptest.HTTP(""),
		xmpptest.Config(`[host."localhost".hostmeta]
bosh_url = "https://localhost:5281/http-bind"
websocket_url = "wss://localhost:5281/xmpp-websocket"
[host."example.net".hostmeta]
websocket_url = "wss://chat.example.net/ws"`))

	resp, b := get(t, srv, "localhost", "/.well-known/host-meta", map[string]string{"Origin": "https://client.example"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/xrd+xml; charset=utf-8" ||
		resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("XRD: %d %v", resp.StatusCode, resp.Header)
	}
	var x xrdDoc
	if err := xml.Unmarshal(b, &x); err != nil {
		t.Fatalf("XRD: %v\n%s", err, b)
	}
	if len(x.Links) != 2 || x.Links[0].Rel != "urn:xmpp:alt-connections:xbosh" || x.Links[0].Href != "https://localhost:5281/http-bind" ||
		x.Links[1].Rel != "urn:xmpp:alt-connections:websocket" || x.Links[1].Href != "wss://localhost:5281/xmpp-websocket" {
		t.Errorf("XRD links: %+v", x.Links)
	}

	// The other host answers with its own links (Host header and SNI).
	resp, b = get(t, srv, "example.net", "/.well-known/host-meta.json", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("JRD: %d %v", resp.StatusCode, resp.Header)
	}
	var j struct {
		Links []struct{ Rel, Href string }
	}
	if err := json.Unmarshal(b, &j); err != nil || len(j.Links) != 1 ||
		j.Links[0].Rel != "urn:xmpp:alt-connections:websocket" || j.Links[0].Href != "wss://chat.example.net/ws" {
		t.Errorf("JRD: %s (%v)", b, err)
	}
	if cert := resp.TLS.PeerCertificates[0]; cert.Subject.CommonName != "example.net" {
		t.Errorf("certificate for %s", cert.Subject.CommonName)
	}

	// A name that is no host, with two hosts and no default_host: nothing to guess.
	if resp, _ := get(t, srv, "127.0.0.1", "/.well-known/host-meta", nil); resp.StatusCode != 404 {
		t.Errorf("unknown host: %d", resp.StatusCode)
	}
}

func TestHostMetaDefaultHostAndEmpty(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("hostmeta"), xmpptest.HTTP(""))
	// A single host answers for any name; no links configured: an empty list.
	resp, b := get(t, srv, "127.0.0.1", "/.well-known/host-meta.json", nil)
	if resp.StatusCode != 200 || string(b) != "{\n  \"links\": []\n}" {
		t.Errorf("JRD: %d %q", resp.StatusCode, b)
	}
}

func TestHostMetaRejectsInsecureURLs(t *testing.T) {
	t.Parallel()
	for _, cfg := range []string{`bosh_url = "http://localhost/http-bind"`, `websocket_url = "ws://localhost/ws"`, `websocket_url = "wss:///ws"`} {
		srvErr := func() (err any) {
			defer func() { err = recover() }()
			ft := &fatalT{TB: t}
			xmpptest.NewServer(ft, xmpptest.Modules("hostmeta"), xmpptest.HTTP(""), xmpptest.Config("[modules.hostmeta]\n"+cfg))
			return nil
		}()
		if srvErr == nil {
			t.Errorf("%s accepted", cfg)
		}
	}
}

// fatalT turns Fatalf into a panic so that a test can expect start-up to fail.
type fatalT struct{ testing.TB }

func (f *fatalT) Fatalf(format string, args ...any) { panic("fatal") }
func (f *fatalT) Helper()                           {}
