// Package postgres is a storage.Driver over PostgreSQL, through a
// github.com/jackc/pgx/v5 connection pool. It is the driver to use when
// several server nodes share storage (clustering).
//
// # Schema
//
// The same two generic tables as the SQLite driver, in the shape of
// Prosody's mod_storage_sql: kv(host, user, store, key, type, value) for
// KeyVal and Map stores (a KeyVal value is the row with key "") and
// archive(sort_id bigserial, host, user, store, key, when, with, type,
// value) for Archive stores, key being the item id, when Unix milliseconds
// (bigint) and sort_id the archive order. Text columns use the "C"
// collation. The tables live in the connection's search_path (set
// search_path in the DSN to use a dedicated schema).
//
// Migrations are embedded (migrations/NNNN_*.sql) and applied by Open in
// one transaction holding a transaction-level advisory lock, so nodes
// starting together migrate once; applied versions are recorded in
// schema_version, and a database whose schema is newer than this binary is
// refused.
//
// # Archive order
//
// Appends to one (host, store, user) archive take a transaction-level
// advisory lock before drawing their sort_id, so sort_ids become visible
// in order: a reader paging with After never misses an item that commits
// later with a smaller sort_id. Appends to different archives do not
// contend (lock keys are hashes, so an unlucky collision only serialises
// two archives).
//
// # Durability
//
// Every write is one statement or one transaction, acknowledged when
// PostgreSQL acknowledges the commit: with the server's default
// synchronous_commit = on, the commit is in PostgreSQL's fsynced WAL, so a
// crash of this process, of PostgreSQL or of its machine (power loss
// included) does not lose it. The driver does not change
// synchronous_commit; setting it off on the server trades that for a
// window (wal_writer_delay, by default 200 ms, up to three times that) of
// acknowledged writes lost on a PostgreSQL crash, never corruption.
//
// Configuration key (under [storage]): postgres.dsn, a libpq URL or
// keyword/value string, e.g. postgres://metronome@db/metronome?pool_max_conns=20.
// pgx's own DSN parameters (pool_max_conns, default_query_exec_mode, ...)
// are honoured; behind PgBouncer in transaction mode, set
// default_query_exec_mode=exec.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/internal/driverutil"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key pair migrations run under
// ("metr", "onom"); the two-key space does not overlap the one-key space
// used for archive appends.
const migrationLock1, migrationLock2 = 0x6d657472, 0x6f6e6f6d

// Driver is a storage.Driver over a PostgreSQL pool. It is safe for
// concurrent use.
type Driver struct {
	pool      *pgxpool.Pool
	closeOnce sync.Once
}

var _ storage.Driver = (*Driver)(nil)

// Open connects to the database named by dsn and migrates its schema.
func Open(ctx context.Context, dsn string) (*Driver, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return OpenConfig(ctx, cfg)
}

// OpenConfig is Open with a parsed (and possibly adjusted) pool
// configuration.
func OpenConfig(ctx context.Context, cfg *pgxpool.Config) (*Driver, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	d := &Driver{pool: pool}
	if err := d.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

// Pool returns the underlying pool (for health checks and metrics).
func (d *Driver) Pool() *pgxpool.Pool { return d.pool }

// Close closes the pool. It is safe to call more than once.
func (d *Driver) Close() error {
	d.closeOnce.Do(d.pool.Close)
	return nil
}

func (d *Driver) migrate(ctx context.Context) error {
	ms, err := driverutil.Migrations(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", int32(migrationLock1), int32(migrationLock2)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("schema_version: %w", err)
		}
		var cur int
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&cur); err != nil {
			return fmt.Errorf("schema_version: %w", err)
		}
		if latest := ms[len(ms)-1].Version; cur > latest {
			return fmt.Errorf("database schema version %d is newer than this server's %d", cur, latest)
		}
		for _, m := range ms {
			if m.Version <= cur {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// nonNil turns a nil value into an empty one.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// notFound maps pgx.ErrNoRows to storage.ErrNotFound and wraps the rest.
func notFound(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}
