// Package httpupload implements XEP-0363 HTTP File Upload (version 1.1.0,
// namespace urn:xmpp:http:upload:0) as module "http_upload".
//
// The host itself is the upload service: it advertises the identity
// store/file, the feature and the max-file-size extended-info form
// (XEP-0363 §2, XEP-0128) in its disco#info, and answers slot requests
// (§3) from its own users with a PUT and a GET URL on the server's HTTP
// listeners:
//
//	<base>/upload/<host>/<id>/<file name>
//
// The PUT carries an Authorization header with a token signed (HMAC-SHA256,
// per-installation key kept in storage) over the host, id, file name, size,
// content type, owner and expiry of the slot, so slots need no server
// state; a slot can be used once. Uploads stream to a temporary file and are
// renamed into place when complete, so memory use does not depend on file
// size. GETs answer with the declared content type, byte ranges
// (RFC 9110 §14), conditional requests, and headers that keep browsers from
// running uploaded content (Content-Security-Policy, nosniff).
//
// Limits: max_file_size per file (not-acceptable with <file-too-large/>,
// §4), quota per user over the files currently stored (resource-constraint
// with <retry/> at the time the oldest file expires), allowed content
// types (not-acceptable). Files expire expire_after after upload; a timer
// deletes them. Deleting an account deletes its files.
//
// Not implemented: the purpose extensions (§5), the S3-compatible store,
// the legacy urn:xmpp:http:upload namespace, and a separate component
// address (upload.<host>). Quota is checked at slot time and again when an
// upload starts, so two uploads racing may exceed it by one file.
package httpupload

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Namespaces.
const (
	// NS is the XEP-0363 namespace.
	NS = "urn:xmpp:http:upload:0"
	// NSData is the XEP-0004 data forms namespace.
	NSData = "jabber:x:data"
)

// Defaults of the options.
const (
	DefaultMaxFileSize = 50 * 1000 * 1000
	DefaultQuota       = 1000 * 1000 * 1000
	DefaultExpireAfter = 7 * 24 * time.Hour
	DefaultSlotTimeout = 5 * time.Minute
)

func init() { module.Register(new(Upload)) }

// Upload is the module and its configuration ([modules.http_upload]).
type Upload struct {
	// MaxFileSize is the largest file accepted, in bytes.
	MaxFileSize module.Size `json:"max_file_size"`
	// Quota bounds the bytes a user may have stored at once; 0 = no limit.
	Quota module.Size `json:"quota"`
	// ExpireAfter is how long files are kept; 0 keeps them forever.
	ExpireAfter module.Duration `json:"expire_after"`
	// SlotTimeout is how long a PUT URL stays valid (XEP-0363 §7: ~300 s).
	SlotTimeout module.Duration `json:"slot_timeout"`
	// AllowedTypes lists the content types accepted ("image/*" allows a
	// whole type); empty accepts any.
	AllowedTypes []string `json:"allowed_types"`
	// URL is the public base URL of the upload routes; "" uses the HTTP
	// server's base URL for this host ([http] external_url or derived).
	URL string `json:"url"`
	// Path is the directory files are kept in; "" is <data_dir>/http_upload.
	Path string `json:"path"`
	// Name is the name of the disco identity.
	Name string `json:"name"`

	h     module.Host
	fs    *fileStore
	key   []byte
	route string // "/upload/<host>/"
	now   func() time.Time
}

// Info implements module.Module.
func (*Upload) Info() module.Info {
	return module.Info{ID: "mod.http_upload", Requires: []string{"http"}, New: func() module.Module {
		return &Upload{
			MaxFileSize: DefaultMaxFileSize,
			Quota:       DefaultQuota,
			ExpireAfter: module.Duration(DefaultExpireAfter),
			SlotTimeout: module.Duration(DefaultSlotTimeout),
			Name:        "HTTP File Upload",
		}
	}}
}

// Validate implements module.Validator.
func (u *Upload) Validate() error {
	if u.MaxFileSize <= 0 {
		return errors.New("max_file_size: must be positive")
	}
	if u.SlotTimeout.D() < time.Second {
		return errors.New("slot_timeout: must be at least 1s")
	}
	if u.Quota != 0 && u.Quota < u.MaxFileSize {
		return errors.New("quota: must be 0 (no limit) or at least max_file_size")
	}
	for i, t := range u.AllowedTypes {
		if !validTypePattern(t) {
			return fmt.Errorf("allowed_types[%d]: %q is not a media type such as \"image/png\" or \"image/*\"", i, t)
		}
	}
	if u.URL != "" && !strings.HasPrefix(u.URL, "https://") && !strings.HasPrefix(u.URL, "http://") {
		return fmt.Errorf("url: %q must start with https:// (or http:// behind a TLS proxy)", u.URL)
	}
	return nil
}

