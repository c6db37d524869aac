package sqlite

import (
	"context"
	"database/sql"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/internal/driverutil"
	"github.com/metronome-xmpp/metronome/storage/storagetest"
)

var _ storagetest.Loader = archive{}

// LoadForBench appends items in one transaction (test builds only), then
// refreshes the planner statistics as the periodic PRAGMA optimize would.
func (a archive) LoadForBench(ctx context.Context, user string, items []storage.Item) error {
	defer a.s.d.w.ExecContext(ctx, "PRAGMA optimize=0x10002")
	return a.s.d.writeTx(ctx, func(tx *sql.Tx) error {
		for _, it := range items {
			if _, err := a.s.d.w.exec(ctx, tx, archReplace, a.s.host, user, a.s.store, it.ID,
				driverutil.Millis(driverutil.When(it.When)), it.With, it.Type, nonNil(it.Value)); err != nil {
				return err
			}
		}
		return nil
	})
}
