package apikey

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/indigo-hq/indigo/core/notify"
	"github.com/indigo-hq/indigo/db"
)

// UpdateInput changes what is set; absent fields stay as they are.
type UpdateInput struct {
	Name      Opt[string]          `json:"name"`
	Enabled   Opt[bool]            `json:"enabled"`
	Metadata  Opt[json.RawMessage] `json:"metadata"`
	RateLimit Opt[RateLimit]       `json:"rate_limit"`
	Remaining Opt[int64]           `json:"remaining"`
	Refill    Opt[Refill]          `json:"refill"`
	ExpiresAt Opt[Time]            `json:"expires_at"`
}

// mutate runs fn on the locked row of a key that is not revoked or expired,
// writes the change feed and audit rows, and drops the cached record.
func (s *Service) mutate(ctx context.Context, orgID, id string, actor Actor, action string, fn func(q db.Querier, row *db.SaasApiKey, details map[string]any) error) (db.SaasApiKey, error) {
	var row db.SaasApiKey
	err := s.store.Tx(ctx, func(q db.Querier) error {
		var err error
		row, err = q.GetOrgKeyForUpdate(ctx, db.GetOrgKeyForUpdateParams{OrgID: orgID, ID: id})
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("key")
		}
		if err != nil {
			return err
		}
		switch newRecord(row).EffectiveStatus(s.now()) {
		case StatusRevoked:
			return conflict("key_revoked", "the key is revoked and can no longer change")
		case StatusExpired:
			return conflict("key_expired", "the key has expired and can no longer change")
		}
		details := map[string]any{}
		wasEnabled := row.Enabled
		if err := fn(q, &row, details); err != nil {
			return err
		}
		row, err = q.GetOrgKey(ctx, db.GetOrgKeyParams{OrgID: orgID, ID: id})
		if err != nil {
			return err
		}
		if err := s.recordChange(ctx, q, row, actor, action, details); err != nil {
			return err
		}
		// key.update turns enabled on and off; setting it to what it was
		// is no event.
		switch {
		case wasEnabled && !row.Enabled:
			return s.event(ctx, q, notify.KeyDisabled, row, actor.ID, nil)
		case !wasEnabled && row.Enabled:
			return s.event(ctx, q, notify.KeyEnabled, row, actor.ID, nil)
		}
		return nil
	})
	if err != nil {
		return row, err
	}
	s.Invalidate(id)
	s.wakeNotify()
	return row, nil
}

