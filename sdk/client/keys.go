package client

import (
	"context"
	"iter"
	"time"

	"github.com/oapi-codegen/nullable"

	"github.com/indigo-hq/indigo/sdk/client/openapi"
)

// Keys is the key management API (/api/v2/keys) of the client's org.
type Keys struct{ c *Client }

// Key is an API key as Indigo shows it: never the plaintext, which only
// Create and Roll return.
type Key struct {
	ID        string
	OrgID     string
	Name      string
	Prefix    string // the first characters, for display
	Last4     string
	Scopes    []string // nil for a superkey
	Superkey  bool     // every scope, those registered later too
	Status    string   // active, expiring, expired or revoked
	Enabled   bool
	Metadata  map[string]any
	RateLimit *RateLimit // nil: no limit of its own
	Remaining *int       // the quota left; nil: no quota
	Refill    *Refill
	ExpiresAt *time.Time
	LastUsed  *time.Time
	CreatedAt time.Time
	CreatedBy string
	RevokedAt *time.Time
}

// Key statuses.
const (
	StatusActive   = string(openapi.KeyStatusActive)
	StatusExpiring = string(openapi.KeyStatusExpiring)
	StatusExpired  = string(openapi.KeyStatusExpired)
	StatusRevoked  = string(openapi.KeyStatusRevoked)
)

// RateLimit admits Limit calls in any interval of length Window (whole
// seconds).
type RateLimit struct {
	Limit  int
	Window time.Duration
}

// Refill adds Amount to the quota every Interval (whole seconds).
type Refill struct {
	Amount   int
	Interval time.Duration
}

// CreatedKey is a new key with its plaintext, shown this once.
type CreatedKey struct {
	Key
	Raw string // the plaintext key: store it now, it cannot be read again
	// Previous is, after Roll, the rolled key: expiring until its
	// ExpiresAt, then expired.
	Previous *PreviousKey
}

// PreviousKey is the key a Roll replaced.
type PreviousKey struct {
	ID        string
	Status    string
	ExpiresAt *time.Time
}

// CreateKey describes a new key. Only Name is required.
type CreateKey struct {
	Name string
	// Scopes the key holds; nil or empty: none (it can call GET /me and
	// nothing else). Set Superkey instead for every scope.
	Scopes   []string
	Superkey bool
	// ExpiresAt or ExpiresIn (whole seconds), not both: the key expires
	// then. Neither: never.
	ExpiresAt *time.Time
	ExpiresIn time.Duration
	// RateLimit of the key; nil: the host's default ([api]
	// default_rate_limit), if any.
	RateLimit *RateLimit
	// Remaining is a quota of calls, refilled by Refill when set.
	Remaining *int
	Refill    *Refill
	Metadata  map[string]any
	// Prefix of the plaintext instead of the host's (e.g. "acme_live").
	Prefix string
}

// Create makes a key (api-keys:write) and returns it with its plaintext.
func (k *Keys) Create(ctx context.Context, in CreateKey) (*CreatedKey, error) {
	body := openapi.CreateKeyRequest{Name: in.Name}
	switch {
	case in.Superkey:
		body.Scopes.SetNull()
	default:
		body.Scopes.Set(orEmpty(in.Scopes))
	}
	if in.ExpiresAt != nil {
		body.ExpiresAt.Set(*in.ExpiresAt)
	}
	if in.ExpiresIn != 0 {
		body.ExpiresInSeconds.Set(seconds(in.ExpiresIn))
	}
	if in.RateLimit != nil {
		body.RateLimit.Set(toRateLimit(*in.RateLimit))
	}
	if in.Remaining != nil {
		body.Remaining.Set(*in.Remaining)
	}
	if in.Refill != nil {
		body.Refill.Set(toRefill(*in.Refill))
	}
	if in.Metadata != nil {
		body.Metadata.Set(in.Metadata)
	}
	if in.Prefix != "" {
		body.Prefix = &in.Prefix
	}
	r, err := k.c.raw.CreateKeyWithResponse(ctx, body)
	if err != nil {
		return nil, err
	}
	return created(answer(k.c, r.HTTPResponse, r.Body, r.JSON201))
}

