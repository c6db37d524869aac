package httpupload

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/metronome-xmpp/metronome/storage"
)

// Stores of the module (per host).
const (
	// storeFiles is a keyval store: file id → fileMeta; user "" holds the
	// signing key.
	storeFiles = "http_upload_files"
	// storeUsers is a map store: user → file id → userEntry (quota, deletion).
	storeUsers = "http_upload_users"
)

// fileMeta describes one stored file.
type fileMeta struct {
	Owner   string    `json:"owner"`
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	Type    string    `json:"type"`
	Created time.Time `json:"created"`
}

// userEntry is the per-user index entry of a file.
type userEntry struct {
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
}

// fileStore keeps files on disk under dir (one folder per host) and their
// metadata in storage.
type fileStore struct {
	files  storage.KeyVal
	users  storage.Map
	dir    string
	expire time.Duration // 0 = never
}

func newFileStore(files storage.KeyVal, users storage.Map, dir string, expire time.Duration) *fileStore {
	return &fileStore{files: files, users: users, dir: dir, expire: expire}
}

// path is where file id lives: <dir>/<first two characters>/<id>.
func (f *fileStore) path(id string) string { return filepath.Join(f.dir, id[:2], id) }

func (f *fileStore) tmpDir() string { return filepath.Join(f.dir, "tmp") }

// signingKey returns the installation's key, creating it on first use.
func (f *fileStore) signingKey(ctx context.Context) ([]byte, error) {
	k, err := f.files.Get(ctx, "")
	if err == nil && len(k) == 32 {
		return k, nil
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("reading the signing key: %w", err)
	}
	k = make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := f.files.Set(ctx, "", k); err != nil {
		return nil, fmt.Errorf("storing the signing key: %w", err)
	}
	return k, nil
}

// meta returns a file's metadata; storage.ErrNotFound if there is none.
func (f *fileStore) meta(ctx context.Context, id string) (fileMeta, error) {
	var m fileMeta
	b, err := f.files.Get(ctx, id)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("file %s: %w", id, err)
	}
	return m, nil
}

// expired reports whether a file created at created is past retention at now.
func (f *fileStore) expired(created, now time.Time) bool {
	return f.expire > 0 && !now.Before(created.Add(f.expire))
}

// usage returns the bytes user has stored and when the oldest file was created.
func (f *fileStore) usage(ctx context.Context, user string) (int64, time.Time, error) {
	all, err := f.users.All(ctx, user)
	if err != nil {
		return 0, time.Time{}, err
	}
	var used int64
	var oldest time.Time
	for _, b := range all {
		var e userEntry
		if json.Unmarshal(b, &e) != nil {
			continue
		}
		used += e.Size
		if oldest.IsZero() || e.Created.Before(oldest) {
			oldest = e.Created
		}
	}
	return used, oldest, nil
}

// commit records a completed upload.
func (f *fileStore) commit(ctx context.Context, id string, m fileMeta) error {
	b, _ := json.Marshal(m)
	ub, _ := json.Marshal(userEntry{Size: m.Size, Created: m.Created})
	if err := f.users.Set(ctx, m.Owner, id, ub); err != nil {
		return err
	}
	if err := f.files.Set(ctx, id, b); err != nil {
		_ = f.users.Delete(ctx, m.Owner, id)
		return err
	}
	return nil
}

// remove deletes a file and its metadata.
func (f *fileStore) remove(ctx context.Context, id, owner string) error {
	if err := os.Remove(f.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if owner != "" {
		if err := f.users.Delete(ctx, owner, id); err != nil {
			return err
		}
	}
	return f.files.Delete(ctx, id)
}

// deleteUser deletes every file of user.
func (f *fileStore) deleteUser(ctx context.Context, user string) error {
	all, err := f.users.All(ctx, user)
	if err != nil {
		return err
	}
	var errs []error
	for id := range all {
		if validID(id) {
			errs = append(errs, f.remove(ctx, id, user))
		}
	}
	errs = append(errs, f.users.DeleteUser(ctx, user))
	return errors.Join(errs...)
}

// purge deletes the files past retention at now, and temporary files of
// uploads abandoned for longer than grace. It returns how many files it
// deleted.
func (f *fileStore) purge(ctx context.Context, now time.Time, grace time.Duration) (int, error) {
	n := 0
	var errs []error
	if f.expire > 0 {
		var expired []string
		for id, err := range f.files.Users(ctx) {
			if err != nil {
				return n, err
			}
			if validID(id) {
				expired = append(expired, id)
			}
		}
		for _, id := range expired {
			m, err := f.meta(ctx, id)
			if err != nil {
				if !errors.Is(err, storage.ErrNotFound) {
					errs = append(errs, err)
				}
				continue
			}
			if !f.expired(m.Created, now) {
				continue
			}
			if err := f.remove(ctx, id, m.Owner); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	entries, err := os.ReadDir(f.tmpDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > grace+time.Hour {
			_ = os.Remove(filepath.Join(f.tmpDir(), e.Name()))
		}
	}
	return n, errors.Join(errs...)
}
