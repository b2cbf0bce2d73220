// Package ratelimit admits or rejects calls per key: a request limit over a
// sliding window and an optional quota (remaining calls, refilled on a
// schedule). "N per window" means that no interval of the window's length
// admits more than N calls: the limiter keeps the times of the calls it
// admitted within the last window (a log, at most N entries per key) and
// admits a call only while fewer than N remain. Both are exact within one
// process, including under concurrency, and a rejected call counts against
// neither. Shared (redis.go) does the same across hosts, in Redis.
package ratelimit

import (
	"sync"
	"time"
)

// Policy is a key's limits, as stored with the key.
type Policy struct {
	Limit  int64         // requests per window; 0 = unlimited
	Window time.Duration // window length
	// Quota: Remaining nil means no quota.
	Remaining      *int64
	RefillAmount   int64
	RefillInterval time.Duration
	LastRefill     time.Time // when the stored Remaining was last refilled
	// Epoch moves whenever Remaining is set explicitly (create, update), so
	// the in-memory count restarts from the new value; otherwise the
	// in-memory count is the truth and is saved back lazily.
	Epoch int64
}

// Code says why a call was refused.
type Code string

// Decision codes.
const (
	OK            Code = ""
	RateLimited   Code = "rate_limited"
	QuotaExceeded Code = "quota_exceeded"
)

// Decision is the outcome of Admit, with what the headers need.
type Decision struct {
	Code      Code
	Limit     int64         // 0 when the key has no rate limit
	Remaining int64         // calls left in this window
	Reset     time.Duration // until the window resets
	// Quota left after this call; nil without a quota.
	QuotaRemaining *int64
	RetryAfter     time.Duration
}

type state struct {
	mu         sync.Mutex
	loaded     bool
	limit      int64
	window     time.Duration
	epoch      int64
	log        admitted // the calls admitted within the last window
	remaining  *int64
	lastRefill time.Time
	dirty      bool // remaining differs from what is stored
	// dropped is set by Sweep, which took the state out of the map: a
	// caller that got it before then gets the map's state again.
	dropped bool
}

// Admitter is what the verify path asks to admit a call: this process's
// Limiter, or Shared across hosts.
type Admitter interface {
	Admit(id string, p Policy, now time.Time) Decision
	// TakeDirty returns the quotas spent since the last call, for the
	// write-back to the database; MarkDirty flags one again after a failed
	// save.
	TakeDirty() []Quota
	MarkDirty(id string)
	Current(id string, epoch int64) (Quota, bool)
	Forget(id string)
	// Sweep drops what the limiter keeps for keys it no longer needs, so
	// that its memory follows the keys in use rather than every key ever
	// called, and returns how many keys it dropped. The counts stay: a
	// window with a call in it at now, and a quota, are never dropped.
	// idle is how long a key must have gone without a call before what
	// only saves work or guards a restart goes (Shared's names, leases
	// and lowest quotas seen); the local limiter holds nothing of that
	// kind, and drops a key once its window is empty.
	Sweep(now time.Time, idle time.Duration) int
}

var (
	_ Admitter = (*Limiter)(nil)
	_ Admitter = (*Shared)(nil)
)

// Limiter keeps the per-key state in memory.
type Limiter struct {
	mu   sync.Mutex
	keys map[string]*state
}

// New returns an empty limiter.
func New() *Limiter { return &Limiter{keys: map[string]*state{}} }

func (l *Limiter) get(id string) *state {
	l.mu.Lock()
	s, ok := l.keys[id]
	if !ok {
		s = &state{}
		l.keys[id] = s
	}
	l.mu.Unlock()
	return s
}

