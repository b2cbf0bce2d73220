// Package notify tells the outside world about API-key changes.
//
// Key changes write an Event into saas_key_events inside the transaction
// that makes the change (a transactional outbox), so an event exists exactly
// when its change committed. A Dispatcher then gives every registered
// Notifier a delivery row for each event (saas_event_deliveries) and works
// those rows off, retrying with backoff until the notifier takes the event or
// the attempts run out. Delivery is at least once: a row stays pending
// through restarts and crashes until it is delivered or failed, so receivers
// should deduplicate on the event id.
package notify

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/indigo-hq/indigo/db"
)

// Event types.
const (
	KeyCreated      = "key.created"
	KeyRolled       = "key.rolled"
	KeyRevoked      = "key.revoked"
	KeyDisabled     = "key.disabled"
	KeyEnabled      = "key.enabled"
	KeyExpiringSoon = "key.expiring_soon"
	KeyExpired      = "key.expired"
)

// ActorSystem is the actor of events that no person caused (expiry).
const ActorSystem = "system"

// Event is one key event, as notifiers receive it and as the webhook body
// carries it. It never holds the key or its hash.
type Event struct {
	ID    string    `json:"id"`   // unique; receivers deduplicate on it
	Type  string    `json:"type"` // one of the Key* constants
	Time  time.Time `json:"time"` // when the change happened (RFC 3339, UTC)
	OrgID string    `json:"org_id"`
	Key   Key       `json:"key"`
	// Actor is who made the change: "user:<id>", "key:<id>", "cli", or
	// "system" for expiry.
	Actor string `json:"actor"`
	// Successor is the key that replaces Key, on key.rolled only.
	Successor *Key `json:"successor,omitempty"`
}

// Key is the key an event is about: what identifies it, never the secret.
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Last4     string     `json:"last4"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Notifier receives events. Name identifies it in the delivery rows, so it
// must be stable across restarts and unique within a host. Notify returns
// nil once the event is taken; any error makes the dispatcher try again
// later. It may see an event more than once.
type Notifier interface {
	Name() string
	Notify(ctx context.Context, ev Event) error
}

// KeyOf is the event view of a key row.
func KeyOf(row db.SaasApiKey) Key {
	return Key{ID: row.ID, Name: row.Name, Prefix: row.Prefix, Last4: row.Last4, ExpiresAt: msTime(row.ExpiresAt)}
}

func msTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

// NewEvent is an event of typ at the given time, with a new id. The time is
// kept to the millisecond, as the database stores it.
func NewEvent(typ string, at time.Time, orgID string, key Key, actor string) Event {
	at = time.UnixMilli(at.UnixMilli()).UTC()
	return Event{ID: NewEventID(at), Type: typ, Time: at, OrgID: orgID, Key: key, Actor: actor}
}

// NewEventID is "evt_" and 26 Crockford base-32 characters: 10 of time, so
// ids sort by creation, and 16 random.
func NewEventID(at time.Time) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [26]byte
	t := uint64(at.UnixMilli())
	for i := 9; i >= 0; i-- {
		b[i] = alphabet[t&31]
		t >>= 5
	}
	var r [16]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand)
	for i := range r {
		b[10+i] = alphabet[r[i]&31]
	}
	return "evt_" + string(b[:])
}

// Record writes ev in the caller's transaction, which should be the one
// that makes the change it reports. With a dedupeKey, an event already
// written under the same key is skipped and Record reports false.
func Record(ctx context.Context, q db.Querier, ev Event, dedupeKey string) (bool, error) {
	if ev.ID == "" || ev.Type == "" || ev.Key.ID == "" {
		return false, fmt.Errorf("notify: event needs an id, a type and a key")
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return false, err
	}
	n, err := q.InsertKeyEvent(ctx, db.InsertKeyEventParams{
		ID: ev.ID, OrgID: ev.OrgID, KeyID: ev.Key.ID, Type: ev.Type, Payload: string(payload),
		DedupeKey: sql.NullString{String: dedupeKey, Valid: dedupeKey != ""}, CreatedAt: ev.Time.UnixMilli(),
	})
	if err != nil {
		return false, fmt.Errorf("record %s event: %w", ev.Type, err)
	}
	return n > 0, nil
}

// ExpiringSoonDedupeKey makes key.expiring_soon once per key and expires_at
// value. ListExpiringSoonKeys builds the same string in SQL.
func ExpiringSoonDedupeKey(keyID string, expiresAtMS int64) string {
	return fmt.Sprintf("%s:%s:%d", KeyExpiringSoon, keyID, expiresAtMS)
}

const expiringBatch = 200

// ExpiringSoon writes key.expiring_soon for every active or expiring key
// whose expires_at falls within window from now and that has had none for
// that expires_at; a later expires_at (a changed expiry) gets its own. It is
// the body of the maintenance task and returns how many events it wrote.
// Running it twice, or on two hosts at once, writes each event once: the
// dedupe key is unique.
func ExpiringSoon(ctx context.Context, store *db.Store, now time.Time, window time.Duration) (int64, error) {
	if window <= 0 {
		return 0, nil
	}
	var total int64
	for {
		var wrote, seen int
		err := store.Tx(ctx, func(q db.Querier) error {
			rows, err := q.ListExpiringSoonKeys(ctx, db.ListExpiringSoonKeysParams{
				Now: now.UnixMilli(), Until: now.Add(window).UnixMilli(), Lim: expiringBatch,
			})
			if err != nil {
				return err
			}
			seen = len(rows)
			for _, r := range rows {
				k := Key{ID: r.ID, Name: r.Name, Prefix: r.Prefix, Last4: r.Last4, ExpiresAt: msTime(r.ExpiresAt)}
				ok, err := Record(ctx, q, NewEvent(KeyExpiringSoon, now, r.OrgID, k, ActorSystem), ExpiringSoonDedupeKey(r.ID, r.ExpiresAt.Int64))
				if err != nil {
					return err
				}
				if ok {
					wrote++
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += int64(wrote)
		if seen < expiringBatch || wrote == 0 {
			return total, nil
		}
	}
}
