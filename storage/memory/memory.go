// Package memory is an in-memory storage.Driver for tests and throwaway
// servers. Everything is kept in maps behind one mutex and lost on exit.
//
// It follows the same rules as the SQL drivers (see storage/storagetest):
// KeyVal and Map stores of the same (host, store) share rows, the keyval
// value being map key ""; archive order is append order; values are copied
// in and out, so callers may reuse their slices.
package memory

import (
	"cmp"
	"context"
	"errors"
	"iter"
	"slices"
	"sort"
	"sync"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/internal/driverutil"
)

// errClosed is returned by every operation after Close.
var errClosed = errors.New("memory: driver is closed")

type scope struct{ host, store string }

// Driver is an in-memory storage.Driver. The zero value is not usable; use New.
type Driver struct {
	mu     sync.RWMutex
	closed bool
	kv     map[scope]map[string]map[string][]byte // user → key → value
	arch   map[scope]map[string]*userArchive
	seq    int64 // archive order, shared by every archive like sort_id
}

type entry struct {
	seq  int64
	item storage.Item
}

type userArchive struct {
	items []*entry // ascending seq
	byID  map[string]*entry
}

var _ storage.Driver = (*Driver)(nil)

// New returns an empty driver.
func New() *Driver {
	return &Driver{
		kv:   map[scope]map[string]map[string][]byte{},
		arch: map[scope]map[string]*userArchive{},
	}
}

// Close drops all data; later calls fail.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.kv, d.arch = nil, nil
	return nil
}

func (d *Driver) rlock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return errClosed
	}
	return nil
}

func (d *Driver) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errClosed
	}
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return slices.Clone(b)
}

// ---- key/value rows shared by KeyVal and Map ----

// getKV returns the value under d.mu (read).
func (d *Driver) getKV(s scope, user, key string) ([]byte, bool) {
	v, ok := d.kv[s][user][key]
	return v, ok
}

// setKV sets (value != nil) or deletes (value == nil) under d.mu (write).
func (d *Driver) setKV(s scope, user, key string, value []byte) {
	users := d.kv[s]
	if value == nil {
		if keys := users[user]; keys != nil {
			delete(keys, key)
			if len(keys) == 0 {
				delete(users, user)
			}
		}
		return
	}
	if users == nil {
		users = map[string]map[string][]byte{}
		d.kv[s] = users
	}
	keys := users[user]
	if keys == nil {
		keys = map[string][]byte{}
		users[user] = keys
	}
	keys[key] = clone(value)
}

// KeyVal opens the keyval store store of host.
func (d *Driver) KeyVal(host, store string) storage.KeyVal {
	return &keyVal{d: d, s: scope{host, store}}
}

type keyVal struct {
	d *Driver
	s scope
}

var _ storage.BulkSetter = (*keyVal)(nil)

func (k *keyVal) Get(ctx context.Context, user string) ([]byte, error) {
	if err := k.d.rlock(ctx); err != nil {
		return nil, err
	}
	defer k.d.mu.RUnlock()
	v, ok := k.d.getKV(k.s, user, "")
	if !ok {
		return nil, storage.ErrNotFound
	}
	return clone(v), nil
}

func (k *keyVal) Set(ctx context.Context, user string, value []byte) error {
	if err := k.d.lock(ctx); err != nil {
		return err
	}
	defer k.d.mu.Unlock()
	k.d.setKV(k.s, user, "", value)
	return nil
}

func (k *keyVal) SetMany(ctx context.Context, values map[string][]byte) error {
	if err := k.d.lock(ctx); err != nil {
		return err
	}
	defer k.d.mu.Unlock()
	for user, v := range values {
		k.d.setKV(k.s, user, "", v)
	}
	return nil
}

func (k *keyVal) Delete(ctx context.Context, user string) error {
	return k.Set(ctx, user, nil)
}

// Users yields a snapshot taken when iteration starts, so the loop body may
// modify the store.
func (k *keyVal) Users(ctx context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if err := k.d.rlock(ctx); err != nil {
			yield("", err)
			return
		}
		var users []string
		for u, keys := range k.d.kv[k.s] {
			if _, ok := keys[""]; ok {
				users = append(users, u)
			}
		}
		k.d.mu.RUnlock()
		sort.Strings(users)
		for _, u := range users {
			if err := ctx.Err(); err != nil {
				yield("", err)
				return
			}
			if !yield(u, nil) {
				return
			}
		}
	}
}

// Map opens the map store store of host.
func (d *Driver) Map(host, store string) storage.Map {
	return &mapStore{d: d, s: scope{host, store}}
}

type mapStore struct {
	d *Driver
	s scope
}

func (m *mapStore) Get(ctx context.Context, user, key string) ([]byte, error) {
	if err := m.d.rlock(ctx); err != nil {
		return nil, err
	}
	defer m.d.mu.RUnlock()
	v, ok := m.d.getKV(m.s, user, key)
	if !ok {
		return nil, storage.ErrNotFound
	}
	return clone(v), nil
}

