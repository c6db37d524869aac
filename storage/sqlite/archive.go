package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/internal/driverutil"
)

const (
	archInsert = `INSERT INTO archive (host, "user", store, "key", "when", "with", "type", value)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	// REPLACE deletes the row with the same (host, user, store, key) and
	// inserts a new one, with a new sort_id: the replacement goes last.
	archReplace = `INSERT OR REPLACE INTO archive (host, "user", store, "key", "when", "with", "type", value)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	archGet    = `SELECT "key", "when", "with", "type", value FROM archive WHERE host = ? AND "user" = ? AND store = ? AND "key" = ?`
	archSortID = `SELECT sort_id FROM archive WHERE host = ? AND "user" = ? AND store = ? AND "key" = ?`
	archSet    = `UPDATE archive SET "type" = ?, value = ? WHERE host = ? AND "user" = ? AND store = ? AND "key" = ?`
	archCols   = `"key", "when", "with", "type", value`
)

// Archive opens the archive store store of host.
func (d *Driver) Archive(host, store string) storage.Archive {
	return archive{scope{d, host, store}}
}

type archive struct{ s scope }

// Append writes through the driver's group commit (appendLoop): appends
// that arrive while a commit is in progress share the next transaction,
// and its single fsync. Each Append returns once its item is durable.
func (a archive) Append(ctx context.Context, user string, item storage.Item) (string, error) {
	query := archReplace
	if item.ID == "" {
		item.ID = driverutil.NewID()
		query = archInsert
	}
	if err := a.s.d.groupWrite(ctx, query, a.s.host, user, a.s.store, item.ID, driverutil.Millis(driverutil.When(item.When)), item.With, item.Type, nonNil(item.Value)); err != nil {
		return "", fmt.Errorf("sqlite: archive append: %w", err)
	}
	return item.ID, nil
}

// appendReq is one statement waiting for the group commit.
type appendReq struct {
	query string
	args  [8]any
	n     int // of args
	done  chan error
}

// groupWrite runs one write statement (of at most 8 arguments) through
// the group commit and returns once it is durable, or failed.
func (d *Driver) groupWrite(ctx context.Context, query string, args ...any) error {
	if d.appends == nil || len(args) > 8 { // opened without the loops (never in practice)
		_, err := d.w.exec(ctx, nil, query, args...)
		return err
	}
	req := &appendReq{query: query, n: len(args), done: make(chan error, 1)}
	copy(req.args[:], args)
	// A select with both cases ready picks one at random: check ctx first
	// so that a cancelled context never queues the write.
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	select {
	case d.appends <- req:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-d.stop:
		return errors.New("driver closed")
	}
	// Once queued, the write happens: wait for it rather than for ctx, so
	// that an error returned means "not stored".
	return <-req.done
}

// maxAppendBatch bounds the appends of one transaction.
const maxAppendBatch = 512

