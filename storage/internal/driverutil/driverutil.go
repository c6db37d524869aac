// Package driverutil holds the pieces the storage drivers share: archive id
// generation, the millisecond time encoding, Query validation and embedded
// migration loading.
package driverutil

import (
	"crypto/rand"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/metronome-xmpp/metronome/storage"
)

// NewID returns a new random archive item id (26 base32 characters, 130
// bits of entropy).
func NewID() string { return rand.Text() }

// Millis encodes t as Unix milliseconds (floor, also before 1970).
func Millis(t time.Time) int64 { return t.UnixMilli() }

// Time decodes Unix milliseconds as a UTC time.
func Time(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// When returns the time an item is stored with: now when zero, truncated to
// the millisecond, UTC.
func When(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return Time(Millis(t))
}

// CheckFind validates q for Archive.Find and Archive.Delete.
func CheckFind(q storage.Query) error {
	if q.Limit < 0 {
		return fmt.Errorf("%w: negative Limit %d", storage.ErrInvalidQuery, q.Limit)
	}
	if q.Truncate < 0 {
		return fmt.Errorf("%w: negative Truncate %d", storage.ErrInvalidQuery, q.Truncate)
	}
	return nil
}

// CheckDeleteAll validates q for Archive.DeleteAll, which only honours the
// store-wide filters Start, End and With.
func CheckDeleteAll(q storage.Query) error {
	switch {
	case q.IDs != nil:
		return fmt.Errorf("%w: DeleteAll does not take IDs", storage.ErrInvalidQuery)
	case q.Before != "" || q.After != "" || q.RangeBefore != "" || q.RangeAfter != "":
		return fmt.Errorf("%w: DeleteAll does not take Before/After/RangeBefore/RangeAfter", storage.ErrInvalidQuery)
	case q.Limit != 0:
		return fmt.Errorf("%w: DeleteAll does not take Limit", storage.ErrInvalidQuery)
	case q.Truncate != 0:
		return fmt.Errorf("%w: DeleteAll does not take Truncate", storage.ErrInvalidQuery)
	}
	return nil
}

// Migration is one numbered schema migration.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations reads the migrations in dir of fsys: files named
// NNNN_description.sql, applied in ascending NNNN order. Versions must be
// unique and positive.
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, _ := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, v)
		}
		seen[v] = name
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}
