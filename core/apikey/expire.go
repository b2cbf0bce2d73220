package apikey

import (
	"context"

	"github.com/indigo-hq/indigo/core/audit"
	"github.com/indigo-hq/indigo/core/notify"
	"github.com/indigo-hq/indigo/db"
)

// ExpireDue moves keys past expires_at to expired; the maintenance task
// calls it. Verification never waits for it.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	var rows []db.ExpireDueKeysRow
	err := s.store.Tx(ctx, func(q db.Querier) error {
		var err error
		now := ms(s.now())
		if rows, err = q.ExpireDueKeys(ctx, now); err != nil {
			return err
		}
		for _, r := range rows {
			if err := q.InsertKeyChange(ctx, db.InsertKeyChangeParams{KeyID: r.ID, OrgID: r.OrgID, CreatedAt: now}); err != nil {
				return err
			}
			if err := audit.Record(ctx, q, r.OrgID, Actor{ID: "system"}, r.ID, "key.expire", nil, now); err != nil {
				return err
			}
			row, err := q.GetKeyByID(ctx, r.ID)
			if err != nil {
				return err
			}
			if err := s.event(ctx, q, notify.KeyExpired, row, notify.ActorSystem, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		s.Invalidate(r.ID)
	}
	if len(rows) > 0 {
		s.wakeNotify()
	}
	return len(rows), nil
}
