package httpupload

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/disco"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// newServer runs a server with the module: 1000-byte files, a 2500-byte quota.
func newServer(t *testing.T, extra string) *xmpptest.Server {
	t.Helper()
	srv := xmpptest.NewServer(t, xmpptest.Modules("disco", "http_upload"), xmpptest.HTTP(""),
		xmpptest.Config("[modules.http_upload]\nmax_file_size = 1000\nquota = 2500\n"+extra))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	return srv
}

func httpClient(srv *xmpptest.Server) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}, //nolint:gosec // self-signed test certificate
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, srv.HTTPSAddr)
		},
		ForceAttemptHTTP2: true,
	}}
}

type slotURLs struct{ put, get, auth string }

// requestSlot asks for a slot and returns it, or the error stanza.
func requestSlot(t *testing.T, c *xmpptest.Client, id, name string, size int, ctype string) (slotURLs, *stanza.Element) {
	t.Helper()
	attrs := fmt.Sprintf(`filename=%q size="%d"`, name, size)
	if ctype != "" {
		attrs += fmt.Sprintf(` content-type=%q`, ctype)
	}
	c.Send(t, fmt.Sprintf(`<iq type="get" id=%q to="localhost"><request xmlns="urn:xmpp:http:upload:0" %s/></iq>`, id, attrs))
	r := c.Recv(t)
	if r.Type() != "result" {
		return slotURLs{}, r
	}
	sl := r.Child(NS, "slot")
	put, get := sl.Child(NS, "put"), sl.Child(NS, "get")
	hdr := put.Child(NS, "header")
	if hdr == nil || hdr.Attr("name") != "Authorization" {
		t.Fatalf("slot without Authorization header: %s", r)
	}
	return slotURLs{put.Attr("url"), get.Attr("url"), hdr.Text()}, nil
}

