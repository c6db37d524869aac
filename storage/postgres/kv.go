package postgres

import (
	"context"
	"fmt"
	"iter"

	"github.com/metronome-xmpp/metronome/storage"
)

const (
	kvGet = `SELECT value FROM kv WHERE host = $1 AND "user" = $2 AND store = $3 AND "key" = $4`
	kvSet = `INSERT INTO kv (host, "user", store, "key", value) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (host, "user", store, "key") DO UPDATE SET value = excluded.value`
	kvDel = `DELETE FROM kv WHERE host = $1 AND "user" = $2 AND store = $3 AND "key" = $4`
	// kvSetMany deletes the ($3, $4) pairs and upserts the ($5, $6, $7)
	// triples (user, key, value) in one statement, hence atomically. The
	// two sets never share a (user, key).
	kvSetMany = `WITH del AS (
			DELETE FROM kv WHERE host = $1::text AND store = $2::text
				AND ("user", "key") IN (SELECT * FROM unnest($3::text[], $4::text[]))
		)
		INSERT INTO kv (host, "user", store, "key", value)
		SELECT $1::text, u, $2::text, k, v FROM unnest($5::text[], $6::text[], $7::bytea[]) AS t(u, k, v)
		ON CONFLICT (host, "user", store, "key") DO UPDATE SET value = excluded.value`
	kvUsersFirst = `SELECT "user" FROM kv WHERE host = $1 AND store = $2 AND "key" = '' AND "user" >= $3 ORDER BY "user" LIMIT $4`
	kvUsersNext  = `SELECT "user" FROM kv WHERE host = $1 AND store = $2 AND "key" = '' AND "user" > $3 ORDER BY "user" LIMIT $4`
	kvAll        = `SELECT "key", value FROM kv WHERE host = $1 AND "user" = $2 AND store = $3`
	kvGetAll     = `SELECT "user", value FROM kv WHERE host = $1 AND store = $2 AND "key" = $3`
	kvDelAll     = `DELETE FROM kv WHERE host = $1 AND store = $2 AND "key" = $3`
	kvDelUser    = `DELETE FROM kv WHERE host = $1 AND "user" = $2 AND store = $3`
)

// usersPage is how many users KeyVal.Users reads per query; no connection
// is held while the caller's loop body runs.
const usersPage = 1000

type scope struct {
	d           *Driver
	host, store string
}

func (s scope) get(ctx context.Context, user, key string) ([]byte, error) {
	var v []byte
	if err := s.d.pool.QueryRow(ctx, kvGet, s.host, user, s.store, key).Scan(&v); err != nil {
		return nil, notFound("get", err)
	}
	return nonNil(v), nil
}

func (s scope) set(ctx context.Context, user, key string, value []byte) error {
	var err error
	if value == nil {
		_, err = s.d.pool.Exec(ctx, kvDel, s.host, user, s.store, key)
	} else {
		_, err = s.d.pool.Exec(ctx, kvSet, s.host, user, s.store, key, value)
	}
	if err != nil {
		return fmt.Errorf("postgres: set: %w", err)
	}
	return nil
}

// setMany applies (user, key, value) changes in one statement; a nil value
// deletes.
func (s scope) setMany(ctx context.Context, each func(yield func(user, key string, value []byte))) error {
	var delU, delK, setU, setK []string
	var setV [][]byte
	each(func(user, key string, value []byte) {
		if value == nil {
			delU, delK = append(delU, user), append(delK, key)
		} else {
			setU, setK, setV = append(setU, user), append(setK, key), append(setV, value)
		}
	})
	if len(delU)+len(setU) == 0 {
		return ctx.Err()
	}
	if _, err := s.d.pool.Exec(ctx, kvSetMany, s.host, s.store, delU, delK, setU, setK, setV); err != nil {
		return fmt.Errorf("postgres: set many: %w", err)
	}
	return nil
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
	return k.s.set(ctx, user, "", value)
}

func (k keyVal) Delete(ctx context.Context, user string) error {
	return k.s.set(ctx, user, "", nil)
}

// SetMany sets (or, for nil values, deletes) many users' values in one
// statement.
func (k keyVal) SetMany(ctx context.Context, values map[string][]byte) error {
	return k.s.setMany(ctx, func(yield func(user, key string, value []byte)) {
		for u, v := range values {
			yield(u, "", v)
		}
	})
}

// Users reads the users a page at a time in ascending byte order; the loop
// body may modify the store.
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
	rows, err := k.s.d.pool.Query(ctx, query, k.s.host, k.s.store, after, usersPage)
	if err != nil {
		return nil, fmt.Errorf("postgres: users: %w", err)
	}
	defer rows.Close()
	page := make([]string, 0, usersPage)
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("postgres: users: %w", err)
		}
		page = append(page, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: users: %w", err)
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
	return m.s.set(ctx, user, key, value)
}

func (m mapStore) Delete(ctx context.Context, user, key string) error {
	return m.s.set(ctx, user, key, nil)
}

func (m mapStore) SetKeys(ctx context.Context, user string, kv map[string][]byte) error {
	return m.s.setMany(ctx, func(yield func(user, key string, value []byte)) {
		for k, v := range kv {
			yield(user, k, v)
		}
	})
}

func (m mapStore) collect(ctx context.Context, op, query string, args ...any) (map[string][]byte, error) {
	rows, err := m.s.d.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", op, err)
		}
		out[k] = nonNil(v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	return out, nil
}

func (m mapStore) All(ctx context.Context, user string) (map[string][]byte, error) {
	return m.collect(ctx, "map all", kvAll, m.s.host, user, m.s.store)
}

func (m mapStore) GetAll(ctx context.Context, key string) (map[string][]byte, error) {
	return m.collect(ctx, "map get all", kvGetAll, m.s.host, m.s.store, key)
}

func (m mapStore) DeleteAll(ctx context.Context, key string) error {
	if _, err := m.s.d.pool.Exec(ctx, kvDelAll, m.s.host, m.s.store, key); err != nil {
		return fmt.Errorf("postgres: map delete all: %w", err)
	}
	return nil
}

func (m mapStore) DeleteUser(ctx context.Context, user string) error {
	if _, err := m.s.d.pool.Exec(ctx, kvDelUser, m.s.host, user, m.s.store); err != nil {
		return fmt.Errorf("postgres: map delete user: %w", err)
	}
	return nil
}
