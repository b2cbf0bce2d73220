package apikey

import (
	"context"
	"database/sql"
	"time"

	"github.com/indigo-hq/indigo/core/ids"
	"github.com/indigo-hq/indigo/core/notify"
	"github.com/indigo-hq/indigo/db"
)

// Previous is what became of a rolled key.
type Previous struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	ExpiresAt *Time  `json:"expires_at"`
}

// Roll creates the successor of an active key (same org, name, scopes,
// metadata and limits) and lets the old key keep working for grace.
// grace nil uses the configured default.
func (s *Service) Roll(ctx context.Context, orgID, id string, actor Actor, grace *time.Duration) (Key, string, Previous, error) {
	if actor.KeyID == id {
		return Key{}, "", Previous{}, conflict("self_action", "a key cannot roll itself")
	}
	g := s.settings.RollGrace
	if grace != nil {
		g = *grace
	}
	if g < 0 {
		return Key{}, "", Previous{}, unprocessable("invalid_grace", "grace_seconds must not be negative")
	}
	var (
		raw    string
		newRow db.SaasApiKey
	)
	oldRow, err := s.mutate(ctx, orgID, id, actor, "key.roll", func(q db.Querier, row *db.SaasApiKey, details map[string]any) error {
		if row.Status != StatusActive {
			return conflict("invalid_state", "only an active key can be rolled (this one is %s)", row.Status)
		}
		now := s.now()
		var parsed Parsed
		raw, parsed = Generate(row.Prefix)
		s.learnKey(parsed.Digest)
		remaining := row.Remaining
		if live, ok := s.limiter.Current(id, row.QuotaEpoch); ok {
			remaining = sql.NullInt64{Int64: live.Remaining, Valid: true}
		}
		p := db.InsertKeyParams{
			ID: ids.New("key", ms(now)), OrgID: orgID, KeyHash: parsed.Hash(), Name: row.Name, Prefix: row.Prefix,
			Last4: parsed.Last4, Scopes: row.Scopes, Metadata: row.Metadata, RateLimit: row.RateLimit,
			RateWindowSeconds: row.RateWindowSeconds, Remaining: remaining, RefillAmount: row.RefillAmount,
			RefillIntervalSeconds: row.RefillIntervalSeconds, LastRefillAt: row.LastRefillAt,
			CreatedBy: actor.ID, CreatedAt: ms(now),
		}
		if err := q.InsertKey(ctx, p); err != nil {
			return err
		}
		if _, err := q.MarkKeyExpiring(ctx, db.MarkKeyExpiringParams{
			OrgID: orgID, ID: id, ExpiresAt: sql.NullInt64{Int64: ms(now.Add(g)), Valid: true},
			RolledTo: sql.NullString{String: p.ID, Valid: true}, UpdatedAt: ms(now),
		}); err != nil {
			return err
		}
		var err error
		if newRow, err = q.GetOrgKey(ctx, db.GetOrgKeyParams{OrgID: orgID, ID: p.ID}); err != nil {
			return err
		}
		details["successor"] = p.ID
		details["grace_seconds"] = int64(g / time.Second)
		if err := s.recordChange(ctx, q, newRow, actor, "key.create", map[string]any{"rolled_from": id}); err != nil {
			return err
		}
		// One event for the roll, about the old key (now expiring at the
		// end of the grace) and naming its successor.
		old, err := q.GetOrgKey(ctx, db.GetOrgKeyParams{OrgID: orgID, ID: id})
		if err != nil {
			return err
		}
		return s.event(ctx, q, notify.KeyRolled, old, actor.ID, &newRow)
	})
	if err != nil {
		return Key{}, "", Previous{}, err
	}
	old := newRecord(oldRow)
	s.log.Info("api key rolled", "key_id", id, "successor", newRow.ID, "org_id", orgID, "actor", actor.ID)
	return s.public(newRecord(newRow)), raw, Previous{ID: id, Status: old.EffectiveStatus(s.now()), ExpiresAt: optTime(oldRow.ExpiresAt)}, nil
}
