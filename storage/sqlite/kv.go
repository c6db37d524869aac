package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"

	"github.com/metronome-xmpp/metronome/storage"
)

const (
	kvGet = `SELECT value FROM kv WHERE host = ? AND "user" = ? AND store = ? AND "key" = ?`
	kvSet = `INSERT INTO kv (host, "user", store, "key", value) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (host, "user", store, "key") DO UPDATE SET value = excluded.value`
	kvDel        = `DELETE FROM kv WHERE host = ? AND "user" = ? AND store = ? AND "key" = ?`
	kvUsersFirst = `SELECT "user" FROM kv WHERE host = ? AND store = ? AND "key" = '' AND "user" >= ? ORDER BY "user" LIMIT ?`
	kvUsersNext  = `SELECT "user" FROM kv WHERE host = ? AND store = ? AND "key" = '' AND "user" > ? ORDER BY "user" LIMIT ?`
	kvAll        = `SELECT "key", value FROM kv WHERE host = ? AND "user" = ? AND store = ?`
	kvGetAll     = `SELECT "user", value FROM kv WHERE host = ? AND store = ? AND "key" = ?`
	kvDelAll     = `DELETE FROM kv WHERE host = ? AND store = ? AND "key" = ?`
	kvDelUser    = `DELETE FROM kv WHERE host = ? AND "user" = ? AND store = ?`
)

// Statements prepared at Open, so that transactions find them cached.
var (
	writerStmts = []string{kvSet, kvDel, archInsert, archReplace, archSortID, archSet}
	readerStmts = []string{kvGet, kvUsersFirst, kvUsersNext, kvAll, kvGetAll, archGet, archSortID}
)

// usersPage is how many users KeyVal.Users reads per query; no connection
// or transaction is held while the caller's loop body runs.
const usersPage = 1000

type scope struct {
	d           *Driver
	host, store string
}

func (s scope) get(ctx context.Context, user, key string) ([]byte, error) {
	var v []byte
	err := s.d.r.queryRow(ctx, nil, kvGet, s.host, user, s.store, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get: %w", err)
	}
	return nonNil(v), nil
}

// set sets or, for a nil value, deletes one row, in tx when not nil.
func (s scope) set(ctx context.Context, tx *sql.Tx, user, key string, value []byte) error {
	var err error
	switch {
	case tx == nil && value == nil:
		// A write of its own shares the group commit of archive appends
		// (one transaction and fsync for the writes that arrive together,
		// such as the last presence and last activity of users logging out).
		err = s.d.groupWrite(ctx, kvDel, s.host, user, s.store, key)
	case tx == nil:
		err = s.d.groupWrite(ctx, kvSet, s.host, user, s.store, key, value)
	case value == nil:
		_, err = s.d.w.exec(ctx, tx, kvDel, s.host, user, s.store, key)
	default:
		_, err = s.d.w.exec(ctx, tx, kvSet, s.host, user, s.store, key, value)
	}
	if err != nil {
		return fmt.Errorf("sqlite: set: %w", err)
	}
	return nil
}

// setMany sets or deletes several keys of one user, or one key of several
// users, in one transaction.
func (s scope) setMany(ctx context.Context, n int, each func(yield func(user, key string, value []byte) bool)) error {
	if n == 0 {
		return ctx.Err()
	}
	return s.d.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		each(func(user, key string, value []byte) bool {
			err = s.set(ctx, tx, user, key, value)
			return err == nil
		})
		return err
	})
}

// KeyVal opens the keyval store store of host.
func (d *Driver) KeyVal(host, store string) storage.KeyVal {
	return keyVal{scope{d, host, store}}
}

type keyVal struct{ s scope }

var _ storage.BulkSetter = keyVal{}

func (k keyVal) Get(ctx context.Context, user string) ([]byte, error) {
	return k.s.get(ctx, user, "")
}

