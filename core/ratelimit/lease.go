package ratelimit

import (
	"sync"
	"sync/atomic"
	"time"
)

// Leases. A key called often on one host costs a round trip to Redis per
// few calls even when batched, and on a small machine that round trip
// (system calls on both sides, Redis's CPU) costs more than the rest of
// the request. So a host that calls a rate-limited key often asks, with a
// call that goes to Redis anyway, for a lease: calls that the script
// counts in the key's log at once, and that the host then admits on its
// own, without a round trip, for the lease time after it asked (a 64th of
// the window, at most 50 ms).
//
// The limit stays exact: the script counts a lease's calls for a window
// after the lease time ends, so however the host spreads them over the
// lease time, no window's length admits more than the limit (admitScript).
// The price is on the other side: calls of a lease the host does not use
// (its traffic stopped) still count until they leave the window. That is
// at most what the host used in one lease time, and never more than a
// 64th of what the window had left; a key with fewer than 256 calls left
// in its window gets no leases at all, so its calls are decided one by
// one as before.
// A key with a quota gets no leases either: its quota is decremented call
// by call.

// leaseTime is how long a lease may be used after the host asked for it;
// admitScript computes the same from the window, and a lease of less
// than a millisecond is not granted.
func leaseTime(window time.Duration) time.Duration {
	return min(window/64, 50*time.Millisecond)
}

// minLeaseWant is the least a host asks for: below it, a lease saves
// too few round trips to be worth the calls it may leave unused.
const minLeaseWant = 4

// maxLeaseWant bounds one lease.
const maxLeaseWant = 1 << 16

// leaseEpoch is the start of the monotonic clock that leases are timed on.
// wall clock: only its monotonic reading is used (time.Since)
var leaseEpoch = time.Now()

func leaseClock() int64 {
	// wall clock: a lease runs on this process's monotonic clock, as Redis decides on its own
	return int64(time.Since(leaseEpoch))
}

// grant is one lease as the host uses it.
type grant struct {
	left  atomic.Int64 // calls not yet used
	until int64        // leaseClock: the end of the lease time
	// after is what the window had left beside the lease when it was
	// granted, and reset the window's reset then: for the headers.
	after int64
	reset time.Duration
}

// keyLease is a key's lease on this host, for one policy.
type keyLease struct {
	limit  int64
	window time.Duration
	cur    atomic.Pointer[grant]
	// hits counts the key's calls since the last ask, at lastAsk, to size
	// the next lease to the host's rate; asking is held while one call
	// carries the ask, so that concurrent calls do not take a lease each.
	hits    atomic.Int64
	lastAsk atomic.Int64
	asking  atomic.Bool
}

// leases holds the keyLease of every key this host leased for.
type leases struct {
	m sync.Map // key id -> *keyLease
}

func (l *leases) of(id string, p Policy) *keyLease {
	if v, ok := l.m.Load(id); ok {
		if kl := v.(*keyLease); kl.limit == p.Limit && kl.window == p.Window {
			return kl
		}
	}
	kl := &keyLease{limit: p.Limit, window: p.Window}
	kl.lastAsk.Store(leaseClock())
	l.m.Store(id, kl)
	return kl
}

// idleSince says whether the key's lease has ended and no call asked for
// one since cutoff (leaseClock): every call past a lease's end goes to
// Redis and asks, so the key had no call since then.
func (kl *keyLease) idleSince(cutoff int64) bool {
	if g := kl.cur.Load(); g != nil && g.until > cutoff {
		return false
	}
	return kl.lastAsk.Load() < cutoff
}

// Delete drops a key's lease: its unused calls are not admitted.
func (l *leases) Delete(id string) { l.m.Delete(id) }

// use admits one call from the key's lease, if it has one still running.
func (kl *keyLease) use(p Policy) (Decision, bool) {
	kl.hits.Add(1)
	g := kl.cur.Load()
	if g == nil {
		return Decision{}, false
	}
	// The call is taken first, then the time checked: a call taken from
	// a lease is admitted only while that same lease runs.
	left := g.left.Add(-1)
	if left < 0 || leaseClock() >= g.until {
		return Decision{}, false
	}
	return Decision{Limit: p.Limit, Remaining: g.after + left, Reset: g.reset}, true
}

// want is what to ask for with the call about to go to Redis: about the
// calls this host made in the last lease time; 0 when another call asks
// already or the rate is too low to be worth a lease. A call that asks
// must call asked when the answer comes.
func (kl *keyLease) want() int64 {
	d := leaseTime(kl.window)
	if d < time.Millisecond || !kl.asking.CompareAndSwap(false, true) {
		return 0
	}
	now := leaseClock()
	since := now - kl.lastAsk.Swap(now)
	hits := kl.hits.Swap(0)
	if since <= 0 {
		kl.asking.Store(false)
		return 0
	}
	w := min(hits*int64(d)/since, maxLeaseWant)
	if w < minLeaseWant {
		kl.asking.Store(false)
		return 0
	}
	return w
}

// asked ends an ask: n calls were leased from start (leaseClock, taken
// before the call went to Redis, so that the lease time runs from no
// later than Redis's grant).
func (kl *keyLease) asked(start, n int64, d Decision) {
	if n > 0 {
		g := &grant{until: start + int64(leaseTime(kl.window)), after: max(d.Remaining-n, 0), reset: d.Reset}
		g.left.Store(n)
		kl.cur.Store(g)
	}
	kl.asking.Store(false)
}
