package apikey

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/indigo-hq/indigo/core/internal/striped"
	"github.com/indigo-hq/indigo/core/ratelimit"
	"github.com/indigo-hq/indigo/db"
)

// Verification codes, as the verify endpoint reports them.
const (
	CodeValid             = "valid"
	CodeNotFound          = "not_found"
	CodeDisabled          = "disabled"
	CodeExpired           = "expired"
	CodeRevoked           = "revoked"
	CodeRateLimited       = "rate_limited"
	CodeQuotaExceeded     = "quota_exceeded"
	CodeInsufficientScope = "insufficient_scope"
)

// maxNegative bounds the cache of hashes that matched no key.
const maxNegative = 10000

type entry struct {
	rec     *Record // nil: no such key
	expires time.Time
}

// cache maps key hashes to records. Reads take no lock and write no shared
// memory (a sync.Map load and an atomic load), so that verify does not make
// the cores fight over one cache line; writers (a miss being filled, an
// invalidation) serialise on mu. A generation counter stops a lookup that
// raced an invalidation from storing what it read before the change.
type cache struct {
	byHash sync.Map // [32]byte -> entry
	gen    atomic.Uint64

	mu       sync.Mutex
	hashByID map[string][32]byte
	negative int

	hits, misses striped.Counter
}

// entryTTL bounds how long a record is trusted without a change-feed event,
// as a backstop; invalidation is what makes changes immediate.
const entryTTL = 5 * time.Minute

func newCache() *cache {
	return &cache{hashByID: map[string][32]byte{}}
}

// get returns the cached entry, and the generation to hand to put when it
// is missing. The generation is read first: an invalidation after that
// point makes the put a no-op.
func (c *cache) get(hash [32]byte, now time.Time) (entry, bool, uint64) {
	gen := c.gen.Load()
	v, ok := c.byHash.Load(hash)
	if !ok {
		return entry{}, false, gen
	}
	e := v.(entry)
	if now.After(e.expires) {
		return entry{}, false, gen
	}
	return e, true, gen
}

func (c *cache) put(hash [32]byte, rec *Record, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen.Load() {
		return
	}
	if rec == nil {
		if c.negative >= maxNegative {
			c.byHash.Range(func(h, v any) bool {
				if v.(entry).rec == nil {
					c.byHash.Delete(h)
				}
				return true
			})
			c.negative = 0
		}
		c.negative++
	} else {
		c.hashByID[rec.Row.ID] = hash
	}
	c.byHash.Store(hash, entry{rec: rec, expires: now.Add(entryTTL)})
}

func (c *cache) invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if h, ok := c.hashByID[id]; ok {
		c.byHash.Delete(h)
		delete(c.hashByID, id)
	}
}

// CacheStats reports verify cache hits and misses.
func (s *Service) CacheStats() (hits, misses uint64) {
	return s.cache.hits.Load(), s.cache.misses.Load()
}

// Invalidate drops a key's cached record, so the next request reads it
// again. Mutations made by this process call it directly; FollowChanges
// calls it for changes made elsewhere.
func (s *Service) Invalidate(id string) { s.cache.invalidate(id) }

// Verify looks a presented key up: shape and checksum first, then the cache,
// then the database (a read, never a write). It returns the record and
// CodeValid, or a nil record and why not.
func (s *Service) Verify(ctx context.Context, raw string) (*Record, string, error) {
	return s.VerifyAt(ctx, raw, s.now())
}

// VerifyAt is Verify at a time the caller already read from Now, so that
// one request reads the clock once.
func (s *Service) VerifyAt(ctx context.Context, raw string, now time.Time) (*Record, string, error) {
	parsed, ok := parseShape(raw)
	if !ok {
		return nil, CodeNotFound, nil
	}
	e, ok, gen := s.cache.get(parsed.Digest, now)
	if ok {
		s.cache.hits.Inc()
	} else {
		if !checksumValid(raw) { // a typo or a made-up key: no lookup, nothing cached
			return nil, CodeNotFound, nil
		}
		s.cache.misses.Inc()
		row, err := s.store.Q().GetKeyByHash(ctx, parsed.Hash())
		switch {
		case errors.Is(err, sql.ErrNoRows):
			e = entry{}
		case err != nil:
			return nil, "", err
		default:
			e = entry{rec: newRecord(row)}
		}
		s.cache.put(parsed.Digest, e.rec, gen, now)
	}
	rec := e.rec
	if rec == nil || subtle.ConstantTimeCompare(rec.digest[:], parsed.Digest[:]) != 1 {
		return nil, CodeNotFound, nil
	}
	switch rec.EffectiveStatus(now) {
	case StatusRevoked:
		return rec, CodeRevoked, nil
	case StatusExpired:
		return rec, CodeExpired, nil
	}
	if !rec.Row.Enabled {
		return rec, CodeDisabled, nil
	}
	return rec, CodeValid, nil
}

