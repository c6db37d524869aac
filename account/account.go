// Package account is the store of local user accounts of one host, kept in a
// storage.KeyVal (one record per user, keyed by the canonical localpart).
//
// Passwords are never stored: a record holds, for each configured hash
// (SHA-1, SHA-256, SHA-512), the SCRAM salted keys of RFC 5802 (salt,
// iteration count, StoredKey, ServerKey), so SCRAM logins need no key
// derivation at all and PLAIN logins derive one key. A record is JSON:
//
//	{"v":1,
//	 "scram":{"SHA-256":{"salt":"<b64>","iter":4096,"stored":"<b64>","server":"<b64>"}, ...},
//	 "created":"2006-01-02T15:04:05Z",
//	 "locked":false}
//
// Manager implements sasl.Backend. Mutations are serialized within one
// Manager; KeyVal offers no compare-and-set, so two Managers (or processes)
// creating the same user at the same time are not protected from each other.
package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/sasl"
)

// Errors.
var (
	ErrExists   = errors.New("account: already exists")
	ErrNotFound = errors.New("account: not found")
	// ErrLocked is returned for a locked account. It wraps
	// sasl.ErrDisabled, so package sasl reports account-disabled.
	ErrLocked = fmt.Errorf("account: locked (%w)", sasl.ErrDisabled)
	// ErrInvalidUser is returned for a user name that is not a canonical
	// localpart (see sasl.PrepUsername).
	ErrInvalidUser = errors.New("account: invalid user name")
	// ErrInvalidPassword is returned for a password the PRECIS
	// OpaqueString profile rejects (e.g. empty).
	ErrInvalidPassword = errors.New("account: invalid password")
)

const (
	// DefaultIterations is the default and minimum PBKDF2 iteration count
	// (RFC 7677 §4 recommends at least 4096).
	DefaultIterations = 4096
	// saltLen is the length of generated salts.
	saltLen = 16
	// recordVersion is the record format version.
	recordVersion = 1
	// bulkChunk is the number of records per SetMany call.
	bulkChunk = 1000
)

// Options configure a Manager.
type Options struct {
	// Iterations is the PBKDF2 iteration count for new keys; 0 means
	// DefaultIterations, and smaller values are raised to it.
	Iterations int
	// Hashes lists the hashes to store keys for; empty means SHA-1,
	// SHA-256 and SHA-512. Only the listed SCRAM-* mechanisms can be used
	// by accounts created or updated with them.
	Hashes []sasl.Hash
}

// Manager manages the accounts of one host.
type Manager struct {
	kv     storage.KeyVal
	iter   int
	hashes []sasl.Hash
	now    func() time.Time

	mu sync.Mutex // serializes read-modify-write sequences
}

// New returns a Manager over kv. Unknown hashes in opts.Hashes are ignored.
func New(kv storage.KeyVal, opts Options) *Manager {
	m := &Manager{kv: kv, iter: max(opts.Iterations, DefaultIterations), now: time.Now}
	for _, h := range opts.Hashes {
		if h.New() != nil && !slices.Contains(m.hashes, h) {
			m.hashes = append(m.hashes, h)
		}
	}
	if len(m.hashes) == 0 {
		m.hashes = []sasl.Hash{sasl.SHA1, sasl.SHA256, sasl.SHA512}
	}
	return m
}

var _ sasl.Backend = (*Manager)(nil)

// record is the stored form of an account.
type record struct {
	V       int                    `json:"v"`
	SCRAM   map[sasl.Hash]scramKey `json:"scram"`
	Created string                 `json:"created"`
	Locked  bool                   `json:"locked"`
}

type scramKey struct {
	Salt   []byte `json:"salt"`
	Iter   int    `json:"iter"`
	Stored []byte `json:"stored"`
	Server []byte `json:"server"`
}

func (k scramKey) credentials() sasl.Credentials {
	return sasl.Credentials{Salt: k.Salt, Iter: k.Iter, StoredKey: k.Stored, ServerKey: k.Server}
}

// checkUser validates a canonical localpart.
func checkUser(user string) error {
	c, err := sasl.PrepUsername(user)
	if err != nil || c != user {
		return fmt.Errorf("%w: %q", ErrInvalidUser, user)
	}
	return nil
}

// deriveKeys derives the keys of password for every configured hash, each
// with its own random salt.
func (m *Manager) deriveKeys(password string) (map[sasl.Hash]scramKey, error) {
	if _, err := sasl.PrepPassword(password); err != nil {
		return nil, ErrInvalidPassword
	}
	keys := make(map[sasl.Hash]scramKey, len(m.hashes))
	salts := make([]byte, saltLen*len(m.hashes))
	rand.Read(salts)
	for i, h := range m.hashes {
		c, err := sasl.Derive(h, password, salts[i*saltLen:(i+1)*saltLen], m.iter)
		if err != nil {
			return nil, err
		}
		keys[h] = scramKey{Salt: c.Salt, Iter: c.Iter, Stored: c.StoredKey, Server: c.ServerKey}
	}
	return keys, nil
}

