package apikey

import (
	"context"
	"time"

	"github.com/indigo-hq/indigo/core/audit"
	"github.com/indigo-hq/indigo/core/notify"
	"github.com/indigo-hq/indigo/db"
)

// event writes a key event in the caller's transaction (the outbox), so it
// exists exactly when the change it reports commits.
func (s *Service) event(ctx context.Context, q db.Querier, typ string, row db.SaasApiKey, actor string, successor *db.SaasApiKey) error {
	ev := notify.NewEvent(typ, s.now(), row.OrgID, notify.KeyOf(row), actor)
	if successor != nil {
		k := notify.KeyOf(*successor)
		ev.Successor = &k
	}
	_, err := notify.Record(ctx, q, ev, "")
	return err
}

// recordChange writes the change-feed row that other processes follow, and
// the audit row, in the caller's transaction.
func (s *Service) recordChange(ctx context.Context, q db.Querier, row db.SaasApiKey, actor Actor, action string, details map[string]any) error {
	now := ms(s.now())
	if err := q.InsertKeyChange(ctx, db.InsertKeyChangeParams{KeyID: row.ID, OrgID: row.OrgID, CreatedAt: now}); err != nil {
		return err
	}
	return audit.Record(ctx, q, row.OrgID, actor, row.ID, action, details, now)
}

// Invalidate drops a key's cached record, so the next request reads it
// again. Mutations made by this process call it directly; FollowChanges
// calls it for changes made elsewhere.
func (s *Service) Invalidate(id string) { s.cache.Invalidate(id) }

// ChangePosition is the change feed's current end, where a follower that
// starts now begins.
func (s *Service) ChangePosition(ctx context.Context) (int64, error) {
	return s.store.Q().MaxKeyChangeID(ctx)
}

// FollowChanges invalidates cached records as the change feed in the
// database reports keys changed by other processes (the CLI, other hosts),
// from position last on. It polls every interval, and wakes early when wake
// fires (PostgreSQL LISTEN/NOTIFY). It returns when ctx ends.
func (s *Service) FollowChanges(ctx context.Context, last int64, interval time.Duration, wake <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		for {
			rows, err := s.store.Q().ListKeyChangesAfter(ctx, db.ListKeyChangesAfterParams{AfterID: last, Lim: 500})
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("change feed: poll", "err", err)
				}
				break
			}
			for _, r := range rows {
				s.Invalidate(r.KeyID)
				s.learnKeyID(ctx, r.KeyID) // a key created elsewhere
				last = r.ID
			}
			if len(rows) < 500 {
				break
			}
		}
	}
}

// PruneChanges deletes change-feed rows older than age.
func (s *Service) PruneChanges(ctx context.Context, age time.Duration) (int64, error) {
	return s.store.Q().PruneKeyChanges(ctx, ms(s.now().Add(-age)))
}
