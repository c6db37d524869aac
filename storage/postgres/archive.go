package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/internal/driverutil"
)

const (
	// archInsert takes the archive's advisory lock before the insert draws
	// its sort_id (see the package documentation).
	archInsert = `WITH l AS (
			SELECT pg_advisory_xact_lock(hashtextextended($1::text || chr(1) || $2::text || chr(1) || $3::text, 0))
		)
		INSERT INTO archive (host, "user", store, "key", "when", "with", "type", value)
		SELECT $1::text, $2::text, $3::text, $4::text, $5::bigint, $6::text, $7::text, $8::bytea FROM l`
	// archReplace gives a replaced item a new sort_id (excluded.sort_id is
	// the default drawn for the proposed row): it moves to the end.
	archReplace = archInsert + `
		ON CONFLICT (host, "user", store, "key") DO UPDATE SET sort_id = excluded.sort_id,
			"when" = excluded."when", "with" = excluded."with", "type" = excluded."type", value = excluded.value`
	archCols = `"key", "when", "with", "type", value`
	archGet  = `SELECT ` + archCols + ` FROM archive WHERE host = $1 AND "user" = $2 AND store = $3 AND "key" = $4`
	archSet  = `UPDATE archive SET "type" = $1, value = $2 WHERE host = $3 AND "user" = $4 AND store = $5 AND "key" = $6`
	// archDeleteScope starts deletes by sort_id: the primary key is (host, user,
	// store, sort_id).
	archDeleteScope = `DELETE FROM archive WHERE host = $1 AND "user" = $2 AND store = $3`
	archExists      = `SELECT count(DISTINCT "key") FROM archive WHERE host = $1 AND "user" = $2 AND store = $3 AND "key" = ANY($4::text[])`
)

// Archive opens the archive store store of host.
func (d *Driver) Archive(host, store string) storage.Archive {
	return archive{scope{d, host, store}}
}

type archive struct{ s scope }

func (a archive) Append(ctx context.Context, user string, item storage.Item) (string, error) {
	query := archReplace
	if item.ID == "" {
		item.ID = driverutil.NewID()
		query = archInsert
	}
	when := driverutil.Millis(driverutil.When(item.When))
	if _, err := a.s.d.pool.Exec(ctx, query, a.s.host, user, a.s.store, item.ID, when, item.With, item.Type, nonNil(item.Value)); err != nil {
		return "", fmt.Errorf("postgres: archive append: %w", err)
	}
	return item.ID, nil
}

// AppendMany implements storage.BulkAppender: the appends are pipelined in
// one transaction.
func (a archive) AppendMany(ctx context.Context, user string, items []storage.Item) ([]string, error) {
	ids := make([]string, len(items))
	batch := &pgx.Batch{}
	for i, item := range items {
		query := archReplace
		if item.ID == "" {
			item.ID = driverutil.NewID()
			query = archInsert
		}
		ids[i] = item.ID
		when := driverutil.Millis(driverutil.When(item.When))
		batch.Queue(query, a.s.host, user, a.s.store, item.ID, when, item.With, item.Type, nonNil(item.Value))
	}
	err := pgx.BeginFunc(ctx, a.s.d.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: archive append many: %w", err)
	}
	return ids, nil
}

func scanItem(row pgx.Row) (storage.Item, error) {
	var it storage.Item
	var when int64
	if err := row.Scan(&it.ID, &when, &it.With, &it.Type, &it.Value); err != nil {
		return it, err
	}
	it.When = driverutil.Time(when)
	it.Value = nonNil(it.Value)
	return it, nil
}

func (a archive) Get(ctx context.Context, user, id string) (storage.Item, error) {
	it, err := scanItem(a.s.d.pool.QueryRow(ctx, archGet, a.s.host, user, a.s.store, id))
	if err != nil {
		return storage.Item{}, notFound("archive get", err)
	}
	return it, nil
}

