package apikey

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/indigo-hq/indigo/core/audit"
	"github.com/indigo-hq/indigo/core/httpapi"
	"github.com/indigo-hq/indigo/core/ids"
	"github.com/indigo-hq/indigo/core/notify"
	"github.com/indigo-hq/indigo/core/ratelimit"
	"github.com/indigo-hq/indigo/core/scope"
	"github.com/indigo-hq/indigo/db"
)

// MaxMetadata is the largest metadata object a key may carry.
const MaxMetadata = 4096

// Settings are the key defaults from [api].
type Settings struct {
	Prefix           string
	RollGrace        time.Duration
	DefaultRateLimit *RateLimit
}

// Actor is who performs a management action, for the audit log and for the
// rule that a key cannot revoke, roll or disable itself.
type Actor = audit.Actor

// Service is the API-key store and verifier of one host or CLI process.
type Service struct {
	store    *db.Store
	scopes   *scope.Registry
	settings Settings
	now      func() time.Time
	log      *slog.Logger

	cache    *cache
	limiter  *ratelimit.Limiter
	keyLimit KeyLimiter // the plan's key limit; none when nil
	usage    sync.Map   // key id -> *usage

	flushMu sync.Mutex

	notifyWake func() // called after a change with key events commits
}

// DefaultRateLimit is the limit a key created without one gets; nil for none.
func (s *Service) DefaultRateLimit() *RateLimit { return s.settings.DefaultRateLimit }

// New returns a service. now is the clock (time.Now in production).
func New(store *db.Store, scopes *scope.Registry, settings Settings, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Service{
		store: store, scopes: scopes, settings: settings, now: now, log: log,
		cache: newCache(), limiter: ratelimit.New(),
	}
}

// Now is the service clock.
func (s *Service) Now() time.Time { return s.now() }

// Scopes is the registry keys are checked against.
func (s *Service) Scopes() *scope.Registry { return s.scopes }

func unprocessable(code, format string, a ...any) error {
	return httpapi.Errorf(http.StatusUnprocessableEntity, code, format, a...)
}

func conflict(code, format string, a ...any) error {
	return httpapi.Errorf(http.StatusConflict, code, format, a...)
}

func notFound(what string) error {
	return httpapi.Errorf(http.StatusNotFound, "not_found", "%s not found", what)
}

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