func validTypePattern(t string) bool {
	typ, sub, ok := strings.Cut(t, "/")
	return ok && typ != "" && sub != "" && !strings.ContainsAny(t, " ;,")
}

// Provision implements module.Provisioner.
func (u *Upload) Provision(h module.Host) error {
	u.h = h
	if u.now == nil {
		u.now = time.Now
	}
	dir := u.Path
	if dir == "" {
		dd, ok := module.DataDir(h)
		if !ok {
			// An offline tool (metronomectl without the daemon): nothing to
			// serve; files of deleted accounts expire later.
			return nil
		}
		dir = filepath.Join(dd, "http_upload")
	}
	u.fs = newFileStore(h.Store(storeFiles).KeyVal(), h.Store(storeUsers).Map(),
		filepath.Join(dir, h.Name()), u.ExpireAfter.D())
	module.OnUserDeleted(h, func(ctx context.Context, user jid.JID) {
		if err := u.fs.deleteUser(ctx, user.Local()); err != nil {
			h.Logger().Warn("deleting uploaded files failed", "user", user.String(), "err", err)
		}
	})
	r, ok := module.HTTP(h)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), module.StoreTimeout)
	defer cancel()
	key, err := u.fs.signingKey(ctx)
	if err != nil {
		return fmt.Errorf("http_upload: %w", err)
	}
	u.key = key
	u.route = "/upload/" + h.Name() + "/"
	if err := r.Handle("PUT "+u.route+"{id}/{name}", httpHandler(u.put), module.MaxBody(-1)); err != nil {
		return err
	}
	if err := r.Handle("GET "+u.route+"{id}/{name}", httpHandler(u.get)); err != nil {
		return err
	}
	h.AddIdentity("store", "file", u.Name)
	h.AddFeature(NS)
	h.AddExtension(u.form())
	module.OnIQ(h, "host", stanza.Get, NS, "request", event.PrioDefault, module.Bounded(u.request))
	// Expiry: once at start, then hourly (or sooner for short retention).
	every := time.Hour
	if exp := u.ExpireAfter.D(); exp > 0 && exp/4 < every {
		every = max(exp/4, time.Second)
	}
	h.Go(func(ctx context.Context) error { u.expire(ctx); return nil })
	h.Every(every, u.expire)
	return nil
}

func (u *Upload) expire(ctx context.Context) {
	n, err := u.fs.purge(ctx, u.now(), u.SlotTimeout.D())
	if err != nil {
		u.h.Logger().Warn("upload expiry failed", "err", err)
	}
	if n > 0 {
		u.h.Logger().Info("expired uploads deleted", "files", n)
	}
}

// form is the XEP-0128 extension advertising max-file-size (§2).
func (u *Upload) form() *stanza.Element {
	x := stanza.New(NSData, "x", "type", "result")
	ft := x.AddChild(stanza.New(NSData, "field", "var", "FORM_TYPE", "type", "hidden"))
	ft.AddChild(stanza.New(NSData, "value")).AddText(NS)
	mf := x.AddChild(stanza.New(NSData, "field", "var", "max-file-size"))
	mf.AddChild(stanza.New(NSData, "value")).AddText(strconv.FormatInt(int64(u.MaxFileSize), 10))
	return x
}

// baseURL is where the upload routes are reachable.
func (u *Upload) baseURL() string {
	if u.URL != "" {
		return strings.TrimSuffix(u.URL, "/")
	}
	if r, ok := module.HTTP(u.h); ok {
		return r.BaseURL()
	}
	return ""
}