func (k keyVal) Set(ctx context.Context, user string, value []byte) error {
	return k.s.set(ctx, nil, user, "", value)
}

func (k keyVal) Delete(ctx context.Context, user string) error {
	return k.s.set(ctx, nil, user, "", nil)
}

// SetMany sets (or, for nil values, deletes) many users' values in one
// transaction.
func (k keyVal) SetMany(ctx context.Context, values map[string][]byte) error {
	return k.s.setMany(ctx, len(values), func(yield func(user, key string, value []byte) bool) {
		for u, v := range values {
			if !yield(u, "", v) {
				return
			}
		}
	})
}

// Users reads the users a page at a time in ascending order; the loop body
// may modify the store.
func (k keyVal) Users(ctx context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		query, last := kvUsersFirst, ""
		for {
			page, err := k.usersPage(ctx, query, last)
			if err != nil {
				yield("", err)
				return
			}
			for _, u := range page {
				if !yield(u, nil) {
					return
				}
			}
			if len(page) < usersPage {
				return
			}
			query, last = kvUsersNext, page[len(page)-1]
		}
	}
}

func (k keyVal) usersPage(ctx context.Context, query, after string) ([]string, error) {
	rows, err := k.s.d.r.query(ctx, nil, query, k.s.host, k.s.store, after, usersPage)
	if err != nil {
		return nil, fmt.Errorf("sqlite: users: %w", err)
	}
	defer rows.Close()
	page := make([]string, 0, usersPage)
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("sqlite: users: %w", err)
		}
		page = append(page, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: users: %w", err)
	}
	return page, nil
}

// Map opens the map store store of host.
func (d *Driver) Map(host, store string) storage.Map {
	return mapStore{scope{d, host, store}}
}

type mapStore struct{ s scope }

func (m mapStore) Get(ctx context.Context, user, key string) ([]byte, error) {
	return m.s.get(ctx, user, key)
}

func (m mapStore) Set(ctx context.Context, user, key string, value []byte) error {
	return m.s.set(ctx, nil, user, key, value)
}

func (m mapStore) Delete(ctx context.Context, user, key string) error {
	return m.s.set(ctx, nil, user, key, nil)
}

func (m mapStore) SetKeys(ctx context.Context, user string, kv map[string][]byte) error {
	return m.s.setMany(ctx, len(kv), func(yield func(user, key string, value []byte) bool) {
		for k, v := range kv {
			if !yield(user, k, v) {
				return
			}
		}
	})
}

// collect reads (string, value) rows into a map.
func (m mapStore) collect(ctx context.Context, query string, args ...any) (map[string][]byte, error) {
	rows, err := m.s.d.r.query(ctx, nil, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = nonNil(v)
	}
	return out, rows.Err()
}

func (m mapStore) All(ctx context.Context, user string) (map[string][]byte, error) {
	out, err := m.collect(ctx, kvAll, m.s.host, user, m.s.store)
	if err != nil {
		return nil, fmt.Errorf("sqlite: map all: %w", err)
	}
	return out, nil
}

func (m mapStore) GetAll(ctx context.Context, key string) (map[string][]byte, error) {
	out, err := m.collect(ctx, kvGetAll, m.s.host, m.s.store, key)
	if err != nil {
		return nil, fmt.Errorf("sqlite: map get all: %w", err)
	}
	return out, nil
}

func (m mapStore) DeleteAll(ctx context.Context, key string) error {
	if _, err := m.s.d.w.exec(ctx, nil, kvDelAll, m.s.host, m.s.store, key); err != nil {
		return fmt.Errorf("sqlite: map delete all: %w", err)
	}
	return nil
}

func (m mapStore) DeleteUser(ctx context.Context, user string) error {
	if _, err := m.s.d.w.exec(ctx, nil, kvDelUser, m.s.host, user, m.s.store); err != nil {
		return fmt.Errorf("sqlite: map delete user: %w", err)
	}
	return nil
}
