package apikey

import (
	"context"
	"database/sql"
	"errors"

	"github.com/indigo-hq/indigo/core/notify"
	"github.com/indigo-hq/indigo/db"
)

// Revoke ends a key at once. Revoking a revoked key is a no-op.
func (s *Service) Revoke(ctx context.Context, orgID, id string, actor Actor) error {
	if actor.KeyID == id {
		return conflict("self_action", "a key cannot revoke itself")
	}
	err := s.store.Tx(ctx, func(q db.Querier) error {
		row, err := q.GetOrgKeyForUpdate(ctx, db.GetOrgKeyForUpdateParams{OrgID: orgID, ID: id})
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("key")
		}
		if err != nil {
			return err
		}
		n, err := q.RevokeKey(ctx, db.RevokeKeyParams{OrgID: orgID, ID: id, RevokedAt: sql.NullInt64{Int64: ms(s.now()), Valid: true}})
		if err != nil || n == 0 {
			return err
		}
		if err := s.recordChange(ctx, q, row, actor, "key.revoke", nil); err != nil {
			return err
		}
		return s.event(ctx, q, notify.KeyRevoked, row, actor.ID, nil)
	})
	if err != nil {
		return err
	}
	s.Invalidate(id)
	s.wakeNotify()
	s.limiter.Forget(id)
	s.log.Info("api key revoked", "key_id", id, "org_id", orgID, "actor", actor.ID)
	return nil
}