func (m *mapStore) Set(ctx context.Context, user, key string, value []byte) error {
	if err := m.d.lock(ctx); err != nil {
		return err
	}
	defer m.d.mu.Unlock()
	m.d.setKV(m.s, user, key, value)
	return nil
}

func (m *mapStore) Delete(ctx context.Context, user, key string) error {
	return m.Set(ctx, user, key, nil)
}

func (m *mapStore) SetKeys(ctx context.Context, user string, kv map[string][]byte) error {
	if err := m.d.lock(ctx); err != nil {
		return err
	}
	defer m.d.mu.Unlock()
	for key, v := range kv {
		m.d.setKV(m.s, user, key, v)
	}
	return nil
}

func (m *mapStore) All(ctx context.Context, user string) (map[string][]byte, error) {
	if err := m.d.rlock(ctx); err != nil {
		return nil, err
	}
	defer m.d.mu.RUnlock()
	out := map[string][]byte{}
	for key, v := range m.d.kv[m.s][user] {
		out[key] = clone(v)
	}
	return out, nil
}

func (m *mapStore) GetAll(ctx context.Context, key string) (map[string][]byte, error) {
	if err := m.d.rlock(ctx); err != nil {
		return nil, err
	}
	defer m.d.mu.RUnlock()
	out := map[string][]byte{}
	for user, keys := range m.d.kv[m.s] {
		if v, ok := keys[key]; ok {
			out[user] = clone(v)
		}
	}
	return out, nil
}

func (m *mapStore) DeleteAll(ctx context.Context, key string) error {
	if err := m.d.lock(ctx); err != nil {
		return err
	}
	defer m.d.mu.Unlock()
	for user := range m.d.kv[m.s] {
		m.d.setKV(m.s, user, key, nil)
	}
	return nil
}

func (m *mapStore) DeleteUser(ctx context.Context, user string) error {
	if err := m.d.lock(ctx); err != nil {
		return err
	}
	defer m.d.mu.Unlock()
	delete(m.d.kv[m.s], user)
	return nil
}

// ---- archive ----

// Archive opens the archive store store of host.
func (d *Driver) Archive(host, store string) storage.Archive {
	return &archive{d: d, s: scope{host, store}}
}

type archive struct {
	d *Driver
	s scope
}

func copyItem(it storage.Item) storage.Item {
	it.Value = clone(it.Value)
	return it
}

func (a *archive) user(user string, create bool) *userArchive {
	users := a.d.arch[a.s]
	if users == nil {
		if !create {
			return nil
		}
		users = map[string]*userArchive{}
		a.d.arch[a.s] = users
	}
	ua := users[user]
	if ua == nil && create {
		ua = &userArchive{byID: map[string]*entry{}}
		users[user] = ua
	}
	return ua
}

func (a *archive) Append(ctx context.Context, user string, item storage.Item) (string, error) {
	if err := a.d.lock(ctx); err != nil {
		return "", err
	}
	defer a.d.mu.Unlock()
	return a.appendLocked(a.user(user, true), item), nil
}

// appendLocked appends item to ua; the driver's lock is held.
func (a *archive) appendLocked(ua *userArchive, item storage.Item) string {
	if item.ID == "" {
		item.ID = driverutil.NewID()
		for ua.byID[item.ID] != nil {
			item.ID = driverutil.NewID()
		}
	} else if old := ua.byID[item.ID]; old != nil {
		ua.remove(map[*entry]bool{old: true})
	}
	item.When = driverutil.When(item.When)
	a.d.seq++
	e := &entry{seq: a.d.seq, item: copyItem(item)}
	ua.items = append(ua.items, e)
	ua.byID[item.ID] = e
	return item.ID
}

// AppendMany implements storage.BulkAppender.
func (a *archive) AppendMany(ctx context.Context, user string, items []storage.Item) ([]string, error) {
	if err := a.d.lock(ctx); err != nil {
		return nil, err
	}
	defer a.d.mu.Unlock()
	ua := a.user(user, true)
	ids := make([]string, len(items))
	for i, item := range items {
		ids[i] = a.appendLocked(ua, item)
	}
	return ids, nil
}

func (ua *userArchive) remove(del map[*entry]bool) {
	ua.items = slices.DeleteFunc(ua.items, func(e *entry) bool { return del[e] })
	for e := range del {
		delete(ua.byID, e.item.ID)
	}
}

// matches applies the filters that Total counts (everything but paging).
func matches(e *entry, q storage.Query, start, end int64) bool {
	ms := driverutil.Millis(e.item.When)
	if !q.Start.IsZero() && ms < start {
		return false
	}
	if !q.End.IsZero() && ms > end {
		return false
	}
	if q.With != "" && e.item.With != q.With {
		return false
	}
	if q.IDs != nil && !slices.Contains(q.IDs, e.item.ID) {
		return false
	}
	return true
}

