package httpupload

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
)

// ioIdle is how long an upload or download may stall before the
// connection is dropped; each chunk moved extends the deadline.
const ioIdle = time.Minute

type httpHandler func(w http.ResponseWriter, r *http.Request)

func (h httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h(w, r) }

// put stores an upload (XEP-0363 §6): the token must match the URL, be
// unexpired, and the body must have exactly the slot's size and type.
func (u *Upload) put(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("name")
	if !validID(id) {
		http.Error(w, "no such slot", http.StatusNotFound)
		return
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		http.Error(w, "this upload needs the Authorization header of its slot", http.StatusUnauthorized)
		return
	}
	sl, err := verify(u.key, u.h.Name(), id, name, strings.TrimSpace(token))
	if err != nil {
		http.Error(w, "the token is not valid for this URL", http.StatusForbidden)
		return
	}
	if u.now().Unix() >= sl.Expires {
		http.Error(w, "the upload slot has expired; request a new one", http.StatusForbidden)
		return
	}
	if r.ContentLength >= 0 && r.ContentLength != sl.Size {
		if r.ContentLength > sl.Size {
			http.Error(w, "the body is larger than the slot", http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "Content-Length does not match the slot's size", http.StatusBadRequest)
		}
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && sl.Type != "application/octet-stream" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != sl.Type {
			http.Error(w, "Content-Type does not match the slot's", http.StatusUnsupportedMediaType)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), module.StoreTimeout)
	defer cancel()
	if _, err := u.fs.meta(ctx, id); err == nil {
		http.Error(w, "this slot was already used", http.StatusConflict)
		return
	} else if !errors.Is(err, storage.ErrNotFound) {
		u.internal(w, "reading upload metadata", err)
		return
	}
	if e, refuse := u.overQuota(ctx, sl.Owner, sl.Size); refuse {
		http.Error(w, e.Text, http.StatusInsufficientStorage)
		return
	}
	cancel()

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // the answer comes after the whole body
	if err := u.receive(r, rc, id, sl.Size); err != nil {
		var tooLarge *tooLargeError
		switch {
		case errors.As(err, &tooLarge):
			http.Error(w, "the body is larger than the slot", http.StatusRequestEntityTooLarge)
		case errors.Is(err, os.ErrExist):
			http.Error(w, "this slot was already used", http.StatusConflict)
		case errors.Is(err, io.ErrUnexpectedEOF):
			http.Error(w, "the body is shorter than the slot's size", http.StatusBadRequest)
		default:
			u.h.Logger().Debug("upload failed", "id", id, "err", err)
			http.Error(w, "upload failed", http.StatusBadRequest)
		}
		return
	}
	ctx, cancel = context.WithTimeout(context.Background(), module.StoreTimeout)
	defer cancel()
	m := fileMeta{Owner: sl.Owner, Name: name, Size: sl.Size, Type: sl.Type, Created: u.now().UTC()}
	if err := u.fs.commit(ctx, id, m); err != nil {
		_ = os.Remove(u.fs.path(id))
		u.internal(w, "storing upload metadata", err)
		return
	}
	u.h.Logger().Debug("file uploaded", "id", id, "user", sl.Owner, "size", sl.Size)
	_ = rc.SetWriteDeadline(time.Now().Add(ioIdle))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, "created\n")
}

type tooLargeError struct{}

func (*tooLargeError) Error() string { return "body larger than the slot" }

// receive streams the body into a temporary file and links it into place;
// os.ErrExist if another upload of the same slot won.
func (u *Upload) receive(r *http.Request, rc *http.ResponseController, id string, size int64) error {
	if err := os.MkdirAll(u.fs.tmpDir(), 0o750); err != nil {
		return err
	}
	final := u.fs.path(id)
	if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(u.fs.tmpDir(), id+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	body := &idleReader{r: r.Body, rc: rc}
	n, err := io.Copy(tmp, io.LimitReader(body, size+1))
	if err == nil {
		switch {
		case n > size:
			err = &tooLargeError{}
		case n < size:
			err = io.ErrUnexpectedEOF
		}
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// Link, not rename: it fails if the file exists, so a slot is used once.
	return os.Link(tmp.Name(), final)
}

// idleReader extends the request's read deadline before every read, so
// a large upload may take as long as it keeps moving.
type idleReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (i *idleReader) Read(p []byte) (int, error) {
	_ = i.rc.SetReadDeadline(time.Now().Add(ioIdle))
	return i.r.Read(p)
}

// idleWriter extends the response's write deadline before every write.
type idleWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (i *idleWriter) Write(p []byte) (int, error) {
	_ = i.rc.SetWriteDeadline(time.Now().Add(ioIdle))
	return i.ResponseWriter.Write(p)
}

// inlineTypes are shown by browsers in place; others are downloaded.
var inlineTypes = []string{"image/", "audio/", "video/", "text/plain"}

// get serves a file with its content type, ranges and conditional requests.
func (u *Upload) get(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("name")
	if !validID(id) {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), module.StoreTimeout)
	m, err := u.fs.meta(ctx, id)
	cancel()
	if errors.Is(err, storage.ErrNotFound) || err == nil && (m.Name != name || u.fs.expired(m.Created, u.now())) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		u.internal(w, "reading upload metadata", err)
		return
	}
	f, err := os.Open(u.fs.path(id))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	h := w.Header()
	ctype := m.Type
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	// XEP-0363 §8: keep uploaded content from running in the server's origin.
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	disposition := "attachment"
	for _, t := range inlineTypes {
		if strings.HasPrefix(ctype, t) {
			disposition = "inline"
		}
	}
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": m.Name}))
	if u.fs.expire > 0 {
		left := time.Until(m.Created.Add(u.fs.expire))
		h.Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(max(left, 0)/time.Second), 10)+", immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	rc := http.NewResponseController(w)
	http.ServeContent(&idleWriter{ResponseWriter: w, rc: rc}, r, m.Name, m.Created, f)
}

func (u *Upload) internal(w http.ResponseWriter, what string, err error) {
	u.h.Logger().Error(what+" failed", "err", err)
	http.Error(w, "internal server error", http.StatusInternalServerError)
}