func send(t *testing.T, hc *http.Client, method, url, auth, ctype string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestDisco(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	c.Send(t, `<iq type="get" id="d1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	c.Expect(t, `<iq type="result" id="d1"><query xmlns="http://jabber.org/protocol/disco#info">
		<identity category="store" type="file" name="HTTP File Upload"/>
		<feature var="urn:xmpp:http:upload:0"/>
		<x xmlns="jabber:x:data" type="result">
			<field var="FORM_TYPE" type="hidden"><value>urn:xmpp:http:upload:0</value></field>
			<field var="max-file-size"><value>1000</value></field>
		</x></query></iq>`)
}

func TestUploadAndDownload(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	hc := httpClient(srv)
	content := []byte(strings.Repeat("0123456789", 50)) // 500 bytes
	sl, e := requestSlot(t, c, "s1", "très cool.txt", len(content), "text/plain; charset=utf-8")
	if e != nil {
		t.Fatalf("slot refused: %s", e)
	}
	if !strings.HasPrefix(sl.put, "https://localhost:") || sl.put != sl.get || !strings.HasSuffix(sl.put, "/tr%C3%A8s%20cool.txt") {
		t.Fatalf("slot URLs %q %q", sl.put, sl.get)
	}
	// A GET before the upload finds nothing.
	if resp, _ := send(t, hc, "GET", sl.get, "", "", nil, nil); resp.StatusCode != 404 {
		t.Errorf("GET before PUT: %d", resp.StatusCode)
	}
	// Wrong content type, wrong length, no token: refused.
	if resp, _ := send(t, hc, "PUT", sl.put, sl.auth, "image/png", content, nil); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("PUT with another type: %d", resp.StatusCode)
	}
	if resp, _ := send(t, hc, "PUT", sl.put, sl.auth, "text/plain", content[:10], nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT shorter than the slot: %d", resp.StatusCode)
	}
	if resp, _ := send(t, hc, "PUT", sl.put, "", "text/plain", content, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("PUT without token: %d", resp.StatusCode)
	}
	resp, b := send(t, hc, "PUT", sl.put, sl.auth, "text/plain", content, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
	// A slot is used once.
	if resp, _ := send(t, hc, "PUT", sl.put, sl.auth, "text/plain", content, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("second PUT: %d", resp.StatusCode)
	}
	resp, b = send(t, hc, "GET", sl.get, "", "", nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(b, content) {
		t.Fatalf("GET: %d, %d bytes", resp.StatusCode, len(b))
	}
	h := resp.Header
	if h.Get("Content-Type") != "text/plain" || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") ||
		!strings.HasPrefix(h.Get("Content-Disposition"), "inline") || h.Get("Accept-Ranges") != "bytes" {
		t.Errorf("GET headers: %v", h)
	}
	// Ranges.
	resp, b = send(t, hc, "GET", sl.get, "", "", nil, map[string]string{"Range": "bytes=2-5"})
	if resp.StatusCode != http.StatusPartialContent || string(b) != "2345" || resp.Header.Get("Content-Range") != "bytes 2-5/500" {
		t.Errorf("range: %d %q %s", resp.StatusCode, b, resp.Header.Get("Content-Range"))
	}
	resp, b = send(t, hc, "GET", sl.get, "", "", nil, map[string]string{"Range": "bytes=-3"})
	if resp.StatusCode != http.StatusPartialContent || string(b) != "789" {
		t.Errorf("suffix range: %d %q", resp.StatusCode, b)
	}
	if resp, _ := send(t, hc, "GET", sl.get, "", "", nil, map[string]string{"Range": "bytes=900-"}); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("unsatisfiable range: %d", resp.StatusCode)
	}
	// HEAD, and a conditional GET.
	resp, b = send(t, hc, "HEAD", sl.get, "", "", nil, nil)
	if resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != 500 {
		t.Errorf("HEAD: %d %d", resp.StatusCode, resp.ContentLength)
	}
	if resp, _ := send(t, hc, "GET", sl.get, "", "", nil, map[string]string{"If-Modified-Since": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}); resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET: %d", resp.StatusCode)
	}
	// Another name under the same id is not the file.
	if resp, _ := send(t, hc, "GET", strings.TrimSuffix(sl.get, "cool.txt")+"x.txt", "", "", nil, nil); resp.StatusCode != 404 {
		t.Errorf("GET under another name: %d", resp.StatusCode)
	}
}

func TestSlotErrors(t *testing.T) {
	t.Parallel()
	srv := newServer(t, `allowed_types = ["image/*", "text/plain"]`)
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	if _, e := requestSlot(t, c, "big", "big.png", 1001, "image/png"); e == nil {
		t.Fatal("oversize slot granted")
	} else if err := xmpptest.Match(pattern(t, `<iq type="error" id="big"><error type="modify">
		<not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>
		<file-too-large xmlns="urn:xmpp:http:upload:0"><max-file-size>1000</max-file-size></file-too-large></error></iq>`), e, nil); err != nil {
		t.Errorf("oversize: %v: %s", err, e)
	}
	if _, e := requestSlot(t, c, "exe", "a.exe", 10, "application/x-msdownload"); e == nil || stanza.ParseError(e).Condition != stanza.NotAcceptable {
		t.Errorf("type not allowed: %v", e)
	}
	if _, e := requestSlot(t, c, "zero", "a.png", 0, "image/png"); e == nil || stanza.ParseError(e).Condition != stanza.BadRequest {
		t.Errorf("zero size: %v", e)
	}
	if _, e := requestSlot(t, c, "noname", "", 10, "image/png"); e == nil || stanza.ParseError(e).Condition != stanza.BadRequest {
		t.Errorf("no name: %v", e)
	}
	if _, e := requestSlot(t, c, "ok", "../../etc/a.png", 10, "image/png"); e != nil {
		t.Errorf("allowed type refused: %s", e)
	}
}

func TestQuota(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	hc := httpClient(srv)
	upload := func(id string, size int) {
		t.Helper()
		sl, e := requestSlot(t, c, id, id+".bin", size, "")
		if e != nil {
			t.Fatalf("slot %s: %s", id, e)
		}
		if resp, b := send(t, hc, "PUT", sl.put, sl.auth, "", bytes.Repeat([]byte("x"), size), nil); resp.StatusCode != 201 {
			t.Fatalf("PUT %s: %d %s", id, resp.StatusCode, b)
		}
	}
	upload("a", 1000)
	upload("b", 1000)
	// 2000 of 2500 bytes are used: 1000 more do not fit (XEP-0363 §4).
	_, e := requestSlot(t, c, "c", "c.bin", 1000, "")
	if e == nil {
		t.Fatal("slot over quota granted")
	}
	if err := xmpptest.Match(pattern(t, `<iq type="error" id="c"><error type="wait">
		<resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>
		<retry xmlns="urn:xmpp:http:upload:0" stamp="{any}"/></error></iq>`), e, nil); err != nil {
		t.Errorf("quota error: %v: %s", err, e)
	}
	// Quota is per user.
	if _, e := requestSlot(t, srv.Login(t, "juliet@localhost/balcony", "password"), "j", "j.bin", 1000, ""); e != nil {
		t.Errorf("another user's slot: %s", e)
	}
	// Two slots that each fit, but not together: the second PUT is refused.
	d, e := requestSlot(t, c, "d", "d.bin", 500, "")
	if e != nil {
		t.Fatalf("slot d: %s", e)
	}
	f, e := requestSlot(t, c, "f", "f.bin", 400, "")
	if e != nil {
		t.Fatalf("slot f: %s", e)
	}
	if resp, _ := send(t, hc, "PUT", d.put, d.auth, "", bytes.Repeat([]byte("y"), 500), nil); resp.StatusCode != 201 {
		t.Errorf("PUT d: %d", resp.StatusCode)
	}
	if resp, _ := send(t, hc, "PUT", f.put, f.auth, "", bytes.Repeat([]byte("z"), 400), nil); resp.StatusCode != http.StatusInsufficientStorage {
		t.Errorf("PUT over quota: %d", resp.StatusCode)
	}
}

// pattern parses an expected stanza for xmpptest.Match.
func pattern(t *testing.T, s string) *stanza.Element {
	t.Helper()
	el, err := xmlstream.ParseNS([]byte(s), stanza.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

// moduleFor returns a module value able to sign and purge for srv's host, with
// the key and directory the running instance uses.
func moduleFor(t *testing.T, srv *xmpptest.Server) *Upload {
	t.Helper()
	fs := newFileStore(srv.Driver.KeyVal("localhost", storeFiles), srv.Driver.Map("localhost", storeUsers),
		filepath.Join(srv.Config.Server.DataDir, "http_upload", "localhost"), DefaultExpireAfter)
	key, err := fs.signingKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &Upload{fs: fs, key: key}
}

func TestWrongAndExpiredSlots(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	hc := httpClient(srv)
	body := []byte("hello")
	a, _ := requestSlot(t, c, "a", "a.txt", 5, "")
	b, _ := requestSlot(t, c, "b", "b.txt", 5, "")
	// Slot a's token on slot b's URL.
	if resp, _ := send(t, hc, "PUT", b.put, a.auth, "", body, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another slot's token: %d", resp.StatusCode)
	}
	// A tampered signature, and a tampered payload (bigger size).
	if resp, _ := send(t, hc, "PUT", a.put, a.auth[:len(a.auth)-2]+"AA", "", body, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("tampered signature: %d", resp.StatusCode)
	}
	m := moduleFor(t, srv)
	id := strings.Split(strings.TrimPrefix(a.put, "https://"), "/")[3]
	forged := slot{Owner: "romeo", Size: 5, Type: "application/octet-stream", Expires: time.Now().Add(time.Hour).Unix()}.sign([]byte("not the key"), "localhost", id, "a.txt")
	if resp, _ := send(t, hc, "PUT", a.put, "Bearer "+forged, "", body, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("token signed with another key: %d", resp.StatusCode)
	}
	// An expired slot, signed with the right key.
	expired := slot{Owner: "romeo", Size: 5, Type: "application/octet-stream", Expires: time.Now().Add(-time.Second).Unix()}.sign(m.key, "localhost", id, "a.txt")
	if resp, b := send(t, hc, "PUT", a.put, "Bearer "+expired, "", body, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "expired") {
		t.Errorf("expired slot: %d %s", resp.StatusCode, b)
	}
	// Oversize body against the slot (declared and streamed).
	if resp, _ := send(t, hc, "PUT", a.put, a.auth, "", []byte("hello, world"), nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("body over the slot's size: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("PUT", a.put, io.MultiReader(strings.NewReader("hello, world")))
	req.ContentLength = -1
	req.Header.Set("Authorization", a.auth)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("streamed body over the slot's size: %d", resp.StatusCode)
	}
	// The right token still works afterwards.
	if resp, b := send(t, hc, "PUT", a.put, a.auth, "", body, nil); resp.StatusCode != 201 {
		t.Errorf("PUT: %d %s", resp.StatusCode, b)
	}
}

func TestExpiryAndAccountDeletion(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	hc := httpClient(srv)
	var gets []string
	for i := range 2 {
		sl, e := requestSlot(t, c, fmt.Sprint("e", i), "e.txt", 4, "")
		if e != nil {
			t.Fatal(e)
		}
		if resp, _ := send(t, hc, "PUT", sl.put, sl.auth, "", []byte("data"), nil); resp.StatusCode != 201 {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
		gets = append(gets, sl.get)
	}
	m := moduleFor(t, srv)
	ctx := context.Background()
	// Nothing is due yet.
	if n, err := m.fs.purge(ctx, time.Now(), time.Minute); err != nil || n != 0 {
		t.Fatalf("purge now: %d %v", n, err)
	}
	// Eight days later both are gone: files, metadata and quota.
	if n, err := m.fs.purge(ctx, time.Now().Add(8*24*time.Hour), time.Minute); err != nil || n != 2 {
		t.Fatalf("purge later: %d %v", n, err)
	}
	for _, g := range gets {
		if resp, _ := send(t, hc, "GET", g, "", "", nil, nil); resp.StatusCode != 404 {
			t.Errorf("expired file still served: %d", resp.StatusCode)
		}
	}
	if used, _, _ := m.fs.usage(ctx, "romeo"); used != 0 {
		t.Errorf("quota after expiry: %d", used)
	}
	// Account deletion removes the user's files.
	sl, _ := requestSlot(t, c, "d", "d.txt", 4, "")
	if resp, _ := send(t, hc, "PUT", sl.put, sl.auth, "", []byte("data"), nil); resp.StatusCode != 201 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	dir := filepath.Join(srv.Config.Server.DataDir, "http_upload", "localhost")
	if n := countFiles(t, dir); n != 1 {
		t.Fatalf("files on disk: %d", n)
	}
	if err := srv.Core.DeleteUser(ctx, jid.MustParse("romeo@localhost")); err != nil {
		t.Fatal(err)
	}
	if resp, _ := send(t, hc, "GET", sl.get, "", "", nil, nil); resp.StatusCode != 404 {
		t.Errorf("file of a deleted account served: %d", resp.StatusCode)
	}
	if n := countFiles(t, dir); n != 0 {
		t.Errorf("files on disk after deletion: %d", n)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && filepath.Base(filepath.Dir(p)) != "tmp" {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCleanName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"photo.jpg", "photo.jpg"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\me\cat.png`, "cat.png"},
		{"a\x00b\nc.txt", "abc.txt"},
		{"..", ""},
		{"  ", ""},
		{strings.Repeat("é", 150) + ".jpeg", strings.Repeat("é", 97) + ".jpeg"},
	} {
		if got := cleanName(tc.in); got != tc.want {
			t.Errorf("cleanName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTokenRoundTrip(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := slot{Owner: "romeo", Size: 42, Type: "image/png", Expires: 1700000000}
	tok := s.sign(key, "example.org", "id", "a.png")
	if got, err := verify(key, "example.org", "id", "a.png", tok); err != nil || got != s {
		t.Fatalf("verify = %+v, %v", got, err)
	}
	for _, bad := range [][4]string{
		{"example.net", "id", "a.png", tok},
		{"example.org", "id2", "a.png", tok},
		{"example.org", "id", "b.png", tok},
		{"example.org", "id", "a.png", "garbage"},
		{"example.org", "id", "a.png", tok + "x"},
	} {
		if _, err := verify(key, bad[0], bad[1], bad[2], bad[3]); err == nil {
			t.Errorf("verify accepted %v", bad)
		}
	}
}
