package apikey

import (
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/indigo-hq/indigo/core/jsontime"
	"github.com/indigo-hq/indigo/db"
)

// Statuses. Transitions only move forward: active → expiring → expired, and
// any of them → revoked.
const (
	StatusActive   = "active"
	StatusExpiring = "expiring"
	StatusExpired  = "expired"
	StatusRevoked  = "revoked"
)

// Time is the JSON timestamp of keys (and every other answer).
type Time = jsontime.Time

// RateLimit is a request limit per window.
type RateLimit struct {
	Limit         int64 `json:"limit"`
	WindowSeconds int64 `json:"window_seconds"`
}

// Refill resets the quota to Amount every IntervalSeconds.
type Refill struct {
	Amount          int64 `json:"amount"`
	IntervalSeconds int64 `json:"interval_seconds"`
}

// Key is the public view of an API key: never the hash, never the key.
type Key struct {
	ID         string          `json:"id"`
	OrgID      string          `json:"org_id"`
	Name       string          `json:"name"`
	Prefix     string          `json:"prefix"`
	Last4      string          `json:"last4"`
	Scopes     []string        `json:"scopes"` // null = superkey
	Status     string          `json:"status"`
	Enabled    bool            `json:"enabled"`
	Metadata   json.RawMessage `json:"metadata"`
	RateLimit  *RateLimit      `json:"rate_limit"`
	Remaining  *int64          `json:"remaining"`
	Refill     *Refill         `json:"refill"`
	ExpiresAt  *Time           `json:"expires_at"`
	LastUsedAt *Time           `json:"last_used_at"`
	CreatedAt  Time            `json:"created_at"`
	CreatedBy  string          `json:"created_by"`
	RevokedAt  *Time           `json:"revoked_at"`
}

// Record is a stored key as the verify path needs it. It is immutable once
// built; a change replaces it.
type Record struct {
	Row      db.SaasApiKey
	Scopes   []string
	Superkey bool
	digest   [32]byte
	usage    atomic.Pointer[usage] // this key's last use, found once per record

	// Memo lets a handler cache a rendering of this record (the /me body):
	// it stays valid exactly as long as the record does.
	Memo sync.Map
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func optTime(v sql.NullInt64) *Time {
	if !v.Valid {
		return nil
	}
	return &Time{Time: fromMS(v.Int64)}
}

func optInt(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	x := v.Int64
	return &x
}

func nullInt(p *int64) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *p, Valid: true}
}

func nullTime(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: ms(*t), Valid: true}
}

// newRecord decodes a row. A stored scope list that does not parse is
// treated as granting nothing rather than everything.
func newRecord(row db.SaasApiKey) *Record {
	r := &Record{Row: row}
	_, _ = hex.Decode(r.digest[:], []byte(row.KeyHash))
	if !row.Scopes.Valid {
		r.Superkey = true
		return r
	}
	if err := json.Unmarshal([]byte(row.Scopes.String), &r.Scopes); err != nil || r.Scopes == nil {
		r.Scopes = []string{}
	}
	return r
}

// EffectiveStatus is the status at now: a key past expires_at is expired
// whether or not the maintenance task has run yet.
func (r *Record) EffectiveStatus(now time.Time) string {
	st := r.Row.Status
	if (st == StatusActive || st == StatusExpiring) && r.Row.ExpiresAt.Valid && ms(now) >= r.Row.ExpiresAt.Int64 {
		return StatusExpired
	}
	return st
}

// Public converts a record to its API view.
func (r *Record) Public(now time.Time) Key {
	row := r.Row
	k := Key{
		ID: row.ID, OrgID: row.OrgID, Name: row.Name, Prefix: row.Prefix, Last4: row.Last4,
		Status: r.EffectiveStatus(now), Enabled: row.Enabled, Metadata: json.RawMessage(row.Metadata),
		Remaining: optInt(row.Remaining), ExpiresAt: optTime(row.ExpiresAt), LastUsedAt: optTime(row.LastUsedAt),
		CreatedAt: Time{Time: fromMS(row.CreatedAt)}, CreatedBy: row.CreatedBy, RevokedAt: optTime(row.RevokedAt),
	}
	if !r.Superkey {
		k.Scopes = append([]string{}, r.Scopes...)
	}
	if row.RateLimit.Valid && row.RateWindowSeconds.Valid {
		k.RateLimit = &RateLimit{Limit: row.RateLimit.Int64, WindowSeconds: row.RateWindowSeconds.Int64}
	}
	if row.RefillAmount.Valid && row.RefillIntervalSeconds.Valid {
		k.Refill = &Refill{Amount: row.RefillAmount.Int64, IntervalSeconds: row.RefillIntervalSeconds.Int64}
	}
	switch {
	case len(k.Metadata) == 0:
		k.Metadata = json.RawMessage("{}")
	case !utf8.ValidString(row.Metadata):
		// Stored on SQLite before requests were checked for it; the bytes
		// can only sit inside strings, so U+FFFD keeps the JSON valid.
		k.Metadata = json.RawMessage(strings.ToValidUTF8(row.Metadata, "\uFFFD"))
	}
	return k
}