// query returns the entries Find would return, in Find's order, and the
// total count of matches ignoring Before/After/Limit (but not
// RangeBefore/RangeAfter).
func (ua *userArchive) query(q storage.Query) ([]*entry, int, error) {
	if err := driverutil.CheckFind(q); err != nil {
		return nil, 0, err
	}
	// seqOf resolves a cursor id to its position; def when id is empty.
	seqOf := func(id string, def int64) (int64, error) {
		if id == "" {
			return def, nil
		}
		var e *entry
		if ua != nil {
			e = ua.byID[id]
		}
		if e == nil {
			return 0, storage.ErrNotFound
		}
		return e.seq, nil
	}
	const minSeq, maxSeq = int64(-1 << 63), int64(1<<63 - 1)
	var bounds [4]int64
	for i, c := range []struct {
		id  string
		def int64
	}{{q.After, minSeq}, {q.Before, maxSeq}, {q.RangeAfter, minSeq}, {q.RangeBefore, maxSeq}} {
		v, err := seqOf(c.id, c.def)
		if err != nil {
			return nil, 0, err
		}
		bounds[i] = v
	}
	lo, hi, rlo, rhi := bounds[0], bounds[1], bounds[2], bounds[3]
	if ua == nil {
		return nil, 0, nil
	}
	start, end := driverutil.Millis(q.Start), driverutil.Millis(q.End)
	var sel []*entry
	total := 0
	for _, e := range ua.items {
		if e.seq <= rlo || e.seq >= rhi || !matches(e, q, start, end) {
			continue
		}
		total++
		if e.seq > lo && e.seq < hi {
			sel = append(sel, e)
		}
	}
	if q.Reverse {
		slices.Reverse(sel)
	}
	if q.Limit > 0 && len(sel) > q.Limit {
		sel = sel[:q.Limit]
	}
	return sel, total, nil
}

func (a *archive) Find(ctx context.Context, user string, q storage.Query) ([]storage.Item, int, error) {
	if err := a.d.rlock(ctx); err != nil {
		return nil, 0, err
	}
	defer a.d.mu.RUnlock()
	sel, total, err := a.user(user, false).query(q)
	if err != nil {
		return nil, 0, err
	}
	if !q.Total {
		total = -1
	}
	items := make([]storage.Item, len(sel))
	for i, e := range sel {
		items[i] = copyItem(e.item)
	}
	return items, total, nil
}

func (a *archive) Get(ctx context.Context, user, id string) (storage.Item, error) {
	if err := a.d.rlock(ctx); err != nil {
		return storage.Item{}, err
	}
	defer a.d.mu.RUnlock()
	ua := a.user(user, false)
	if ua == nil || ua.byID[id] == nil {
		return storage.Item{}, storage.ErrNotFound
	}
	return copyItem(ua.byID[id].item), nil
}

func (a *archive) Set(ctx context.Context, user, id string, item storage.Item) error {
	if err := a.d.lock(ctx); err != nil {
		return err
	}
	defer a.d.mu.Unlock()
	ua := a.user(user, false)
	if ua == nil || ua.byID[id] == nil {
		return storage.ErrNotFound
	}
	e := ua.byID[id]
	e.item.Type = item.Type
	e.item.Value = clone(item.Value)
	return nil
}

func (a *archive) Delete(ctx context.Context, user string, q storage.Query) (int, error) {
	if err := a.d.lock(ctx); err != nil {
		return 0, err
	}
	defer a.d.mu.Unlock()
	ua := a.user(user, false)
	sel, _, err := ua.query(q)
	if err != nil || len(sel) == 0 {
		return 0, err
	}
	if q.Truncate > 0 {
		// Keep the newest Truncate of the selection.
		slices.SortFunc(sel, func(x, y *entry) int { return cmp.Compare(y.seq, x.seq) })
		if q.Truncate >= len(sel) {
			return 0, nil
		}
		sel = sel[q.Truncate:]
	}
	del := make(map[*entry]bool, len(sel))
	for _, e := range sel {
		del[e] = true
	}
	ua.remove(del)
	return len(del), nil
}

func (a *archive) DeleteAll(ctx context.Context, q storage.Query) (int, error) {
	if err := driverutil.CheckDeleteAll(q); err != nil {
		return 0, err
	}
	if err := a.d.lock(ctx); err != nil {
		return 0, err
	}
	defer a.d.mu.Unlock()
	start, end := driverutil.Millis(q.Start), driverutil.Millis(q.End)
	n := 0
	for _, ua := range a.d.arch[a.s] {
		del := map[*entry]bool{}
		for _, e := range ua.items {
			if matches(e, q, start, end) {
				del[e] = true
			}
		}
		ua.remove(del)
		n += len(del)
	}
	return n, nil
}
