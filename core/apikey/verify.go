package apikey

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"time"

	"github.com/indigo-hq/indigo/core/ratelimit"
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

// CacheStats reports verify cache hits and misses.
func (s *Service) CacheStats() (hits, misses uint64) {
	return s.cache.Stats()
}

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
	rec, ok, gen := s.cache.Get(parsed.Digest, now)
	if ok {
		s.cache.Hit()
	} else {
		if !checksumValid(raw) { // a typo or a made-up key: no lookup, nothing cached
			return nil, CodeNotFound, nil
		}
		unknown := !s.known.mayExist(&parsed.Digest)
		if unknown && !s.known.allowLookup() {
			// Never stored, as far as this host knows, and the lookups
			// left for keys created a moment ago elsewhere are spent.
			s.known.refused.Add(1)
			return nil, CodeNotFound, nil
		}
		s.cache.Miss()
		if s.settings.QueryTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.settings.QueryTimeout)
			defer cancel()
		}
		row, err := s.store.Q().GetKeyByHash(ctx, parsed.Hash())
		id := ""
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if unknown {
				s.known.missed()
			}
		case err != nil:
			return nil, "", err
		default:
			rec, id = newRecord(row), row.ID
			s.learnKey(parsed.Digest)
		}
		s.cache.Put(parsed.Digest, id, rec, gen, now)
	}
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
