package apikey

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/indigo-hq/indigo/core/ids"
	"github.com/indigo-hq/indigo/core/notify"
	"github.com/indigo-hq/indigo/db"
)

// CreateInput is a validated-on-use create request.
type CreateInput struct {
	Name     string
	Scopes   []string // with Superkey false: nil is treated as an empty list
	Superkey bool
	// ExpiresAt nil means no expiry.
	ExpiresAt *time.Time
	// RateLimit: DefaultRateLimit applies unless RateLimitSet.
	RateLimit    *RateLimit
	RateLimitSet bool
	Remaining    *int64
	Refill       *Refill
	Metadata     json.RawMessage
	Prefix       string
}

// Create makes a key and returns it with its plaintext, which is never
// stored and never shown again.
func (s *Service) Create(ctx context.Context, orgID string, actor Actor, in CreateInput) (Key, string, error) {
	name, err := checkName(in.Name)
	if err != nil {
		return Key{}, "", err
	}
	var scopes []string
	if !in.Superkey {
		if scopes, err = s.checkScopes(in.Scopes); err != nil {
			return Key{}, "", err
		}
	}
	prefix := in.Prefix
	if prefix == "" {
		prefix = s.settings.Prefix
	}
	if !PrefixRE.MatchString(prefix) {
		return Key{}, "", unprocessable("invalid_prefix", "prefix must match %s", PrefixRE)
	}
	meta, err := checkMetadata(in.Metadata)
	if err != nil {
		return Key{}, "", err
	}
	rl := in.RateLimit
	if !in.RateLimitSet {
		rl = s.settings.DefaultRateLimit
	}
	if err := checkRateLimit(rl); err != nil {
		return Key{}, "", err
	}
	remaining := in.Remaining
	if remaining == nil && in.Refill != nil {
		v := in.Refill.Amount
		remaining = &v
	}
	if err := checkQuota(remaining, in.Refill); err != nil {
		return Key{}, "", err
	}
	now := s.now()
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		return Key{}, "", unprocessable("invalid_expiry", "expires_at must be in the future")
	}

	raw, parsed := Generate(prefix)
	s.learnKey(parsed.Digest) // before it exists: a key the filter knows too early only costs a lookup
	p := db.InsertKeyParams{
		ID: ids.New("key", ms(now)), OrgID: orgID, KeyHash: parsed.Hash(), Name: name,
		Prefix: prefix, Last4: parsed.Last4, Scopes: scopesColumn(scopes, in.Superkey), Metadata: meta,
		Remaining: nullInt(remaining), ExpiresAt: nullTime(in.ExpiresAt), CreatedBy: actor.ID, CreatedAt: ms(now),
	}
	if rl != nil {
		p.RateLimit = sql.NullInt64{Int64: rl.Limit, Valid: true}
		p.RateWindowSeconds = sql.NullInt64{Int64: rl.WindowSeconds, Valid: true}
	}
	if in.Refill != nil {
		p.RefillAmount = sql.NullInt64{Int64: in.Refill.Amount, Valid: true}
		p.RefillIntervalSeconds = sql.NullInt64{Int64: in.Refill.IntervalSeconds, Valid: true}
		p.LastRefillAt = sql.NullInt64{Int64: ms(now), Valid: true}
	}
	limit, err := s.planLimit(ctx, orgID)
	if err != nil {
		return Key{}, "", err
	}
	var row db.SaasApiKey
	err = s.store.Tx(ctx, func(q db.Querier) error {
		if _, err := q.LockOrg(ctx, orgID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return notFound("organization")
			}
			return err
		}
		if limit.Limited {
			n, err := q.CountActiveOrgKeys(ctx, orgID)
			if err != nil {
				return err
			}
			if n >= limit.MaxKeys {
				return conflict("key_limit_reached", "the %s plan allows %d active API keys and this organization has %d; revoke one or change the plan", limit.Plan, limit.MaxKeys, n)
			}
		}
		if err := q.InsertKey(ctx, p); err != nil {
			return err
		}
		if row, err = q.GetOrgKey(ctx, db.GetOrgKeyParams{OrgID: orgID, ID: p.ID}); err != nil {
			return err
		}
		if err := s.recordChange(ctx, q, row, actor, "key.create", map[string]any{"name": name, "scopes": keyScopesForAudit(scopes, in.Superkey)}); err != nil {
			return err
		}
		return s.event(ctx, q, notify.KeyCreated, row, actor.ID, nil)
	})
	if err != nil {
		return Key{}, "", err
	}
	s.wakeNotify()
	s.log.Info("api key created", "key_id", row.ID, "org_id", orgID, "actor", actor.ID, "prefix", prefix, "last4", parsed.Last4)
	return s.public(newRecord(row)), raw, nil
}

// KeyLimit is what an org's plan allows.
type KeyLimit struct {
	Plan    string
	MaxKeys int64
	Limited bool // false: no limit
}

// KeyLimiter is the plan provider's hook (a subscriptions module).
type KeyLimiter interface {
	KeyLimit(ctx context.Context, orgID string) (KeyLimit, error)
}

// planLimit asks the plan provider. A provider that cannot answer refuses
// the create (503): keys are not handed out past a plan unseen.
func (s *Service) planLimit(ctx context.Context, orgID string) (KeyLimit, error) {
	if s.keyLimit == nil {
		return KeyLimit{}, nil
	}
	l, err := s.keyLimit.KeyLimit(ctx, orgID)
	if err != nil {
		s.log.Error("plan key limit unavailable", "org_id", orgID, "err", err)
		return KeyLimit{}, refuse(Unavailable, "plan_unavailable", "the plan provider is unavailable; try again")
	}
	return l, nil
}
