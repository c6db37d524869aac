package metrics

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/metronome-xmpp/metronome/storage"
)

// MeasureDriver wraps d so that every store call is timed into
// StorageDuration (by kind and read/write) and failures are counted in
// StorageErrors. The wrapper keeps the optional storage.BulkSetter of
// KeyVal stores.
func MeasureDriver(d storage.Driver) storage.Driver { return &measured{d} }

type measured struct{ d storage.Driver }

type op struct {
	h    *Histogram
	errs *Counter
}

func newOp(kind, name string) op {
	return op{StorageDuration.Histogram(kind, name), StorageErrors.Counter(kind, name)}
}

var (
	kvRead, kvWrite   = newOp("keyval", "read"), newOp("keyval", "write")
	mapRead, mapWrite = newOp("map", "read"), newOp("map", "write")
	arRead, arWrite   = newOp("archive", "read"), newOp("archive", "write")
)

func (o op) done(start time.Time, err error) {
	o.h.Observe(time.Since(start))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		o.errs.Inc()
	}
}

func (m *measured) KeyVal(host, store string) storage.KeyVal {
	kv := m.d.KeyVal(host, store)
	if bs, ok := kv.(storage.BulkSetter); ok {
		return &bulkKV{mkv{kv}, bs}
	}
	return &mkv{kv}
}

func (m *measured) Map(host, store string) storage.Map { return &mmap{m.d.Map(host, store)} }

func (m *measured) Archive(host, store string) storage.Archive {
	return &marchive{m.d.Archive(host, store)}
}

func (m *measured) Close() error { return m.d.Close() }

type mkv struct{ s storage.KeyVal }

func (k *mkv) Get(ctx context.Context, user string) ([]byte, error) {
	t := time.Now()
	v, err := k.s.Get(ctx, user)
	kvRead.done(t, err)
	return v, err
}

func (k *mkv) Set(ctx context.Context, user string, value []byte) error {
	t := time.Now()
	err := k.s.Set(ctx, user, value)
	kvWrite.done(t, err)
	return err
}

func (k *mkv) Delete(ctx context.Context, user string) error {
	t := time.Now()
	err := k.s.Delete(ctx, user)
	kvWrite.done(t, err)
	return err
}

func (k *mkv) Users(ctx context.Context) iter.Seq2[string, error] { return k.s.Users(ctx) }

type bulkKV struct {
	mkv
	bs storage.BulkSetter
}

func (k *bulkKV) SetMany(ctx context.Context, values map[string][]byte) error {
	t := time.Now()
	err := k.bs.SetMany(ctx, values)
	kvWrite.done(t, err)
	return err
}

type mmap struct{ s storage.Map }

func (m *mmap) Get(ctx context.Context, user, key string) ([]byte, error) {
	t := time.Now()
	v, err := m.s.Get(ctx, user, key)
	mapRead.done(t, err)
	return v, err
}

func (m *mmap) Set(ctx context.Context, user, key string, value []byte) error {
	t := time.Now()
	err := m.s.Set(ctx, user, key, value)
	mapWrite.done(t, err)
	return err
}

func (m *mmap) Delete(ctx context.Context, user, key string) error {
	t := time.Now()
	err := m.s.Delete(ctx, user, key)
	mapWrite.done(t, err)
	return err
}

func (m *mmap) SetKeys(ctx context.Context, user string, kv map[string][]byte) error {
	t := time.Now()
	err := m.s.SetKeys(ctx, user, kv)
	mapWrite.done(t, err)
	return err
}

func (m *mmap) All(ctx context.Context, user string) (map[string][]byte, error) {
	t := time.Now()
	v, err := m.s.All(ctx, user)
	mapRead.done(t, err)
	return v, err
}

func (m *mmap) GetAll(ctx context.Context, key string) (map[string][]byte, error) {
	t := time.Now()
	v, err := m.s.GetAll(ctx, key)
	mapRead.done(t, err)
	return v, err
}

func (m *mmap) DeleteAll(ctx context.Context, key string) error {
	t := time.Now()
	err := m.s.DeleteAll(ctx, key)
	mapWrite.done(t, err)
	return err
}

func (m *mmap) DeleteUser(ctx context.Context, user string) error {
	t := time.Now()
	err := m.s.DeleteUser(ctx, user)
	mapWrite.done(t, err)
	return err
}

type marchive struct{ s storage.Archive }

func (a *marchive) Append(ctx context.Context, user string, item storage.Item) (string, error) {
	t := time.Now()
	id, err := a.s.Append(ctx, user, item)
	arWrite.done(t, err)
	return id, err
}

func (a *marchive) Find(ctx context.Context, user string, q storage.Query) ([]storage.Item, int, error) {
	t := time.Now()
	items, n, err := a.s.Find(ctx, user, q)
	arRead.done(t, err)
	return items, n, err
}

func (a *marchive) Get(ctx context.Context, user, id string) (storage.Item, error) {
	t := time.Now()
	it, err := a.s.Get(ctx, user, id)
	arRead.done(t, err)
	return it, err
}

func (a *marchive) Set(ctx context.Context, user, id string, item storage.Item) error {
	t := time.Now()
	err := a.s.Set(ctx, user, id, item)
	arWrite.done(t, err)
	return err
}

func (a *marchive) Delete(ctx context.Context, user string, q storage.Query) (int, error) {
	t := time.Now()
	n, err := a.s.Delete(ctx, user, q)
	arWrite.done(t, err)
	return n, err
}

func (a *marchive) DeleteAll(ctx context.Context, q storage.Query) (int, error) {
	t := time.Now()
	n, err := a.s.DeleteAll(ctx, q)
	arWrite.done(t, err)
	return n, err
}
