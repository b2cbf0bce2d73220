package ratelimit_test

import (
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/core/ratelimit"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func ptr(v int64) *int64 { return &v }

// hosts is two Shared limiters on one Redis, as two hosts would have.
func hosts(t *testing.T, onError string) (*coretest.RedisServer, *ratelimit.Shared, *ratelimit.Shared) {
	srv := coretest.Redis(t)
	return srv, ratelimit.NewShared(srv.Client(), onError, "a", quiet), ratelimit.NewShared(srv.Client(), onError, "b", quiet)
}

// concurrently admits n calls alternating over the limiters and counts
// the codes.
func concurrently(n int, p ratelimit.Policy, ls ...*ratelimit.Shared) map[ratelimit.Code]int {
	var mu sync.Mutex
	got := map[ratelimit.Code]int{}
	var wg sync.WaitGroup
	for i := range n {
		l := ls[i%len(ls)]
		wg.Go(func() {
			d := l.Admit("key_1", p, time.Now())
			mu.Lock()
			got[d.Code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return got
}

// Two hosts admit what one would: exactly the limit, under concurrency.
func TestSharedLimitIsExactAcrossHosts(t *testing.T) {
	_, a, b := hosts(t, ratelimit.OnErrorLocal)
	got := concurrently(200, ratelimit.Policy{Limit: 50, Window: time.Minute}, a, b)
	if got[ratelimit.OK] != 50 || got[ratelimit.RateLimited] != 150 {
		t.Fatalf("%v, want 50 admitted and 150 limited", got)
	}
}

// The window slides on Redis's clock: a slot frees a window after the call
// that took it, not at a clock boundary.
func TestSharedWindowSlides(t *testing.T) {
	_, a, b := hosts(t, ratelimit.OnErrorLocal)
	p := ratelimit.Policy{Limit: 3, Window: time.Second}
	for i, l := range []*ratelimit.Shared{a, b, a} {
		if d := l.Admit("key_1", p, time.Now()); d.Code != ratelimit.OK || d.Remaining != int64(2-i) {
			t.Fatalf("call %d: %+v", i, d)
		}
	}
	d := b.Admit("key_1", p, time.Now())
	if d.Code != ratelimit.RateLimited || d.RetryAfter <= 0 || d.RetryAfter > time.Second {
		t.Fatalf("the 4th call: %+v", d)
	}
	time.Sleep(d.RetryAfter + 20*time.Millisecond)
	if d := b.Admit("key_1", p, time.Now()); d.Code != ratelimit.OK {
		t.Fatalf("after the oldest left the window: %+v", d)
	}
}

// remaining = 100 over two hosts and 300 calls: exactly 100 pass, the quota
// never goes below zero, and the write-back reads 0.
func TestSharedQuotaIsExactAcrossHosts(t *testing.T) {
	_, a, b := hosts(t, ratelimit.OnErrorLocal)
	got := concurrently(300, ratelimit.Policy{Remaining: ptr(100)}, a, b)
	if got[ratelimit.OK] != 100 || got[ratelimit.QuotaExceeded] != 200 {
		t.Fatalf("%v, want 100 admitted and 200 over quota", got)
	}
	var saved []ratelimit.Quota
	saved = append(saved, a.TakeDirty()...)
	saved = append(saved, b.TakeDirty()...)
	if len(saved) == 0 || saved[0].Remaining != 0 {
		t.Fatalf("write-back: %+v", saved)
	}
	if q, ok := a.Current("key_1", 0); !ok || q.Remaining != 0 {
		t.Fatalf("current: %+v %v", q, ok)
	}
}

// A call the limit refuses takes no quota.
func TestSharedRefusalCountsAgainstNeither(t *testing.T) {
	_, a, _ := hosts(t, ratelimit.OnErrorLocal)
	p := ratelimit.Policy{Limit: 2, Window: time.Minute, Remaining: ptr(10)}
	for range 5 {
		a.Admit("key_1", p, time.Now())
	}
	if q, _ := a.Current("key_1", 0); q.Remaining != 8 {
		t.Fatalf("quota after 2 admitted and 3 limited: %d, want 8", q.Remaining)
	}
}

// Without Redis: a key with no limit needs none; "local" gives each live
// host its share and says so; recovery is automatic; "deny" refuses.
func TestSharedFallback(t *testing.T) {
	srv, a, _ := hosts(t, ratelimit.OnErrorLocal)
	srv.Stop()
	if d := a.Admit("free", ratelimit.Policy{}, time.Now()); d.Code != ratelimit.OK || a.Degraded() {
		t.Fatalf("a key without limits touched Redis: %+v, degraded %v", d, a.Degraded())
	}
	a.SetLiveHosts(2)
	got := map[ratelimit.Code]int{}
	for range 8 {
		got[a.Admit("key_1", ratelimit.Policy{Limit: 10, Window: time.Minute}, time.Now()).Code]++
	}
	if got[ratelimit.OK] != 5 || got[ratelimit.RateLimited] != 3 || !a.Degraded() {
		t.Fatalf("local fallback with 2 hosts and a limit of 10: %v, degraded %v", got, a.Degraded())
	}
	srv.Start()
	time.Sleep(1100 * time.Millisecond) // a degraded limiter asks Redis again after a second
	if d := a.Admit("key_2", ratelimit.Policy{Limit: 10, Window: time.Minute}, time.Now()); d.Code != ratelimit.OK || a.Degraded() {
		t.Fatalf("after Redis came back: %+v, degraded %v", d, a.Degraded())
	}

	deny := ratelimit.NewShared(srv.Client(), ratelimit.OnErrorDeny, "c", quiet)
	srv.Stop()
	if d := deny.Admit("key_1", ratelimit.Policy{Limit: 10, Window: time.Minute}, time.Now()); d.Code != ratelimit.RateLimited {
		t.Fatalf("deny while Redis is down: %+v", d)
	}
}

// A Redis restart loses the counts; a host starts the quota again from the
// lowest it saw, not from the older value of the key's record, so it
// re-grants nothing it had already spent.
func TestSharedQuotaAfterARedisRestart(t *testing.T) {
	srv, a, _ := hosts(t, ratelimit.OnErrorLocal)
	stale := ratelimit.Policy{Remaining: ptr(100)} // the cached record's value
	for range 30 {
		a.Admit("key_1", stale, time.Now())
	}
	srv.Stop()
	srv.Start()
	d := a.Admit("key_1", stale, time.Now())
	if d.Code != ratelimit.OK || d.QuotaRemaining == nil || *d.QuotaRemaining != 69 {
		t.Fatalf("after the restart: %+v (remaining %v), want 69", d, d.QuotaRemaining)
	}
}

// With Redis gone, a host spends its share of what Redis last said was
// left, not of the key's older record.
func TestSharedQuotaFallbackUsesWhatWasLeft(t *testing.T) {
	srv, a, _ := hosts(t, ratelimit.OnErrorLocal)
	stale := ratelimit.Policy{Remaining: ptr(100)}
	for range 40 {
		a.Admit("key_1", stale, time.Now())
	}
	srv.Stop()
	a.SetLiveHosts(2)
	ok := 0
	for range 100 {
		if a.Admit("key_1", stale, time.Now()).Code == ratelimit.OK {
			ok++
		}
	}
	if ok != 30 {
		t.Fatalf("admitted %d without Redis, want 30 (half of the 60 left)", ok)
	}
}

// What a host spent on its own while Redis was unreachable comes off the
// shared count when Redis answers again, whether Redis kept its data (a
// network fault) or lost it (a restart): the outage grants no call twice.
func TestSharedFallbackSpendingIsTakenOffAfterward(t *testing.T) {
	for _, restart := range []bool{false, true} {
		srv, a, b := hosts(t, ratelimit.OnErrorLocal)
		p := ratelimit.Policy{Remaining: ptr(100)}
		for range 20 {
			a.Admit("key_1", p, time.Now())
		}
		if restart {
			srv.Stop()
		} else {
			srv.Pause()
		}
		a.SetLiveHosts(2)
		ok := 0
		for range 10 {
			if a.Admit("key_1", p, time.Now()).Code == ratelimit.OK {
				ok++
			}
		}
		if ok != 10 {
			t.Fatalf("admitted %d of 10 without Redis (a share of 40)", ok)
		}
		if restart {
			srv.Start() // empty: the data is gone
		} else {
			srv.Resume() // the same data
		}
		time.Sleep(1100 * time.Millisecond)
		// 100 - 20 before - 10 during the outage - this call = 69. A
		// paused Redis also runs, once it resumes, the call that timed out
		// (and was then admitted locally): 68, the safe side.
		d := a.Admit("key_1", p, time.Now())
		want := []int64{69}
		if !restart {
			want = append(want, 68)
		}
		if d.Code != ratelimit.OK || d.QuotaRemaining == nil || !slices.Contains(want, *d.QuotaRemaining) || a.Degraded() {
			t.Fatalf("restart %v: after the outage %+v (remaining %v), want %v", restart, d, d.QuotaRemaining, want)
		}
		if got := concurrently(100, p, a, b); int64(got[ratelimit.OK]) != *d.QuotaRemaining {
			t.Fatalf("restart %v: %v more admitted after the outage, want %d", restart, got, *d.QuotaRemaining)
		}
	}
}

// The log keeps one member per script run, whatever the number of calls
// it admitted, and counts the calls, not the members: when the older of
// two groups leaves the window, exactly its calls free up.
func TestSharedLogCountsCallsAsTheyLeave(t *testing.T) {
	srv, a, _ := hosts(t, ratelimit.OnErrorLocal)
	p := ratelimit.Policy{Limit: 10, Window: time.Second}
	together := func(n, want int) {
		t.Helper()
		if got, err := a.AdmitTogether("key_1", p, n); err != nil || got != want {
			t.Fatalf("%d calls together: %d admitted (%v), want %d", n, got, err, want)
		}
	}
	together(6, 6)
	time.Sleep(500 * time.Millisecond)
	together(7, 4)
	if members, err := srv.Client().ZCard(t.Context(), "indigo:rlog:key_1").Result(); err != nil || members != 2 {
		t.Fatalf("the log has %d members (%v), want 2", members, err)
	}
	time.Sleep(600 * time.Millisecond) // the first group has left, the second has not
	together(8, 6)
}

// admitUntilRefused admits calls of key on l until one is refused and
// returns how many were admitted.
func admitUntilRefused(t *testing.T, l *ratelimit.Shared, key string, p ratelimit.Policy) int {
	t.Helper()
	for n := 0; ; n++ {
		if d := l.Admit(key, p, time.Now()); d.Code != ratelimit.OK {
			if d.Code != ratelimit.RateLimited {
				t.Fatalf("after %d admitted: %+v", n, d)
			}
			return n
		}
	}
}

// A leased call may be used until the lease time after its grant, so it
// counts until a window after that: when the call that asked for the lease
// has left the window, its slot frees, but the leased ones stay taken for
// the lease time (50 ms here) more; then they free too.
func TestSharedLeaseCountsUntilItsTimeEnds(t *testing.T) {
	_, a, b := hosts(t, ratelimit.OnErrorLocal)
	// The check must run within the lease time after the window: a
	// machine too busy to do so gets another try, on another key.
	for try := range 3 {
		if leaseScenario(t, a, b, "key_"+strconv.Itoa(try)) {
			return
		}
	}
	t.Fatal("three tries ran past the lease time: too slow a machine to tell")
}

func leaseScenario(t *testing.T, a, b *ratelimit.Shared, key string) (timely bool) {
	p := ratelimit.Policy{Limit: 1000, Window: 3200 * time.Millisecond} // lease time 50 ms
	d, leased := a.LeaseFor(key, p, 10)
	// wall clock: the test waits on the real clock for Redis's window
	granted := time.Now()
	if d.Code != ratelimit.OK || leased != 10 {
		t.Fatalf("asked for a lease of 10: %+v, %d leased", d, leased)
	}
	r0, _ := a.Decided()
	l0 := a.Leased()
	for i := range 10 {
		if d := a.Admit(key, p, time.Now()); d.Code != ratelimit.OK || d.Remaining != int64(1000-11+9-i) {
			t.Fatalf("leased call %d: %+v", i, d)
		}
	}
	if r1, _ := a.Decided(); r1 != r0 || a.Leased()-l0 != 10 {
		t.Fatalf("the leased calls made %d round trips and %d came from the lease, want 0 and 10", r1-r0, a.Leased()-l0)
	}
	// The other host's calls come later, so that they are still in the
	// window when the lease's run has left it.
	time.Sleep(500 * time.Millisecond)
	if n := admitUntilRefused(t, b, key, p); n != 1000-11 {
		t.Fatalf("another host admitted %d, want the %d the lease and its call left", n, 1000-11)
	}
	time.Sleep(time.Until(granted.Add(p.Window + 15*time.Millisecond)))
	n := admitUntilRefused(t, b, key, p)
	// wall clock: whether the check ran within the lease time
	if late := time.Since(granted) - p.Window; late >= 50*time.Millisecond {
		t.Logf("%s: the check ran %v after the window, past the lease time (%d admitted)", key, late, n)
		return false
	}
	if n != 1 {
		t.Fatalf("within the lease time after the window: %d admitted, want 1 (the asking call's slot; the leased calls still count)", n)
	}
	time.Sleep(time.Until(granted.Add(p.Window + 80*time.Millisecond)))
	if n := admitUntilRefused(t, b, key, p); n != 10 {
		t.Fatalf("after the lease time: %d admitted, want the 10 leased", n)
	}
	return true
}

// A busy key saves most round trips, and a key near its limit gets no
// lease: the limit is kept exactly as without leases.
func TestSharedLeasesSaveRoundTrips(t *testing.T) {
	_, a, b := hosts(t, ratelimit.OnErrorLocal)
	p := ratelimit.Policy{Limit: 1_000_000, Window: time.Second}
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range 8 {
		l := []*ratelimit.Shared{a, b}[i%2]
		wg.Go(func() {
			for range 5000 {
				if l.Admit("key_1", p, time.Now()).Code != ratelimit.OK {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	ra, _ := a.Decided()
	rb, _ := b.Decided()
	leased := a.Leased() + b.Leased()
	if refused.Load() != 0 || ra+rb+leased != 40000 || leased < 30000 {
		t.Fatalf("40000 calls: %d refused, %d decided by a round trip, %d from leases; want none refused and most leased", refused.Load(), ra+rb, leased)
	}
	t.Logf("40000 calls: %d round trips' calls, %d leased", ra+rb, leased)

	a.Forget("key_1") // its log, full for a limit of 200
	small := ratelimit.Policy{Limit: 200, Window: time.Minute}
	got := concurrently(1000, small, a, b)
	if got[ratelimit.OK] != 200 || a.Leased()+b.Leased() != leased {
		t.Fatalf("a limit of 200: %v, %d leased, want exactly 200 admitted and no lease", got, a.Leased()+b.Leased()-leased)
	}
}

// Sweeping what a host keeps for idle keys keeps every count, which lives
// in Redis; a quota not yet written back is kept until it is.
func TestSharedSweepKeepsTheCounts(t *testing.T) {
	_, a, _ := hosts(t, ratelimit.OnErrorLocal)
	limited := ratelimit.Policy{Limit: 3, Window: time.Minute}
	quota := ratelimit.Policy{Remaining: ptr(10)}
	for range 3 {
		a.Admit("key_l", limited, time.Now())
	}
	a.Admit("key_q", quota, time.Now())
	if n := a.Sweep(time.Now(), time.Hour); n != 0 {
		t.Fatalf("swept %d keys called just now", n)
	}
	if n := a.Sweep(time.Now(), 0); n != 1 {
		t.Fatalf("swept %d keys, want 1: key_q's quota is not written back yet", n)
	}
	if len(a.TakeDirty()) != 1 {
		t.Fatal("key_q's quota is not dirty")
	}
	if n := a.Sweep(time.Now(), 0); n != 1 {
		t.Fatalf("swept %d keys after the write-back, want 1", n)
	}
	if names, leases, seen := a.Held(); names+leases+seen != 0 {
		t.Fatalf("still held: %d names, %d leases, %d quotas seen", names, leases, seen)
	}
	if d := a.Admit("key_l", limited, time.Now()); d.Code != ratelimit.RateLimited {
		t.Fatalf("key_l after the sweep: %+v, want rate_limited (3 calls in its window)", d)
	}
	if d := a.Admit("key_q", quota, time.Now()); d.Code != ratelimit.OK || d.QuotaRemaining == nil || *d.QuotaRemaining != 8 {
		t.Fatalf("key_q after the sweep: %+v (remaining %v), want 8", d, d.QuotaRemaining)
	}
}