// Get returns one key of the org (api-keys:read); another org's key is a
// 404 not_found.
func (k *Keys) Get(ctx context.Context, id string) (*Key, error) {
	r, err := k.c.raw.GetKeyWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	return envelope(answer(k.c, r.HTTPResponse, r.Body, r.JSON200))
}

// ListOption shapes List.
type ListOption func(*openapi.ListKeysParams)

// PageSize is how many keys each request of List fetches (1 to 200;
// default 50). It does not bound how many List yields.
func PageSize(n int) ListOption {
	return func(p *openapi.ListKeysParams) { p.Limit = &n }
}

// List yields every key of the org, newest first (api-keys:read),
// fetching the pages as the loop reaches them. An error ends it: it is
// yielded with a zero Key.
//
//	for key, err := range c.Keys.List(ctx) {
//		if err != nil { return err }
//		fmt.Println(key.Name)
//	}
func (k *Keys) List(ctx context.Context, opts ...ListOption) iter.Seq2[Key, error] {
	return func(yield func(Key, error) bool) {
		var p openapi.ListKeysParams
		for _, o := range opts {
			o(&p)
		}
		for {
			r, err := k.c.raw.ListKeysWithResponse(ctx, &p)
			if err == nil {
				var page *openapi.KeyList
				if page, err = answer(k.c, r.HTTPResponse, r.Body, r.JSON200); err == nil {
					for _, key := range page.Keys {
						if !yield(keyOf(key), nil) {
							return
						}
					}
					next, _ := page.NextCursor.Get()
					if next == "" {
						return
					}
					p.Cursor = &next
					continue
				}
			}
			yield(Key{}, err)
			return
		}
	}
}

// Field is one field of an Update: its zero value leaves the key's as it
// is, Set changes it and Null removes it (no limit, no quota, no expiry).
type Field[T any] struct {
	set, null bool
	v         T
}

// Set is a Field that changes the key's value to v.
func Set[T any](v T) Field[T] { return Field[T]{set: true, v: v} }

// Null is a Field that removes the key's value.
func Null[T any]() Field[T] { return Field[T]{set: true, null: true} }

func fieldTo[T, U any](f Field[T], conv func(T) U) nullable.Nullable[U] {
	var n nullable.Nullable[U]
	switch {
	case f.null:
		n.SetNull()
	case f.set:
		n.Set(conv(f.v))
	}
	return n
}

func same[T any](v T) T { return v }

// KeyUpdate changes some of a key's settings; what it leaves unset stays.
type KeyUpdate struct {
	Name      *string
	Enabled   *bool // false: the key is refused (401) until enabled again
	Metadata  Field[map[string]any]
	RateLimit Field[RateLimit]
	Remaining Field[int]
	Refill    Field[Refill]
	ExpiresAt Field[time.Time] // only an active key's; Null: never expires
}

// Update changes a key (api-keys:write). A key cannot disable itself.
func (k *Keys) Update(ctx context.Context, id string, u KeyUpdate) (*Key, error) {
	body := openapi.UpdateKeyRequest{
		Name: u.Name, Enabled: u.Enabled,
		Metadata:  fieldTo(u.Metadata, same),
		RateLimit: fieldTo(u.RateLimit, toRateLimit),
		Remaining: fieldTo(u.Remaining, same),
		Refill:    fieldTo(u.Refill, toRefill),
		ExpiresAt: fieldTo(u.ExpiresAt, same),
	}
	r, err := k.c.raw.UpdateKeyWithResponse(ctx, id, body)
	if err != nil {
		return nil, err
	}
	return envelope(answer(k.c, r.HTTPResponse, r.Body, r.JSON200))
}

// SetScopes replaces a key's scopes (api-keys:write); nil or empty leaves
// it none. An unknown scope is a 422.
func (k *Keys) SetScopes(ctx context.Context, id string, scopes []string) (*Key, error) {
	var body openapi.ScopesRequest
	body.Scopes.Set(orEmpty(scopes))
	return k.putScopes(ctx, id, body)
}