func (m *Manager) newRecord(password string) ([]byte, error) {
	keys, err := m.deriveKeys(password)
	if err != nil {
		return nil, err
	}
	return json.Marshal(record{
		V:       recordVersion,
		SCRAM:   keys,
		Created: m.now().UTC().Format(time.RFC3339),
	})
}

// load reads a user's record; ErrNotFound if absent.
func (m *Manager) load(ctx context.Context, user string) (*record, error) {
	if user == "" {
		return nil, ErrNotFound // the host's own entry, never an account
	}
	b, err := m.kv.Get(ctx, user)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("account: corrupt record for %q: %w", user, err)
	}
	if r.V != recordVersion {
		return nil, fmt.Errorf("account: record for %q has unknown version %d", user, r.V)
	}
	return &r, nil
}

func (m *Manager) store(ctx context.Context, user string, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return m.kv.Set(ctx, user, b)
}

// Create creates an account; user must be a canonical localpart. It
// returns ErrExists if the account exists.
func (m *Manager) Create(ctx context.Context, user, password string) error {
	if err := checkUser(user); err != nil {
		return err
	}
	b, err := m.newRecord(password) // the expensive part, outside the lock
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.kv.Get(ctx, user); err == nil {
		return ErrExists
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return m.kv.Set(ctx, user, b)
}

// CreateMany creates many accounts (user → password), deriving keys on all
// CPUs in parallel and writing through storage.BulkSetter.SetMany (in
// transactions of up to 1000 accounts) when the KeyVal implements it. Every name and password is validated before anything is
// derived or written. Accounts that already exist are left untouched: they
// are not counted in created and make the returned error wrap ErrExists
// (the others are still created). On a storage or context error, created
// counts the accounts written before it.
func (m *Manager) CreateMany(ctx context.Context, accounts map[string]string) (created int, err error) {
	users := make([]string, 0, len(accounts))
	for u, pw := range accounts {
		if err := checkUser(u); err != nil {
			return 0, err
		}
		if _, err := sasl.PrepPassword(pw); err != nil {
			return 0, fmt.Errorf("%w (user %q)", ErrInvalidPassword, u)
		}
		users = append(users, u)
	}
	slices.Sort(users)

	// Skip existing accounts before the expensive part; checked again
	// under the lock below.
	existing, err := m.existing(ctx, users)
	if err != nil {
		return 0, err
	}
	todo := slices.DeleteFunc(slices.Clone(users), func(u string) bool { return existing[u] })
	records, err := m.deriveParallel(ctx, todo, accounts)
	if err != nil {
		return 0, err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	again, err := m.existing(ctx, todo)
	if err != nil {
		return 0, err
	}
	values := make(map[string][]byte, len(todo))
	for i, u := range todo {
		if again[u] {
			existing[u] = true
			continue
		}
		values[u] = records[i]
	}
	created, err = m.write(ctx, values)
	if err != nil {
		return created, err
	}
	if n := len(existing); n > 0 {
		return created, fmt.Errorf("%w: %d of %d accounts", ErrExists, n, len(users))
	}
	return created, nil
}

// existing returns which of users exist. For long lists it scans the store
// once instead of looking each user up.
func (m *Manager) existing(ctx context.Context, users []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(users) > 64 {
		want := make(map[string]bool, len(users))
		for _, u := range users {
			want[u] = true
		}
		for u, err := range m.kv.Users(ctx) {
			if err != nil {
				return nil, err
			}
			if want[u] {
				out[u] = true
			}
		}
		return out, nil
	}
	for _, u := range users {
		_, err := m.kv.Get(ctx, u)
		switch {
		case err == nil:
			out[u] = true
		case !errors.Is(err, storage.ErrNotFound):
			return nil, err
		}
	}
	return out, nil
}

// deriveParallel builds the records of users on GOMAXPROCS goroutines.
func (m *Manager) deriveParallel(ctx context.Context, users []string, passwords map[string]string) ([][]byte, error) {
	records := make([][]byte, len(users))
	workers := min(runtime.GOMAXPROCS(0), len(users))
	var (
		wg       sync.WaitGroup
		next     = make(chan int)
		errOnce  sync.Once
		firstErr error
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				b, err := m.newRecord(passwords[users[i]])
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				records[i] = b
			}
		})
	}
	for i := range users {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return records, firstErr
}