// Policy is the record's rate limit and quota.
func (r *Record) Policy() ratelimit.Policy {
	row := r.Row
	p := ratelimit.Policy{Epoch: row.QuotaEpoch}
	if row.RateLimit.Valid && row.RateWindowSeconds.Valid {
		p.Limit, p.Window = row.RateLimit.Int64, time.Duration(row.RateWindowSeconds.Int64)*time.Second
	}
	if row.Remaining.Valid {
		v := row.Remaining.Int64
		p.Remaining = &v
	}
	if row.RefillAmount.Valid && row.RefillIntervalSeconds.Valid {
		p.RefillAmount, p.RefillInterval = row.RefillAmount.Int64, time.Duration(row.RefillIntervalSeconds.Int64)*time.Second
	}
	if row.LastRefillAt.Valid {
		p.LastRefill = fromMS(row.LastRefillAt.Int64)
	}
	return p
}

// Admit applies the key's rate limit and quota to one call, and records the
// use in memory (saved later by FlushUsage).
func (s *Service) Admit(rec *Record) ratelimit.Decision { return s.AdmitAt(rec, s.now()) }

// AdmitAt is Admit at a time the caller already read from Now.
func (s *Service) AdmitAt(rec *Record, now time.Time) ratelimit.Decision {
	d := s.limiter.Admit(rec.Row.ID, rec.Policy(), now)
	if d.Code == ratelimit.OK {
		s.touch(rec, now)
	}
	return d
}

type usage struct {
	last    atomic.Int64 // ms of the latest use
	written int64        // ms last saved, guarded by flushMu
}

func (s *Service) touch(rec *Record, now time.Time) {
	u := rec.usage.Load()
	if u == nil {
		v, ok := s.usage.Load(rec.Row.ID)
		if !ok {
			v, _ = s.usage.LoadOrStore(rec.Row.ID, &usage{})
		}
		u = v.(*usage)
		rec.usage.Store(u)
	}
	// Only a later time is stored: most calls land in a millisecond already
	// recorded, and a load does not take the cache line from other cores.
	if n := ms(now); u.last.Load() < n {
		u.last.Store(n)
	}
}

// lastUsedEvery is how stale last_used_at may get in the database.
const lastUsedEvery = time.Minute

// FlushUsage saves last_used_at (at most once a minute per key unless all)
// and the in-memory quotas. It runs in the background, never on a request.
func (s *Service) FlushUsage(ctx context.Context, all bool) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	var errs []error
	s.usage.Range(func(k, v any) bool {
		u := v.(*usage)
		last := u.last.Load()
		if last <= u.written || (!all && u.written != 0 && last-u.written < lastUsedEvery.Milliseconds()) {
			return true
		}
		if err := s.store.Q().TouchKeyLastUsed(ctx, db.TouchKeyLastUsedParams{ID: k.(string), LastUsedAt: sql.NullInt64{Int64: last, Valid: true}}); err != nil {
			errs = append(errs, err)
			return true
		}
		u.written = last
		return true
	})
	for _, q := range s.limiter.TakeDirty() {
		_, err := s.store.Q().SaveKeyQuota(ctx, db.SaveKeyQuotaParams{
			ID: q.KeyID, QuotaEpoch: q.Epoch, Remaining: sql.NullInt64{Int64: q.Remaining, Valid: true},
			LastRefillAt: sql.NullInt64{Int64: ms(q.LastRefill), Valid: !q.LastRefill.IsZero()},
		})
		if err != nil {
			s.limiter.MarkDirty(q.KeyID)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

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

// Store is the database this service uses.
func (s *Service) Store() *db.Store { return s.store }