func (s *Service) checkScopes(scopes []string) ([]string, error) {
	out := make([]string, 0, len(scopes))
	seen := map[string]bool{}
	for _, id := range scopes {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if unknown := s.scopes.Unknown(out); len(unknown) > 0 {
		return nil, unprocessable("unknown_scope", "unknown scope: %s", strings.Join(unknown, ", "))
	}
	sort.Strings(out)
	return out, nil
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 128 {
		return "", unprocessable("invalid_name", "name must be 1 to 128 characters")
	}
	return name, nil
}

func checkMetadata(m json.RawMessage) (string, error) {
	if len(m) == 0 || string(m) == "null" {
		return "{}", nil
	}
	if len(m) > MaxMetadata {
		return "", unprocessable("invalid_metadata", "metadata must be at most %d bytes", MaxMetadata)
	}
	var obj map[string]any
	if err := json.Unmarshal(m, &obj); err != nil || obj == nil {
		return "", unprocessable("invalid_metadata", "metadata must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, m); err != nil {
		return "", unprocessable("invalid_metadata", "metadata must be a JSON object")
	}
	return buf.String(), nil
}

func checkRateLimit(rl *RateLimit) error {
	if rl == nil {
		return nil
	}
	if rl.Limit < 1 || rl.WindowSeconds < 1 || rl.WindowSeconds > 31*86400 {
		return unprocessable("invalid_rate_limit", "rate_limit needs limit >= 1 and window_seconds between 1 and 2678400")
	}
	return nil
}

func checkQuota(remaining *int64, refill *Refill) error {
	if remaining != nil && *remaining < 0 {
		return unprocessable("invalid_remaining", "remaining must not be negative")
	}
	if refill != nil && (refill.Amount < 1 || refill.IntervalSeconds < 1) {
		return unprocessable("invalid_refill", "refill needs amount >= 1 and interval_seconds >= 1")
	}
	return nil
}

func scopesColumn(scopes []string, superkey bool) sql.NullString {
	if superkey {
		return sql.NullString{}
	}
	if scopes == nil {
		scopes = []string{}
	}
	b, _ := json.Marshal(scopes)
	return sql.NullString{String: string(b), Valid: true}
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

// SetKeyLimiter makes Create enforce the plan's key limit. Call it before
// the host serves.
func (s *Service) SetKeyLimiter(l KeyLimiter) { s.keyLimit = l }

// SetNotifyWake has wake called after every committed change that wrote key
// events (the notification dispatcher's Wake). Call it before the host
// serves.
func (s *Service) SetNotifyWake(wake func()) { s.notifyWake = wake }

func (s *Service) wakeNotify() {
	if s.notifyWake != nil {
		s.notifyWake()
	}
}

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

// planLimit asks the plan provider. A provider that cannot answer refuses
// the create (503): keys are not handed out past a plan unseen.
func (s *Service) planLimit(ctx context.Context, orgID string) (KeyLimit, error) {
	if s.keyLimit == nil {
		return KeyLimit{}, nil
	}
	l, err := s.keyLimit.KeyLimit(ctx, orgID)
	if err != nil {
		s.log.Error("plan key limit unavailable", "org_id", orgID, "err", err)
		return KeyLimit{}, httpapi.Errorf(http.StatusServiceUnavailable, "plan_unavailable", "the plan provider is unavailable; try again")
	}
	return l, nil
}

func keyScopesForAudit(scopes []string, superkey bool) any {
	if superkey {
		return nil
	}
	return scopes
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

// public is the API view of a record with this process's live usage: the
// in-memory quota and last-used time, which are saved to the database
// lazily.
func (s *Service) public(r *Record) Key {
	k := r.Public(s.now())
	if q, ok := s.limiter.Current(r.Row.ID, r.Row.QuotaEpoch); ok {
		v := q.Remaining
		k.Remaining = &v
	}
	if u, ok := s.usage.Load(r.Row.ID); ok {
		if last := u.(*usage).last.Load(); last > 0 && (k.LastUsedAt == nil || last > ms(k.LastUsedAt.Time)) {
			k.LastUsedAt = &Time{Time: fromMS(last)}
		}
	}
	return k
}

// Get returns one key of the org; another org's key is not found.
func (s *Service) Get(ctx context.Context, orgID, id string) (Key, error) {
	row, err := s.store.Q().GetOrgKey(ctx, db.GetOrgKeyParams{OrgID: orgID, ID: id})
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, notFound("key")
	}
	if err != nil {
		return Key{}, err
	}
	return s.public(newRecord(row)), nil
}

// List returns a page of the org's keys, newest first.
func (s *Service) List(ctx context.Context, orgID, cursor string, limit int) ([]Key, string, error) {
	rows, err := s.store.Q().ListOrgKeys(ctx, db.ListOrgKeysParams{OrgID: orgID, Cursor: cursor, Lim: int64(limit + 1)})
	if err != nil {
		return nil, "", err
	}
	return s.page(rows, limit)
}

func (s *Service) page(rows []db.SaasApiKey, limit int) ([]Key, string, error) {
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[len(rows)-1].ID
	}
	out := make([]Key, len(rows))
	for i, r := range rows {
		out[i] = s.public(newRecord(r))
	}
	return out, next, nil
}

// AdminFilter narrows the cross-org key list.
type AdminFilter struct {
	OrgID, Status, KeyID, Cursor string
	Since, Until                 int64 // created_at bounds in Unix ms; 0 = open
	Limit                        int
}

// AdminList lists keys across organizations.
func (s *Service) AdminList(ctx context.Context, f AdminFilter) ([]Key, string, error) {
	rows, err := s.store.Q().AdminListKeys(ctx, db.AdminListKeysParams{
		OrgID: f.OrgID, Status: f.Status, Now: ms(s.now()), KeyID: f.KeyID, Since: f.Since, Until: f.Until,
		Cursor: f.Cursor, Lim: int64(f.Limit + 1),
	})
	if err != nil {
		return nil, "", err
	}
	return s.page(rows, f.Limit)
}

// Opt is a JSON field that distinguishes absent, null and a value.
type Opt[T any] struct {
	Set  bool
	Null bool
	V    T
}

// UnmarshalJSON records that the field was present.
func (o *Opt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.V)
}

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
		return Key{}, httpapi.Errorf(http.StatusBadRequest, "bad_request", "name and enabled cannot be null")
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

// DayCount is calls on one UTC day, in all and by status class: success
// (below 400), client_error (4xx) and server_error (5xx).
type DayCount struct {
	Day         string `json:"day"`
	Count       int64  `json:"count"`
	Success     int64  `json:"success"`
	ClientError int64  `json:"client_error"`
	ServerError int64  `json:"server_error"`
}

// RouteCount is calls to one route with one status.
type RouteCount struct {
	Route  string `json:"route"`
	Status int64  `json:"status"`
	Count  int64  `json:"count"`
}

// Stats is a key's usage.
type Stats struct {
	KeyID      string       `json:"key_id"`
	Total      int64        `json:"total"`
	LastUsedAt *Time        `json:"last_used_at"`
	ByDay      []DayCount   `json:"by_day"`
	ByRoute    []RouteCount `json:"by_route"`
}

// Stats returns a key's calls by day and by route and status, from the
// daily roll-up that the request log writer maintains.
func (s *Service) Stats(ctx context.Context, orgID, id string) (Stats, error) {
	k, err := s.Get(ctx, orgID, id)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{KeyID: id, LastUsedAt: k.LastUsedAt, ByDay: []DayCount{}, ByRoute: []RouteCount{}}
	days, err := s.store.Q().KeyStatsByDay(ctx, db.KeyStatsByDayParams{OrgID: orgID, KeyID: id})
	if err != nil {
		return Stats{}, err
	}
	for _, d := range days {
		st.ByDay = append(st.ByDay, DayCount{Day: d.Day, Count: d.Count, Success: d.Success, ClientError: d.ClientError, ServerError: d.ServerError})
		st.Total += d.Count
	}
	routes, err := s.store.Q().KeyStatsByRoute(ctx, db.KeyStatsByRouteParams{OrgID: orgID, KeyID: id})
	if err != nil {
		return Stats{}, err
	}
	for _, r := range routes {
		st.ByRoute = append(st.ByRoute, RouteCount{Route: r.Route, Status: r.Status, Count: r.Count})
	}
	return st, nil
}

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