// SetSuperkey makes a key a superkey: every scope, later ones too.
func (k *Keys) SetSuperkey(ctx context.Context, id string) (*Key, error) {
	var body openapi.ScopesRequest
	body.Scopes.SetNull()
	return k.putScopes(ctx, id, body)
}

func (k *Keys) putScopes(ctx context.Context, id string, body openapi.ScopesRequest) (*Key, error) {
	r, err := k.c.raw.UpdateScopesWithResponse(ctx, id, body)
	if err != nil {
		return nil, err
	}
	return envelope(answer(k.c, r.HTTPResponse, r.Body, r.JSON200))
}

// Roll replaces a key (api-keys:write): the successor, with the same
// name, scopes and limits, is returned with its plaintext; the old key
// keeps working for grace (nil: the host's [api] roll_grace; 0: it
// expires now), then expires.
func (k *Keys) Roll(ctx context.Context, id string, grace *time.Duration) (*CreatedKey, error) {
	var body openapi.RollRequest
	if grace != nil {
		s := seconds(*grace)
		body.GraceSeconds = &s
	}
	r, err := k.c.raw.RollKeyWithResponse(ctx, id, body)
	if err != nil {
		return nil, err
	}
	return created(answer(k.c, r.HTTPResponse, r.Body, r.JSON201))
}

// Revoke ends a key at once and for good (api-keys:write). A key cannot
// revoke itself.
func (k *Keys) Revoke(ctx context.Context, id string) error {
	r, err := k.c.raw.RevokeKeyWithResponse(ctx, id)
	if err != nil {
		return err
	}
	_, err = answer(k.c, r.HTTPResponse, r.Body, r.JSON200)
	return err
}

// Stats is a key's calls, as the request log counts them (written with
// the log, so a call shows up within the log's flush interval).
type Stats struct {
	KeyID    string
	Total    int
	LastUsed *time.Time
	ByDay    []DayStats
	ByRoute  []RouteStats
}

// DayStats counts a UTC day's calls by class of status.
type DayStats struct {
	Day                                      string // 2006-01-02
	Count, Success, ClientError, ServerError int
}

// RouteStats counts the calls of one route template with one status.
type RouteStats struct {
	Route  string
	Status int
	Count  int
}

// Stats returns a key's usage (api-keys:read).
func (k *Keys) Stats(ctx context.Context, id string) (*Stats, error) {
	r, err := k.c.raw.GetKeyStatsWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	s, err := answer(k.c, r.HTTPResponse, r.Body, r.JSON200)
	if err != nil {
		return nil, err
	}
	out := &Stats{KeyID: s.KeyID, Total: s.Total, LastUsed: timeOf(s.LastUsedAt)}
	for _, d := range s.ByDay {
		out.ByDay = append(out.ByDay, DayStats{Day: d.Day, Count: d.Count, Success: d.Success, ClientError: d.ClientError, ServerError: d.ServerError})
	}
	for _, rt := range s.ByRoute {
		out.ByRoute = append(out.ByRoute, RouteStats{Route: rt.Route, Status: rt.Status, Count: rt.Count})
	}
	return out, nil
}

// Verification is Indigo's answer about a key.
type Verification struct {
	Valid bool
	// Code is valid, not_found (another org's key too), disabled, expired,
	// revoked, rate_limited, quota_exceeded or insufficient_scope.
	Code      string
	KeyID     string // "" for not_found
	OrgID     string
	Scopes    []string
	Superkey  bool
	Remaining *int // the key's quota after this check; nil: none
	// RateLimit is the key's window after this check; nil: no limit.
	RateLimit *Window
}

// Window is a key's rate limit as a check leaves it.
type Window struct {
	Limit, Remaining int
	Reset            time.Duration // until a call is admitted again
}

// Verification codes.
const (
	CodeValid             = string(openapi.VerifyResponseCodeValid)
	CodeNotFound          = string(openapi.VerifyResponseCodeNotFound)
	CodeDisabled          = string(openapi.VerifyResponseCodeDisabled)
	CodeExpired           = string(openapi.VerifyResponseCodeExpired)
	CodeRevoked           = string(openapi.VerifyResponseCodeRevoked)
	CodeRateLimited       = string(openapi.VerifyResponseCodeRateLimited)
	CodeQuotaExceeded     = string(openapi.VerifyResponseCodeQuotaExceeded)
	CodeInsufficientScope = string(openapi.VerifyResponseCodeInsufficientScope)
)