// write stores values, in chunks through SetMany when available.
func (m *Manager) write(ctx context.Context, values map[string][]byte) (int, error) {
	bs, bulk := m.kv.(storage.BulkSetter)
	if !bulk {
		n := 0
		for _, u := range slices.Sorted(maps.Keys(values)) {
			if err := m.kv.Set(ctx, u, values[u]); err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
	n := 0
	chunk := make(map[string][]byte, min(bulkChunk, len(values)))
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := bs.SetMany(ctx, chunk); err != nil {
			return err
		}
		n += len(chunk)
		chunk = make(map[string][]byte, bulkChunk)
		return nil
	}
	for _, u := range slices.Sorted(maps.Keys(values)) {
		chunk[u] = values[u]
		if len(chunk) == bulkChunk {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	return n, flush()
}

// SetPassword replaces the keys of an existing account (ErrNotFound if
// absent); its creation time and lock are kept.
func (m *Manager) SetPassword(ctx context.Context, user, password string) error {
	keys, err := m.deriveKeys(password)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.load(ctx, user)
	if err != nil {
		return err
	}
	r.SCRAM = keys
	return m.store(ctx, user, r)
}

// Delete removes an account; ErrNotFound if absent.
func (m *Manager) Delete(ctx context.Context, user string) error {
	if user == "" {
		return ErrNotFound
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.kv.Get(ctx, user); errors.Is(err, storage.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	return m.kv.Delete(ctx, user)
}

// Exists reports whether an account exists.
func (m *Manager) Exists(ctx context.Context, user string) (bool, error) {
	if user == "" {
		return false, nil // the host's own entry
	}
	_, err := m.kv.Get(ctx, user)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	}
	return false, err
}

// Users returns every account name, sorted.
func (m *Manager) Users(ctx context.Context) ([]string, error) {
	var out []string
	for u, err := range m.kv.Users(ctx) {
		if err != nil {
			return nil, err
		}
		if u != "" { // "" is the host's own entry, never an account
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out, nil
}

// SetLocked locks or unlocks an account (ErrNotFound if absent). A locked
// account cannot log in (sasl reports account-disabled).
func (m *Manager) SetLocked(ctx context.Context, user string, locked bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.load(ctx, user)
	if err != nil {
		return err
	}
	if r.Locked == locked {
		return nil
	}
	r.Locked = locked
	return m.store(ctx, user, r)
}

// Locked reports whether an account is locked.
func (m *Manager) Locked(ctx context.Context, user string) (bool, error) {
	r, err := m.load(ctx, user)
	if err != nil {
		return false, err
	}
	return r.Locked, nil
}

// Created returns the creation time of an account.
func (m *Manager) Created(ctx context.Context, user string) (time.Time, error) {
	r, err := m.load(ctx, user)
	if err != nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339, r.Created)
}

// Credentials implements sasl.Backend. An unknown user, or one without keys
// for h, gives sasl.ErrNoUser (with the configured iteration count as the
// fake-exchange hint). A locked account gives its credentials together with
// ErrLocked, so that sasl only reveals the lock to a client that knows the
// password.
func (m *Manager) Credentials(ctx context.Context, user string, h sasl.Hash) (sasl.Credentials, error) {
	r, err := m.load(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return sasl.Credentials{Iter: m.iter}, sasl.ErrNoUser
	}
	if err != nil {
		return sasl.Credentials{}, err
	}
	k, ok := r.SCRAM[h]
	if !ok {
		return sasl.Credentials{Iter: m.iter}, sasl.ErrNoUser
	}
	if r.Locked {
		return k.credentials(), ErrLocked
	}
	return k.credentials(), nil
}

// dummySalt is used to spend the time of a real check on unknown users.
var dummySalt = make([]byte, saltLen)

// CheckPassword implements sasl.Backend: it derives the key of password
// with the stored salt of one hash (SHA-256 when stored) and compares. An
// unknown user gives (false, nil) after the same amount of work. A locked
// account gives ErrLocked, but only when the password is right.
func (m *Manager) CheckPassword(ctx context.Context, user, password string) (bool, error) {
	r, err := m.load(ctx, user)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	h, k, found := sasl.SHA256, scramKey{}, false
	if r != nil {
		if k, found = r.SCRAM[sasl.SHA256]; !found {
			for _, hh := range sasl.Hashes {
				if k, found = r.SCRAM[hh]; found {
					h = hh
					break
				}
			}
		}
	}
	if !found {
		sasl.Derive(sasl.SHA256, password, dummySalt, m.iter)
		return false, nil
	}
	c, err := sasl.Derive(h, password, k.Salt, k.Iter)
	if err != nil {
		return false, nil // a password OpaqueString rejects cannot match
	}
	if subtle.ConstantTimeCompare(c.StoredKey, k.Stored)&subtle.ConstantTimeCompare(c.ServerKey, k.Server) != 1 {
		return false, nil
	}
	if r.Locked {
		return false, ErrLocked
	}
	return true, nil
}