// Update applies a PATCH.
func (s *Service) Update(ctx context.Context, orgID, id string, actor Actor, in UpdateInput) (Key, error) {
	if in.Enabled.Set && !in.Enabled.Null && !in.Enabled.V && actor.KeyID == id {
		return Key{}, conflict("self_action", "a key cannot disable itself")
	}
	if (in.Name.Set && in.Name.Null) || (in.Enabled.Set && in.Enabled.Null) {
		return Key{}, refuse(Malformed, "bad_request", "name and enabled cannot be null")
	}
	row, err := s.mutate(ctx, orgID, id, actor, "key.update", func(q db.Querier, row *db.SaasApiKey, details map[string]any) error {
		now := s.now()
		p := db.UpdateKeyParams{
			OrgID: orgID, ID: id, Name: row.Name, Enabled: row.Enabled, Metadata: row.Metadata,
			RateLimit: row.RateLimit, RateWindowSeconds: row.RateWindowSeconds, Remaining: row.Remaining,
			RefillAmount: row.RefillAmount, RefillIntervalSeconds: row.RefillIntervalSeconds,
			LastRefillAt: row.LastRefillAt, QuotaEpoch: row.QuotaEpoch, ExpiresAt: row.ExpiresAt, UpdatedAt: ms(now),
		}
		// The live quota is ahead of the stored one until it is saved.
		if live, ok := s.limiter.Current(id, row.QuotaEpoch); ok {
			p.Remaining = sql.NullInt64{Int64: live.Remaining, Valid: true}
			p.LastRefillAt = sql.NullInt64{Int64: ms(live.LastRefill), Valid: !live.LastRefill.IsZero()}
		}
		if in.Name.Set {
			name, err := checkName(in.Name.V)
			if err != nil {
				return err
			}
			p.Name, details["name"] = name, name
		}
		if in.Enabled.Set {
			p.Enabled, details["enabled"] = in.Enabled.V, in.Enabled.V
		}
		if in.Metadata.Set {
			meta, err := checkMetadata(in.Metadata.V)
			if err != nil {
				return err
			}
			p.Metadata, details["metadata"] = meta, true
		}
		if in.RateLimit.Set {
			p.RateLimit, p.RateWindowSeconds = sql.NullInt64{}, sql.NullInt64{}
			if !in.RateLimit.Null {
				if err := checkRateLimit(&in.RateLimit.V); err != nil {
					return err
				}
				p.RateLimit = sql.NullInt64{Int64: in.RateLimit.V.Limit, Valid: true}
				p.RateWindowSeconds = sql.NullInt64{Int64: in.RateLimit.V.WindowSeconds, Valid: true}
			}
			details["rate_limit"] = in.RateLimit.V
		}
		if in.Refill.Set {
			p.RefillAmount, p.RefillIntervalSeconds = sql.NullInt64{}, sql.NullInt64{}
			if !in.Refill.Null {
				if err := checkQuota(nil, &in.Refill.V); err != nil {
					return err
				}
				p.RefillAmount = sql.NullInt64{Int64: in.Refill.V.Amount, Valid: true}
				p.RefillIntervalSeconds = sql.NullInt64{Int64: in.Refill.V.IntervalSeconds, Valid: true}
				p.LastRefillAt = sql.NullInt64{Int64: ms(now), Valid: true}
			}
			details["refill"] = in.Refill.V
		}
		if in.Remaining.Set {
			p.Remaining = sql.NullInt64{}
			if !in.Remaining.Null {
				if err := checkQuota(&in.Remaining.V, nil); err != nil {
					return err
				}
				p.Remaining = sql.NullInt64{Int64: in.Remaining.V, Valid: true}
			}
			p.QuotaEpoch++
			details["remaining"] = in.Remaining.V
		}
		if in.ExpiresAt.Set {
			if row.Status != StatusActive {
				return conflict("invalid_state", "only an active key's expiry can change")
			}
			p.ExpiresAt = sql.NullInt64{}
			if !in.ExpiresAt.Null {
				if !in.ExpiresAt.V.After(now) {
					return unprocessable("invalid_expiry", "expires_at must be in the future")
				}
				p.ExpiresAt = sql.NullInt64{Int64: ms(in.ExpiresAt.V.Time), Valid: true}
			}
			details["expires_at"] = in.ExpiresAt.V
		}
		_, err := q.UpdateKey(ctx, p)
		return err
	})
	if err != nil {
		return Key{}, err
	}
	return s.public(newRecord(row)), nil
}

// SetScopes replaces a key's scopes; superkey makes it a superkey.
func (s *Service) SetScopes(ctx context.Context, orgID, id string, actor Actor, scopes []string, superkey bool) (Key, error) {
	var err error
	if !superkey {
		if scopes, err = s.checkScopes(scopes); err != nil {
			return Key{}, err
		}
	}
	row, err := s.mutate(ctx, orgID, id, actor, "key.update_scopes", func(q db.Querier, row *db.SaasApiKey, details map[string]any) error {
		details["scopes"] = keyScopesForAudit(scopes, superkey)
		_, err := q.UpdateKeyScopes(ctx, db.UpdateKeyScopesParams{
			OrgID: orgID, ID: id, Scopes: scopesColumn(scopes, superkey), UpdatedAt: ms(s.now()),
		})
		return err
	})
	if err != nil {
		return Key{}, err
	}
	return s.public(newRecord(row)), nil
}