// appendLoop commits the queued appends, as many per transaction as have
// arrived since the previous commit. If a batch fails as a whole, its
// appends are retried one by one, so that one bad item fails alone.
func (d *Driver) appendLoop() {
	defer d.appendsWG.Done()
	ctx := context.Background()
	_ = d.w.prepare(ctx, archInsert, archReplace)
	batch := make([]*appendReq, 0, maxAppendBatch)
	for {
		select {
		case req := <-d.appends:
			batch = append(batch[:0], req)
		case <-d.stop:
			return
		}
	more:
		for len(batch) < maxAppendBatch {
			select {
			case req := <-d.appends:
				batch = append(batch, req)
			default:
				break more
			}
		}
		err := d.writeTx(ctx, func(tx *sql.Tx) error {
			for _, r := range batch {
				if _, err := d.w.exec(ctx, tx, r.query, r.args[:r.n]...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && len(batch) > 1 {
			for _, r := range batch {
				_, err := d.w.exec(ctx, nil, r.query, r.args[:r.n]...)
				r.done <- err
			}
			continue
		}
		for _, r := range batch {
			r.done <- err
		}
	}
}

// AppendMany implements storage.BulkAppender: one write transaction (and
// one fsync) for all the items.
func (a archive) AppendMany(ctx context.Context, user string, items []storage.Item) ([]string, error) {
	ids := make([]string, len(items))
	err := a.s.d.writeTx(ctx, func(tx *sql.Tx) error {
		for i, item := range items {
			query := archReplace
			if item.ID == "" {
				item.ID = driverutil.NewID()
				query = archInsert
			}
			when := driverutil.Millis(driverutil.When(item.When))
			if _, err := a.s.d.w.exec(ctx, tx, query, a.s.host, user, a.s.store, item.ID, when, item.With, item.Type, nonNil(item.Value)); err != nil {
				return fmt.Errorf("sqlite: archive append many: %w", err)
			}
			ids[i] = item.ID
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func scanItem(sc interface{ Scan(...any) error }) (storage.Item, error) {
	var it storage.Item
	var when int64
	if err := sc.Scan(&it.ID, &when, &it.With, &it.Type, &it.Value); err != nil {
		return it, err
	}
	it.When = driverutil.Time(when)
	it.Value = nonNil(it.Value)
	return it, nil
}

func (a archive) Get(ctx context.Context, user, id string) (storage.Item, error) {
	it, err := scanItem(a.s.d.r.queryRow(ctx, nil, archGet, a.s.host, user, a.s.store, id))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Item{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Item{}, fmt.Errorf("sqlite: archive get: %w", err)
	}
	return it, nil
}

func (a archive) Set(ctx context.Context, user, id string, item storage.Item) error {
	res, err := a.s.d.w.exec(ctx, nil, archSet, item.Type, nonNil(item.Value), a.s.host, user, a.s.store, id)
	if err != nil {
		return fmt.Errorf("sqlite: archive set: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: archive set: %w", err)
	} else if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// where accumulates SQL conditions and their arguments.
type where struct {
	from    string // the table, with an index hint
	conds   []string
	args    []any
	cursors []cursor // the conditions on ids whose sort_ids resolve fills in
}

// addCursor adds the condition sort_id <op> (the sort_id of item id), to be
// resolved at run time.
func (w *where) addCursor(op, id string) {
	w.add("sort_id "+op+" ?", nil)
	w.cursors = append(w.cursors, cursor{id: id, idx: len(w.args) - 1})
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// filters returns the conditions Total counts: scope, Start, End, With,
// IDs, RangeAfter and RangeBefore.
//
// SQLite's query planner needs help with some of them:
//   - IDs: it cannot tell how many ids json_each yields and may walk the
//     user's whole archive; a unique-key lookup per id is always best, so
//     the query says INDEXED BY archive_key.
//   - Start/End, when ordered (a page after or before a cursor, or a With
//     filter): "when" is written +"when", which keeps the planner off
//     archive_when, whose time range it would sort again for every page,
//     and on archive_sort or archive_with, read in archive order from the
//     cursor and stopping at Limit. Without a cursor or With, the planner
//     chooses, using the values bound for Start/End (STAT4 statistics).
func (a archive) filters(user string, q storage.Query, ordered bool) (*where, error) {
	w := &where{from: "archive"}
	w.add(`host = ? AND "user" = ? AND store = ?`, a.s.host, user, a.s.store)
	when := `"when"`
	if ordered {
		when = `+"when"`
	}
	if !q.Start.IsZero() {
		w.add(when+` >= ?`, driverutil.Millis(q.Start))
	}
	if !q.End.IsZero() {
		w.add(when+` <= ?`, driverutil.Millis(q.End))
	}
	if q.With != "" {
		w.add(`"with" = ?`, q.With)
	}
	if q.IDs != nil {
		if len(q.IDs) == 0 {
			w.add(`0`)
		} else {
			ids, err := json.Marshal(q.IDs)
			if err != nil {
				return nil, err
			}
			w.from = "archive INDEXED BY archive_key"
			w.add(`"key" IN (SELECT value FROM json_each(?))`, string(ids))
		}
	}
	if q.RangeAfter != "" {
		w.addCursor(">", q.RangeAfter)
	}
	if q.RangeBefore != "" {
		w.addCursor("<", q.RangeBefore)
	}
	return w, nil
}

// ordered reports whether q's results are best read in archive order (see
// filters).
func ordered(q storage.Query) bool {
	return q.After != "" || q.Before != "" || q.RangeAfter != "" || q.RangeBefore != "" || q.With != ""
}

// cursor is a Before/After bound whose sort_id is looked up at run time.
type cursor struct {
	id  string
	idx int // the index of its argument in the where's args
}

// cursorConds adds the Before/After conditions to w (and to w.cursors,
// whose sort_ids must be filled in by resolve).
func (a archive) cursorConds(q storage.Query, w *where) {
	if q.After != "" {
		w.addCursor(">", q.After)
	}
	if q.Before != "" {
		w.addCursor("<", q.Before)
	}
}

// resolve looks up the cursors' sort_ids in tx and stores them in args,
// whose prefix is the args of the where cursorConds added them to. An
// unknown id is ErrNotFound.
func (a archive) resolve(ctx context.Context, dbh *db, tx *sql.Tx, user string, cs []cursor, args []any) error {
	for _, c := range cs {
		var sortID int64
		err := dbh.queryRow(ctx, tx, archSortID, a.s.host, user, a.s.store, c.id).Scan(&sortID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: archive cursor %q: %w", c.id, storage.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqlite: archive cursor: %w", err)
		}
		args[c.idx] = sortID
	}
	return nil
}

// selection returns SELECT <cols> ... with the order and limit of q.
func selection(cols string, w *where, q storage.Query) (string, []any) {
	var b strings.Builder
	args := append([]any(nil), w.args...)
	b.WriteString("SELECT " + cols + " FROM " + w.from + " WHERE " + w.String() + " ORDER BY sort_id")
	if q.Reverse {
		b.WriteString(" DESC")
	}
	if q.Limit > 0 {
		b.WriteString(" LIMIT ?")
		args = append(args, q.Limit)
	}
	return b.String(), args
}

// findSQL is the SQL Find runs for q.
type findSQL struct {
	query        string
	args         []any // the cursors' arguments are filled in by resolve
	cursors      []cursor
	countQuery   string // when q.Total
	countArgs    []any
	countCursors []cursor
}

func (a archive) findSQL(user string, q storage.Query) (findSQL, error) {
	w, err := a.filters(user, q, ordered(q))
	if err != nil {
		return findSQL{}, err
	}
	var f findSQL
	if q.Total {
		cw := w
		if ordered(q) {
			cw, _ = a.filters(user, q, false)
		}
		f.countQuery, f.countArgs = "SELECT count(*) FROM "+cw.from+" WHERE "+cw.String(), slices.Clone(cw.args)
		f.countCursors = slices.Clone(cw.cursors)
	}
	a.cursorConds(q, w)
	f.cursors = w.cursors
	f.query, f.args = selection(archCols, w, q)
	return f, nil
}

func (a archive) Find(ctx context.Context, user string, q storage.Query) ([]storage.Item, int, error) {
	if err := driverutil.CheckFind(q); err != nil {
		return nil, 0, err
	}
	f, err := a.findSQL(user, q)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: archive find: %w", err)
	}
	// The statements are prepared before the transaction starts.
	if err := a.s.d.r.prepare(ctx, f.query); err != nil {
		return nil, 0, fmt.Errorf("sqlite: archive find: %w", err)
	}
	if q.Total {
		if err := a.s.d.r.prepare(ctx, f.countQuery); err != nil {
			return nil, 0, fmt.Errorf("sqlite: archive count: %w", err)
		}
	}
	total := -1
	var items []storage.Item
	find := func(tx *sql.Tx) error {
		if err := a.resolve(ctx, a.s.d.r, tx, user, f.cursors, f.args); err != nil {
			return err
		}
		if q.Total {
			if err := a.resolve(ctx, a.s.d.r, tx, user, f.countCursors, f.countArgs); err != nil {
				return err
			}
			if err := a.s.d.r.queryRow(ctx, tx, f.countQuery, f.countArgs...).Scan(&total); err != nil {
				return fmt.Errorf("sqlite: archive count: %w", err)
			}
		}
		rows, err := a.s.d.r.query(ctx, tx, f.query, f.args...)
		if err != nil {
			return fmt.Errorf("sqlite: archive find: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			it, err := scanItem(rows)
			if err != nil {
				return fmt.Errorf("sqlite: archive find: %w", err)
			}
			items = append(items, it)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: archive find: %w", err)
		}
		return nil
	}
	if len(f.cursors) == 0 && !q.Total {
		// One statement sees one snapshot: no transaction needed (the
		// common case of a login's offline lookup, and of a MAM query
		// without paging).
		err = find(nil)
	} else {
		err = a.s.d.readTx(ctx, find)
	}
	if err != nil {
		return nil, 0, err
	}
	return items, total, nil
}

func (a archive) Delete(ctx context.Context, user string, q storage.Query) (int, error) {
	if err := driverutil.CheckFind(q); err != nil {
		return 0, err
	}
	w, err := a.filters(user, q, ordered(q))
	if err != nil {
		return 0, fmt.Errorf("sqlite: archive delete: %w", err)
	}
	a.cursorConds(q, w)
	cur := w.cursors
	var query string
	var args []any
	switch {
	case q.Truncate > 0:
		sel, selArgs := selection("sort_id", w, q)
		query = "DELETE FROM archive WHERE sort_id IN (SELECT sort_id FROM (" + sel + ") ORDER BY sort_id DESC LIMIT -1 OFFSET ?)"
		args = append(selArgs, q.Truncate)
	case q.Limit > 0:
		sel, selArgs := selection("sort_id", w, q)
		query, args = "DELETE FROM archive WHERE sort_id IN ("+sel+")", selArgs
	default:
		query, args = "DELETE FROM "+w.from+" WHERE "+w.String(), slices.Clone(w.args)
	}
	if err := a.s.d.w.prepare(ctx, query); err != nil {
		return 0, fmt.Errorf("sqlite: archive delete: %w", err)
	}
	var n int64
	err = a.s.d.writeTx(ctx, func(tx *sql.Tx) error {
		if err := a.resolve(ctx, a.s.d.w, tx, user, cur, args); err != nil {
			return err
		}
		res, err := a.s.d.w.exec(ctx, tx, query, args...)
		if err != nil {
			return fmt.Errorf("sqlite: archive delete: %w", err)
		}
		n, err = res.RowsAffected()
		return err
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
	w.add("host = ? AND store = ?", a.s.host, a.s.store)
	if !q.Start.IsZero() {
		w.add(`"when" >= ?`, driverutil.Millis(q.Start))
	}
	if !q.End.IsZero() {
		w.add(`"when" <= ?`, driverutil.Millis(q.End))
	}
	if q.With != "" {
		w.add(`"with" = ?`, q.With)
	}
	res, err := a.s.d.w.exec(ctx, nil, "DELETE FROM archive WHERE "+w.String(), w.args...)
	if err != nil {
		return 0, fmt.Errorf("sqlite: archive delete all: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: archive delete all: %w", err)
	}
	return int(n), nil
}
