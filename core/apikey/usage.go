package apikey

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"

	"github.com/indigo-hq/indigo/db"
)

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

// SweepLimits drops the limiter's state of keys idle for at least idle
// (ratelimit.Admitter.Sweep), and returns how many keys it dropped. idle
// must be longer than the key cache's lifetime and the usage write-back's
// interval (see ratelimit.Shared.Sweep).
func (s *Service) SweepLimits(idle time.Duration) int {
	return s.limiter.Sweep(s.Now(), max(idle, 2*cacheTTL))
}