// request answers a slot request (§3).
func (u *Upload) request(ctx context.Context, ev *event.Event) event.Verdict {
	req := ev.Stanza.Child(NS, "request")
	from := ev.From
	if from.Local() == "" || from.Domain() != u.h.Name() {
		return module.ReplyError(ctx, u.h, ev, stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden,
			Text: "only users of " + u.h.Name() + " may upload files here"})
	}
	name := cleanName(req.Attr("filename"))
	size, err := strconv.ParseInt(req.Attr("size"), 10, 64)
	if name == "" || err != nil || size <= 0 {
		return module.ReplyError(ctx, u.h, ev, stanza.ErrText(stanza.BadRequest,
			"a request needs a file name and a positive size in bytes"))
	}
	if size > int64(u.MaxFileSize) {
		limit := strconv.FormatInt(int64(u.MaxFileSize), 10)
		app := stanza.New(NS, "file-too-large")
		app.AddChild(stanza.New(NS, "max-file-size")).AddText(limit)
		return module.ReplyError(ctx, u.h, ev, stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable,
			Text: "File too large. The maximum file size is " + limit + " bytes", App: app})
	}
	ctype, ok := u.contentType(req.Attr("content-type"))
	if !ok {
		return module.ReplyError(ctx, u.h, ev, stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable,
			Text: "files of type " + req.Attr("content-type") + " are not accepted here"})
	}
	if e, refuse := u.overQuota(ctx, from.Local(), size); refuse {
		return module.ReplyError(ctx, u.h, ev, e)
	}
	base := u.baseURL()
	if base == "" {
		return module.ReplyError(ctx, u.h, ev, stanza.ErrText(stanza.ServiceUnavailable, "no HTTP listener is configured"))
	}
	id := newID()
	sl := slot{Owner: from.Local(), Size: size, Type: ctype, Expires: u.now().Add(u.SlotTimeout.D()).Unix()}
	url := base + u.route + id + "/" + escapeName(name)
	res := stanza.New(NS, "slot")
	put := res.AddChild(stanza.New(NS, "put", "url", url))
	put.AddChild(stanza.New(NS, "header", "name", "Authorization")).AddText("Bearer " + sl.sign(u.key, u.h.Name(), id, name))
	res.AddChild(stanza.New(NS, "get", "url", url))
	u.h.Logger().Debug("upload slot issued", "user", from.Bare().String(), "size", size, "type", ctype)
	return module.Reply(ctx, u.h, ev, res)
}

// overQuota reports whether size more bytes would exceed user's quota, with
// the error to answer (§4: resource-constraint, retry when the oldest file
// expires); a storage failure refuses with internal-server-error.
func (u *Upload) overQuota(ctx context.Context, user string, size int64) (stanza.Error, bool) {
	if u.Quota == 0 {
		return stanza.Error{}, false
	}
	used, oldest, err := u.fs.usage(ctx, user)
	if err != nil {
		u.h.Logger().Error("reading upload quota failed", "user", user, "err", err)
		return stanza.Err(stanza.InternalServerError), true
	}
	if used+size <= int64(u.Quota) {
		return stanza.Error{}, false
	}
	e := stanza.Error{Type: stanza.Wait, Condition: stanza.ResourceConstraint,
		Text: fmt.Sprintf("Quota reached: %d of %d bytes are in use", used, int64(u.Quota))}
	if exp := u.ExpireAfter.D(); exp > 0 && !oldest.IsZero() {
		e.App = stanza.New(NS, "retry", "stamp", oldest.Add(exp).UTC().Format(time.RFC3339))
	}
	return e, true
}

// contentType normalises the declared content type and checks it against
// allowed_types; "" (not declared) is application/octet-stream.
func (u *Upload) contentType(declared string) (string, bool) {
	t := "application/octet-stream"
	if declared != "" {
		mt, _, err := mime.ParseMediaType(declared)
		if err != nil || !strings.Contains(mt, "/") {
			return "", false
		}
		t = mt
	}
	if len(u.AllowedTypes) == 0 {
		return t, true
	}
	for _, a := range u.AllowedTypes {
		a = strings.ToLower(a)
		if a == t || strings.HasSuffix(a, "/*") && strings.HasPrefix(t, strings.TrimSuffix(a, "*")) {
			return t, true
		}
	}
	return "", false
}

// cleanName keeps the base name of a client's file name, without control
// characters, at most 200 bytes, keeping the extension (§3: keep the file
// name and especially the ending intact).
func cleanName(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "." || s == ".." {
		return ""
	}
	const maxLen = 200
	if len(s) > maxLen {
		ext := filepath.Ext(s)
		if len(ext) > 20 {
			ext = ""
		}
		s = truncateUTF8(s[:len(s)-len(ext)], maxLen-len(ext)) + ext
	}
	return s
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