// Admit decides one call for key id under policy p at time now.
func (l *Limiter) Admit(id string, p Policy, now time.Time) Decision {
	if (p.Limit <= 0 || p.Window <= 0) && p.Remaining == nil {
		// Nothing to count: no state, no lock. State left from an earlier
		// policy is reset when a limit or a quota comes back (see below),
		// and a quota of an old epoch is never saved over a new one.
		return Decision{Limit: p.Limit}
	}
	s := l.get(id)
	s.mu.Lock()
	for s.dropped {
		s.mu.Unlock()
		s = l.get(id)
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	if !s.loaded || s.limit != p.Limit || s.window != p.Window {
		s.limit, s.window = p.Limit, p.Window
		s.log = admitted{}
	}
	if !s.loaded || s.epoch != p.Epoch || (s.remaining == nil) != (p.Remaining == nil) {
		s.epoch = p.Epoch
		s.remaining, s.lastRefill, s.dirty = nil, p.LastRefill, false
		if p.Remaining != nil {
			v := *p.Remaining
			s.remaining = &v
		}
	}
	s.loaded = true
	d := Decision{Limit: p.Limit}

	limited := p.Limit > 0 && p.Window > 0
	if limited {
		s.log.expire(now.Add(-p.Window))
		if int64(s.log.len()) >= p.Limit {
			// The oldest call in the window leaves it first.
			d.Code, d.Remaining = RateLimited, 0
			d.Reset = s.log.oldest().Add(p.Window).Sub(now)
			d.RetryAfter = d.Reset
			d.QuotaRemaining = s.quotaView()
			return d
		}
	}

	if s.remaining != nil {
		if p.RefillAmount > 0 && p.RefillInterval > 0 {
			if s.lastRefill.IsZero() {
				s.lastRefill = now
			}
			if n := now.Sub(s.lastRefill) / p.RefillInterval; n >= 1 {
				*s.remaining = p.RefillAmount
				s.lastRefill = s.lastRefill.Add(n * p.RefillInterval)
				s.dirty = true
			}
		}
		if *s.remaining <= 0 {
			d.Code = QuotaExceeded
			if p.RefillAmount > 0 && p.RefillInterval > 0 {
				d.RetryAfter = s.lastRefill.Add(p.RefillInterval).Sub(now)
			}
			if limited {
				d.Remaining = p.Limit - int64(s.log.len())
			}
			d.QuotaRemaining = s.quotaView()
			return d
		}
		*s.remaining--
		s.dirty = true
	}
	if limited {
		s.log.push(now)
		d.Remaining = p.Limit - int64(s.log.len())
		d.Reset = s.log.oldest().Add(p.Window).Sub(now)
	}
	d.QuotaRemaining = s.quotaView()
	return d
}

// admitted is a queue of admission times, oldest first, in a ring that
// grows as needed (to at most the limit: a full window rejects).
type admitted struct {
	ring []time.Time
	head int
	n    int
}

func (a *admitted) len() int { return a.n }

func (a *admitted) oldest() time.Time { return a.ring[a.head] }

// expire drops the admissions at or before cutoff: they are out of the
// window (now - window, now].
func (a *admitted) expire(cutoff time.Time) {
	for a.n > 0 && !a.ring[a.head].After(cutoff) {
		a.ring[a.head] = time.Time{}
		a.head = (a.head + 1) % len(a.ring)
		a.n--
	}
}

func (a *admitted) push(t time.Time) {
	if a.n == len(a.ring) {
		grown := make([]time.Time, max(8, 2*len(a.ring)))
		for i := range a.n {
			grown[i] = a.ring[(a.head+i)%len(a.ring)]
		}
		a.ring, a.head = grown, 0
	}
	a.ring[(a.head+a.n)%len(a.ring)] = t
	a.n++
}

func (s *state) quotaView() *int64 {
	if s.remaining == nil {
		return nil
	}
	v := *s.remaining
	return &v
}

// Quota is the in-memory quota of one key, for persisting and for showing.
type Quota struct {
	KeyID      string
	Epoch      int64
	Remaining  int64
	LastRefill time.Time
}

// Current returns the live quota of a key when this process holds state for
// the given quota epoch.
func (l *Limiter) Current(id string, epoch int64) (Quota, bool) {
	l.mu.Lock()
	s, ok := l.keys[id]
	l.mu.Unlock()
	if !ok {
		return Quota{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch || s.remaining == nil {
		return Quota{}, false
	}
	return Quota{KeyID: id, Epoch: s.epoch, Remaining: *s.remaining, LastRefill: s.lastRefill}, true
}

// TakeDirty returns the quotas changed since the last call and marks them
// clean. A failed save should Restore them.
func (l *Limiter) TakeDirty() []Quota {
	l.mu.Lock()
	all := make([]*state, 0, len(l.keys))
	ids := make([]string, 0, len(l.keys))
	for id, s := range l.keys {
		all = append(all, s)
		ids = append(ids, id)
	}
	l.mu.Unlock()
	var out []Quota
	for i, s := range all {
		s.mu.Lock()
		if s.dirty && s.remaining != nil {
			out = append(out, Quota{KeyID: ids[i], Epoch: s.epoch, Remaining: *s.remaining, LastRefill: s.lastRefill})
			s.dirty = false
		}
		s.mu.Unlock()
	}
	return out
}

// MarkDirty flags a key's quota for the next save again.
func (l *Limiter) MarkDirty(id string) {
	l.mu.Lock()
	s, ok := l.keys[id]
	l.mu.Unlock()
	if ok {
		s.mu.Lock()
		s.dirty = s.remaining != nil
		s.mu.Unlock()
	}
}

// Sweep drops the state of keys without a quota whose window holds no call
// at now. A quota's state stays: it is the count, ahead of the stored one.
// idle is for Shared; here an empty window is idle enough, since the state
// then holds nothing that a fresh one would not.
func (l *Limiter) Sweep(now time.Time, _ time.Duration) int {
	l.mu.Lock()
	ids := make([]string, 0, len(l.keys))
	all := make([]*state, 0, len(l.keys))
	for id, s := range l.keys {
		ids, all = append(ids, id), append(all, s)
	}
	l.mu.Unlock()
	n := 0
	for i, s := range all {
		s.mu.Lock()
		if s.remaining == nil && !s.dirty {
			if s.window > 0 {
				s.log.expire(now.Add(-s.window))
			}
			if s.log.len() == 0 {
				l.mu.Lock()
				if l.keys[ids[i]] == s {
					delete(l.keys, ids[i])
					s.dropped = true
					n++
				}
				l.mu.Unlock()
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Forget drops a key's state (after revoke, say).
func (l *Limiter) Forget(id string) {
	l.mu.Lock()
	delete(l.keys, id)
	l.mu.Unlock()
}