// Verify checks a key of the client's org for a service that takes keys
// itself (api-keys:verify; metered). A valid check counts toward the
// checked key's rate limit and quota, as a call would. With scopes, a key
// that lacks one is insufficient_scope. An invalid key is a Verification,
// not an error: the error is for a call that failed.
func (k *Keys) Verify(ctx context.Context, key string, scopes ...string) (*Verification, error) {
	body := openapi.VerifyRequest{Key: key}
	if len(scopes) > 0 {
		body.Scopes = &scopes
	}
	r, err := k.c.raw.VerifyKeyWithResponse(ctx, body, withIdempotencyKey)
	if err != nil {
		return nil, err
	}
	v, err := answer(k.c, r.HTTPResponse, r.Body, r.JSON200)
	if err != nil {
		return nil, err
	}
	out := &Verification{Valid: v.Valid, Code: string(v.Code)}
	out.KeyID, _ = v.KeyID.Get()
	out.OrgID, _ = v.OrgID.Get()
	if out.KeyID != "" {
		out.Scopes, out.Superkey = scopesOf(v.Scopes)
	}
	if n, err := v.Remaining.Get(); err == nil {
		out.Remaining = &n
	}
	if w, err := v.RateLimit.Get(); err == nil {
		out.RateLimit = &Window{Limit: w.Limit, Remaining: w.Remaining, Reset: time.Duration(w.Reset) * time.Second}
	}
	return out, nil
}

func envelope(e *openapi.KeyEnvelope, err error) (*Key, error) {
	if err != nil {
		return nil, err
	}
	k := keyOf(e.Key)
	return &k, nil
}

func keyOf(k openapi.Key) Key {
	out := Key{ID: k.ID, OrgID: k.OrgID, Name: k.Name, Prefix: k.Prefix, Last4: k.Last4, Status: string(k.Status),
		Enabled: k.Enabled, Metadata: k.Metadata, ExpiresAt: timeOf(k.ExpiresAt), LastUsed: timeOf(k.LastUsedAt),
		CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy, RevokedAt: timeOf(k.RevokedAt)}
	out.Scopes, out.Superkey = scopesOf(k.Scopes)
	if rl, err := k.RateLimit.Get(); err == nil {
		out.RateLimit = &RateLimit{Limit: rl.Limit, Window: time.Duration(rl.WindowSeconds) * time.Second}
	}
	if rf, err := k.Refill.Get(); err == nil {
		out.Refill = &Refill{Amount: rf.Amount, Interval: time.Duration(rf.IntervalSeconds) * time.Second}
	}
	if n, err := k.Remaining.Get(); err == nil {
		out.Remaining = &n
	}
	return out
}

func created(c *openapi.CreateKeyResponse, err error) (*CreatedKey, error) {
	if err != nil {
		return nil, err
	}
	out := &CreatedKey{Key: keyOf(c.Key), Raw: c.RawKey}
	if p := c.Previous; p != nil {
		out.Previous = &PreviousKey{ID: p.ID, Status: p.Status, ExpiresAt: timeOf(p.ExpiresAt)}
	}
	return out, nil
}

// scopesOf reads a scope list where null is a superkey.
func scopesOf(n nullable.Nullable[[]string]) ([]string, bool) {
	if n.IsNull() {
		return nil, true
	}
	s, _ := n.Get()
	return orEmpty(s), false
}

func timeOf(n nullable.Nullable[time.Time]) *time.Time {
	if t, err := n.Get(); err == nil {
		return &t
	}
	return nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func seconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

func toRateLimit(r RateLimit) openapi.RateLimit {
	return openapi.RateLimit{Limit: r.Limit, WindowSeconds: seconds(r.Window)}
}

func toRefill(r Refill) openapi.Refill {
	return openapi.Refill{Amount: r.Amount, IntervalSeconds: seconds(r.Interval)}
}
