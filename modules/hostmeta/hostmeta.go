// Package hostmeta implements XEP-0156 Discovering Alternative XMPP
// Connection Methods (version 1.4.0), HTTP lookup method (§3): it serves
// /.well-known/host-meta (XRD, RFC 6415) and /.well-known/host-meta.json
// (JRD) for its virtual host, with links to the host's BOSH
// (urn:xmpp:alt-connections:xbosh) and WebSocket
// (urn:xmpp:alt-connections:websocket) endpoints, as configured by their
// public URLs. Both documents are served with "Access-Control-Allow-Origin:
// *" (§3.1.1) so that web clients on other origins can read them.
//
// The server does not check that the URLs point at working endpoints: BOSH
// and WebSocket are served by other modules or by a reverse proxy. Not
// implemented: the DNS TXT method (deprecated by the XEP) and XEP-0487
// extras.
package hostmeta

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/metronome-xmpp/metronome/module"
)

// Link relations (XEP-0156 §3).
const (
	RelBOSH      = "urn:xmpp:alt-connections:xbosh"
	RelWebSocket = "urn:xmpp:alt-connections:websocket"
	// NSXRD is the XRD 1.0 namespace.
	NSXRD = "http://docs.oasis-open.org/ns/xri/xrd-1.0"
)

func init() { module.Register(new(HostMeta)) }

// HostMeta is the module and its configuration ([modules.hostmeta], usually
// per host: [host."example.org".hostmeta]).
type HostMeta struct {
	// BOSHURL is the public URL of the host's BOSH endpoint ("" = none).
	BOSHURL string `json:"bosh_url"`
	// WebSocketURL is the public URL of the host's WebSocket endpoint ("" = none).
	WebSocketURL string `json:"websocket_url"`

	xrd, jrd []byte
}

// Info implements module.Module.
func (*HostMeta) Info() module.Info {
	return module.Info{ID: "mod.hostmeta", Requires: []string{"http"}, New: func() module.Module { return new(HostMeta) }}
}

// Validate implements module.Validator: §3.1 allows only https and wss URLs.
func (m *HostMeta) Validate() error {
	if err := checkURL(m.BOSHURL, "https"); err != nil {
		return fmt.Errorf("bosh_url: %w", err)
	}
	if err := checkURL(m.WebSocketURL, "wss"); err != nil {
		return fmt.Errorf("websocket_url: %w", err)
	}
	return nil
}

func checkURL(s, scheme string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != scheme || u.Host == "" {
		return fmt.Errorf("%q must be an absolute %s:// URL (XEP-0156 §3.1)", s, scheme)
	}
	return nil
}

type link struct {
	Rel  string `json:"rel" xml:"rel,attr"`
	Href string `json:"href" xml:"href,attr"`
}

// Provision implements module.Provisioner.
func (m *HostMeta) Provision(h module.Host) error {
	r, ok := module.HTTP(h)
	if !ok {
		return nil
	}
	var links []link
	if m.BOSHURL != "" {
		links = append(links, link{RelBOSH, m.BOSHURL})
	}
	if m.WebSocketURL != "" {
		links = append(links, link{RelWebSocket, m.WebSocketURL})
	}
	var err error
	if m.xrd, err = xrd(links); err != nil {
		return err
	}
	if m.jrd, err = json.MarshalIndent(struct {
		Links []link `json:"links"`
	}{append([]link{}, links...)}, "", "  "); err != nil {
		return err
	}
	return errors.Join(
		r.Handle("GET /.well-known/host-meta", serve(m.xrd, "application/xrd+xml; charset=utf-8"), module.PublicCORS()),
		r.Handle("GET /.well-known/host-meta.json", serve(m.jrd, "application/json"), module.PublicCORS()),
	)
}

func xrd(links []link) ([]byte, error) {
	doc := struct {
		XMLName xml.Name `xml:"XRD"`
		XMLNS   string   `xml:"xmlns,attr"`
		Links   []link   `xml:"Link"`
	}{XMLNS: NSXRD, Links: links}
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	var sb strings.Builder
	sb.WriteString("<?xml version='1.0' encoding='utf-8'?>\n")
	sb.Write(b)
	sb.WriteString("\n")
	return []byte(sb.String()), nil
}

func serve(body []byte, ctype string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", "public, max-age=3600")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
