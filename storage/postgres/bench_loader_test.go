package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/internal/driverutil"
	"github.com/metronome-xmpp/metronome/storage/storagetest"
)

var _ storagetest.Loader = archive{}

// LoadForBench appends items with COPY (test builds only), then analyzes
// the table so that the planner sees realistic statistics.
func (a archive) LoadForBench(ctx context.Context, user string, items []storage.Item) error {
	rows := make([][]any, len(items))
	for i, it := range items {
		rows[i] = []any{a.s.host, user, a.s.store, it.ID, driverutil.Millis(driverutil.When(it.When)), it.With, it.Type, nonNil(it.Value)}
	}
	if _, err := a.s.d.pool.CopyFrom(ctx, pgx.Identifier{"archive"},
		[]string{"host", "user", "store", "key", "when", "with", "type", "value"}, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	_, err := a.s.d.pool.Exec(ctx, "VACUUM ANALYZE archive")
	return err
}