func (a archive) Set(ctx context.Context, user, id string, item storage.Item) error {
	tag, err := a.s.d.pool.Exec(ctx, archSet, item.Type, nonNil(item.Value), a.s.host, user, a.s.store, id)
	if err != nil {
		return fmt.Errorf("postgres: archive set: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// where accumulates SQL conditions and numbered arguments.
type where struct {
	conds []string
	args  []any
	ids   []string // the ids of cursor conditions, which must exist
}

// cursor adds the condition sort_id <op> (the sort_id of item id). An
// unknown id makes the subquery NULL and the result empty; callers then
// tell that apart with checkCursors.
func (w *where) cursor(op, id string) {
	w.conds = append(w.conds, `sort_id `+op+` (SELECT sort_id FROM archive WHERE host = $1 AND "user" = $2 AND store = $3 AND "key" = `+w.arg(id)+`)`)
	w.ids = append(w.ids, id)
}

// arg adds an argument and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// filters returns the conditions Total counts: scope, Start, End, With,
// IDs, RangeAfter, RangeBefore. The scope is always $1, $2, $3 (host,
// user, store).
func (a archive) filters(user string, q storage.Query) *where {
	w := &where{}
	w.conds = append(w.conds, fmt.Sprintf(`host = %s AND "user" = %s AND store = %s`, w.arg(a.s.host), w.arg(user), w.arg(a.s.store)))
	if !q.Start.IsZero() {
		w.conds = append(w.conds, `"when" >= `+w.arg(driverutil.Millis(q.Start)))
	}
	if !q.End.IsZero() {
		w.conds = append(w.conds, `"when" <= `+w.arg(driverutil.Millis(q.End)))
	}
	if q.With != "" {
		w.conds = append(w.conds, `"with" = `+w.arg(q.With))
	}
	if q.IDs != nil {
		if len(q.IDs) == 0 {
			w.conds = append(w.conds, "false")
		} else {
			w.conds = append(w.conds, `"key" = ANY(`+w.arg(q.IDs)+`::text[])`)
		}
	}
	if q.RangeAfter != "" {
		w.cursor(">", q.RangeAfter)
	}
	if q.RangeBefore != "" {
		w.cursor("<", q.RangeBefore)
	}
	return w
}

// cursors adds the Before/After bounds as sort_id subqueries and returns
// the ids of every cursor condition of w (RangeAfter/RangeBefore included).
func cursors(w *where, q storage.Query) []string {
	if q.After != "" {
		w.cursor(">", q.After)
	}
	if q.Before != "" {
		w.cursor("<", q.Before)
	}
	return w.ids
}

// checkCursors returns ErrNotFound unless every id exists.
func (a archive) checkCursors(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, user string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	var n int
	if err := q.QueryRow(ctx, archExists, a.s.host, user, a.s.store, ids).Scan(&n); err != nil {
		return fmt.Errorf("postgres: archive cursor: %w", err)
	}
	if n != len(ids) {
		return fmt.Errorf("postgres: archive cursor %q: %w", ids, storage.ErrNotFound)
	}
	return nil
}

// selection returns SELECT <cols> ... with the order and limit of q; it
// adds the limit argument to w.
func selection(cols string, w *where, q storage.Query) string {
	var b strings.Builder
	b.WriteString("SELECT " + cols + " FROM archive WHERE " + w.String() + " ORDER BY sort_id")
	if q.Reverse {
		b.WriteString(" DESC")
	}
	if q.Limit > 0 {
		b.WriteString(" LIMIT " + w.arg(q.Limit))
	}
	return b.String()
}

func (a archive) Find(ctx context.Context, user string, q storage.Query) ([]storage.Item, int, error) {
	if err := driverutil.CheckFind(q); err != nil {
		return nil, 0, err
	}
	w := a.filters(user, q)
	countQuery, countArgs := "SELECT count(*) FROM archive WHERE "+w.String(), slices.Clone(w.args)
	ids := cursors(w, q)
	query := selection(archCols, w, q)

	var items []storage.Item
	scan := func(rows pgx.Rows) error {
		for rows.Next() {
			it, err := scanItem(rows)
			if err != nil {
				return err
			}
			items = append(items, it)
		}
		return rows.Err()
	}
	total := -1
	if (!q.Start.IsZero() || !q.End.IsZero()) && q.With == "" && len(ids) == 0 && q.IDs == nil {
		// Whether to read the time range from archive_when and sort it,
		// or the primary key in order, depends on how many items the
		// range holds: plan with the actual values (an unnamed statement)
		// rather than risk a cached generic plan.
		rows, err := a.s.d.pool.Query(ctx, query, append([]any{pgx.QueryExecModeExec}, w.args...)...)
		if err == nil {
			err = scan(rows)
			rows.Close()
		}
		if err == nil && q.Total {
			err = a.s.d.pool.QueryRow(ctx, countQuery, append([]any{pgx.QueryExecModeExec}, countArgs...)...).Scan(&total)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("postgres: archive find: %w", err)
		}
		return items, total, nil
	}
	// The page and the count go in one round trip.
	batch := &pgx.Batch{}
	batch.Queue(query, w.args...).Query(scan)
	if q.Total {
		batch.Queue(countQuery, countArgs...).QueryRow(func(row pgx.Row) error { return row.Scan(&total) })
	}
	if err := a.s.d.pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, 0, fmt.Errorf("postgres: archive find: %w", err)
	}
	if len(items) == 0 {
		if err := a.checkCursors(ctx, a.s.d.pool, user, ids); err != nil {
			return nil, 0, err
		}
	}
	return items, total, nil
}

func (a archive) Delete(ctx context.Context, user string, q storage.Query) (int, error) {
	if err := driverutil.CheckFind(q); err != nil {
		return 0, err
	}
	w := a.filters(user, q)
	ids := cursors(w, q)
	var query string
	switch {
	case q.Truncate > 0:
		sel := selection("sort_id", w, q)
		query = archDeleteScope + " AND sort_id IN (SELECT sort_id FROM (" + sel + ") s ORDER BY sort_id DESC OFFSET " + w.arg(q.Truncate) + ")"
	case q.Limit > 0:
		query = archDeleteScope + " AND sort_id IN (" + selection("sort_id", w, q) + ")"
	default:
		query = "DELETE FROM archive WHERE " + w.String()
	}
	var n int64
	err := pgx.BeginFunc(ctx, a.s.d.pool, func(tx pgx.Tx) error {
		if err := a.checkCursors(ctx, tx, user, ids); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, query, w.args...)
		if err != nil {
			return fmt.Errorf("postgres: archive delete: %w", err)
		}
		n = tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

func (a archive) DeleteAll(ctx context.Context, q storage.Query) (int, error) {
	if err := driverutil.CheckDeleteAll(q); err != nil {
		return 0, err
	}
	w := &where{}
	w.conds = append(w.conds, "host = "+w.arg(a.s.host)+" AND store = "+w.arg(a.s.store))
	if !q.Start.IsZero() {
		w.conds = append(w.conds, `"when" >= `+w.arg(driverutil.Millis(q.Start)))
	}
	if !q.End.IsZero() {
		w.conds = append(w.conds, `"when" <= `+w.arg(driverutil.Millis(q.End)))
	}
	if q.With != "" {
		w.conds = append(w.conds, `"with" = `+w.arg(q.With))
	}
	tag, err := a.s.d.pool.Exec(ctx, "DELETE FROM archive WHERE "+w.String(), w.args...)
	if err != nil {
		return 0, fmt.Errorf("postgres: archive delete all: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
