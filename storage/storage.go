// Package storage is the public storage API modules are written against.
// There are three store kinds, as in Prosody: KeyVal (one value per user),
// Map (user → key → value, with look-ups of one key across users) and
// Archive (append-only, time-ordered items with queries by time, peer, id
// and paging). Every store is scoped to a (host, store name) pair by the
// Driver that opens it. Values are opaque bytes; codecs live beside.
//
// Drivers: storage/memory (tests), storage/sqlite (the default) and
// storage/postgres. storage/storagetest is the conformance suite every
// driver must pass.
package storage

import (
	"context"
	"errors"
	"iter"
	"time"
)

// ErrNotFound is returned when a value does not exist.
var ErrNotFound = errors.New("storage: not found")

// KeyVal stores one value per user (user "" is the host itself).
type KeyVal interface {
	Get(ctx context.Context, user string) ([]byte, error) // ErrNotFound if absent
	Set(ctx context.Context, user string, value []byte) error
	Delete(ctx context.Context, user string) error // no error if absent
	Users(ctx context.Context) iter.Seq2[string, error]
}

// Map stores user → key → value.
type Map interface {
	Get(ctx context.Context, user, key string) ([]byte, error) // ErrNotFound if absent
	Set(ctx context.Context, user, key string, value []byte) error
	Delete(ctx context.Context, user, key string) error // no error if absent
	// SetKeys sets several keys at once, atomically; a nil value deletes the key.
	SetKeys(ctx context.Context, user string, kv map[string][]byte) error
	// All returns every key/value of a user, ordered by key.
	All(ctx context.Context, user string) (map[string][]byte, error)
	// GetAll returns key's value for every user that has it (user → value).
	GetAll(ctx context.Context, key string) (map[string][]byte, error)
	// DeleteAll removes key for every user.
	DeleteAll(ctx context.Context, key string) error
	// DeleteUser removes every key of a user.
	DeleteUser(ctx context.Context, user string) error
}

// Item is one archived value.
type Item struct {
	ID    string    // unique within (host, store, user); generated when empty on Append
	When  time.Time // stored with at least millisecond precision, UTC
	With  string    // the peer (bare JID usually); used for filtering
	Type  string    // free-form kind tag (e.g. "message")
	Value []byte
}

// Query selects archive items. Zero fields do not filter.
type Query struct {
	Start, End time.Time // inclusive bounds on When
	With       string    // exact match on With
	IDs        []string  // only these ids
	// Before and After are item ids (exclusive bounds in archive order).
	// A Before/After id that does not exist yields ErrNotFound.
	Before, After string
	// RangeAfter and RangeBefore are item ids too (exclusive bounds in
	// archive order), but they bound the result set itself, as XEP-0313's
	// after-id/before-id fields do: unlike Before/After they also restrict
	// Total. They combine with Before/After (every bound applies). An id
	// that does not exist yields ErrNotFound.
	RangeAfter, RangeBefore string
	Limit                   int  // 0 = no limit
	Reverse                 bool // newest first (Limit then keeps the newest)
	Total                   bool // compute the total count of matching items (ignoring Limit/Before/After)
	// Truncate (Delete only): keep this many newest matching items, delete the rest.
	Truncate int
}

// Archive is an append-only, ordered store of items per user.
type Archive interface {
	// Append stores item and returns its id (item.ID if set, else a new unique one).
	// A duplicate explicit id replaces the older item.
	Append(ctx context.Context, user string, item Item) (string, error)
	// Find returns matching items in archive order (or reversed), and the
	// total count when q.Total is set (-1 otherwise).
	Find(ctx context.Context, user string, q Query) ([]Item, int, error)
	Get(ctx context.Context, user, id string) (Item, error) // ErrNotFound if absent
	// Set replaces the value (and type) of an existing item, keeping its position.
	Set(ctx context.Context, user, id string, item Item) error
	// Delete removes matching items (all of the user's with a zero Query) and returns how many.
	Delete(ctx context.Context, user string, q Query) (int, error)
	// DeleteAll removes every user's items in this store matching q's time bounds.
	DeleteAll(ctx context.Context, q Query) (int, error)
}

// Driver opens stores scoped to (host, store).
type Driver interface {
	KeyVal(host, store string) KeyVal
	Map(host, store string) Map
	Archive(host, store string) Archive
	// Close releases the driver's resources.
	Close() error
}

// Stores opens the three kinds of one store name on one host.
type Stores struct {
	Host, Name string
	Driver     Driver
}

// KeyVal opens the keyval store.
func (s Stores) KeyVal() KeyVal { return s.Driver.KeyVal(s.Host, s.Name) }

// Map opens the map store.
func (s Stores) Map() Map { return s.Driver.Map(s.Host, s.Name) }

// Archive opens the archive store.
func (s Stores) Archive() Archive { return s.Driver.Archive(s.Host, s.Name) }

// ErrInvalidQuery is returned (wrapped) for a Query a method cannot honour:
// a negative Limit or Truncate, or, for Archive.DeleteAll, any field other
// than Start, End, With, Reverse and Total.
var ErrInvalidQuery = errors.New("storage: invalid query")

// BulkSetter is implemented by the KeyVal stores of drivers that can set
// many users' values in one transaction (bulk user import). values maps user
// → value; a nil value deletes that user's value. Either every change is
// applied or none is.
type BulkSetter interface {
	SetMany(ctx context.Context, values map[string][]byte) error
}

// BulkAppender is implemented by the Archive stores of drivers that can
// append many items to one user's archive in one transaction (imports,
// benchmark fixtures). The result is the same as calling Append for each
// item in order, ids included (an empty ID gets a generated one; the ids
// are returned in order); either every item is appended or none is.
type BulkAppender interface {
	AppendMany(ctx context.Context, user string, items []Item) ([]string, error)
}
