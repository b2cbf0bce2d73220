package ratelimit

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ptr(v int64) *int64 { return &v }

func TestWindowExactUnderConcurrency(t *testing.T) {
	l := New()
	p := Policy{Limit: 50, Window: time.Minute}
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d := l.Admit("k", p, t0.Add(time.Second)); d.Code == OK {
				ok.Add(1)
			} else if d.Code == RateLimited {
				limited.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 50 || limited.Load() != 150 {
		t.Fatalf("admitted %d, limited %d; want 50 and 150", ok.Load(), limited.Load())
	}
}

func TestRejectedCallsDoNotCountAgainstTheWindow(t *testing.T) {
	l := New()
	p := Policy{Limit: 2, Window: 10 * time.Second}
	now := t0.Add(time.Second)
	for i := 0; i < 2; i++ {
		if d := l.Admit("k", p, now); d.Code != OK {
			t.Fatalf("call %d refused", i)
		}
	}
	for i := 0; i < 5; i++ {
		d := l.Admit("k", p, now.Add(time.Second))
		if d.Code != RateLimited || d.Reset != 9*time.Second || d.RetryAfter != 9*time.Second {
			t.Fatalf("over-limit call: %+v", d)
		}
	}
	// A window after the first two calls, both slots are free again: the
	// five refused calls took none.
	next := now.Add(10 * time.Second)
	for i := 0; i < 2; i++ {
		d := l.Admit("k", p, next)
		if d.Code != OK || d.Remaining != int64(1-i) {
			t.Fatalf("call %d a window later: %+v", i, d)
		}
	}
}

// "3 per 2 s" admits no 4th call in any 2 s, across what a fixed window
// would call a boundary (a fixed window admitted 4 within 1.25 s).
func TestSlidingWindow(t *testing.T) {
	l := New()
	p := Policy{Limit: 3, Window: 2 * time.Second}
	at := func(ms int, want Code) {
		t.Helper()
		if d := l.Admit("k", p, t0.Add(time.Duration(ms)*time.Millisecond)); d.Code != want {
			t.Fatalf("at %d ms: %q, want %q (%+v)", ms, d.Code, want, d)
		}
	}
	at(1500, OK)
	at(1750, OK)
	at(2000, OK)
	at(2750, RateLimited) // a fixed window would have started afresh at 2 s
	at(3499, RateLimited)
	at(3500, OK) // the call at 1500 left the window
	at(3600, RateLimited)
	at(3750, OK)
}

// No interval of the window's length ever holds more than Limit admitted
// calls, whatever the arrival pattern; and a call is refused only when
// the window is full.
func TestNoIntervalAdmitsMoreThanTheLimit(t *testing.T) {
	l := New()
	p := Policy{Limit: 5, Window: time.Second}
	var admittedAt []time.Duration
	offset := time.Duration(0)
	for i := 0; i < 2000; i++ {
		offset += time.Duration((i*7919)%97) * time.Millisecond / 3
		d := l.Admit("k", p, t0.Add(offset))
		inWindow := 0
		for _, a := range admittedAt {
			if a > offset-p.Window {
				inWindow++
			}
		}
		if (d.Code == OK) != (inWindow < 5) {
			t.Fatalf("at %v: %q with %d calls in the window", offset, d.Code, inWindow)
		}
		if d.Code == OK {
			admittedAt = append(admittedAt, offset)
		}
	}
	if len(admittedAt) < 100 {
		t.Fatalf("only %d admitted", len(admittedAt))
	}
}

func TestQuotaNeverBelowZeroAndRefills(t *testing.T) {
	l := New()
	p := Policy{Remaining: ptr(1), RefillAmount: 3, RefillInterval: time.Hour, LastRefill: t0}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l.Admit("k", p, t0.Add(time.Minute)).Code == OK {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	q, _ := l.Current("k", 0)
	if ok.Load() != 1 || q.Remaining != 0 {
		t.Fatalf("admitted %d, remaining %d; want 1 and 0", ok.Load(), q.Remaining)
	}
	d := l.Admit("k", p, t0.Add(59*time.Minute))
	if d.Code != QuotaExceeded || d.RetryAfter != time.Minute {
		t.Fatalf("spent quota: %+v", d)
	}
	// Two intervals later the quota is back at the amount, not 2x.
	d = l.Admit("k", p, t0.Add(2*time.Hour+time.Second))
	if d.Code != OK || *d.QuotaRemaining != 2 {
		t.Fatalf("after refill: %+v remaining %v", d, *d.QuotaRemaining)
	}
}

func TestRateLimitCheckedBeforeQuotaIsSpent(t *testing.T) {
	l := New()
	p := Policy{Limit: 1, Window: time.Minute, Remaining: ptr(10)}
	l.Admit("k", p, t0)
	if d := l.Admit("k", p, t0); d.Code != RateLimited {
		t.Fatalf("want rate_limited, got %+v", d)
	}
	if q, _ := l.Current("k", 0); q.Remaining != 9 {
		t.Fatalf("a rate-limited call spent quota: remaining %d", q.Remaining)
	}
}

func TestEpochResetsQuotaAndDirtyTracking(t *testing.T) {
	l := New()
	p := Policy{Remaining: ptr(5)}
	l.Admit("k", p, t0)
	dirty := l.TakeDirty()
	if len(dirty) != 1 || dirty[0].Remaining != 4 {
		t.Fatalf("dirty = %+v", dirty)
	}
	if len(l.TakeDirty()) != 0 {
		t.Fatal("TakeDirty returned the same quota twice")
	}
	// A reload of the same epoch keeps the in-memory count.
	l.Admit("k", Policy{Remaining: ptr(5)}, t0)
	if q, _ := l.Current("k", 0); q.Remaining != 3 {
		t.Fatalf("same epoch reloaded the stored value: %d", q.Remaining)
	}
	// An explicit set (new epoch) replaces it.
	l.Admit("k", Policy{Remaining: ptr(100), Epoch: 1}, t0)
	if q, ok := l.Current("k", 1); !ok || q.Remaining != 99 {
		t.Fatalf("new epoch: %+v %v", q, ok)
	}
}

// A key without limit or quota is admitted without any state, and a limit
// set later counts from zero.
func TestUnlimitedKeyKeepsNoStateAndALaterLimitApplies(t *testing.T) {
	l := New()
	for i := 0; i < 100; i++ {
		if d := l.Admit("k", Policy{Epoch: 1}, t0); d.Code != OK || d.Limit != 0 || d.QuotaRemaining != nil {
			t.Fatalf("unlimited call %d: %+v", i, d)
		}
	}
	l.mu.Lock()
	n := len(l.keys)
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d keys of state for unlimited calls, want 0", n)
	}
	limited := Policy{Limit: 3, Window: time.Minute, Epoch: 1}
	admitted := 0
	for i := 0; i < 10; i++ {
		if l.Admit("k", limited, t0.Add(time.Second)).Code == OK {
			admitted++
		}
	}
	if admitted != 3 {
		t.Fatalf("admitted %d once a limit of 3 was set, want 3", admitted)
	}
}

// Sweep drops a key whose window is empty and keeps one with a call still
// in its window (whose count must survive) and one with a quota.
func TestSweepKeepsWhatStillCounts(t *testing.T) {
	l := New()
	limited := Policy{Limit: 1, Window: time.Second}
	quota := Policy{Remaining: ptr(5)}
	l.Admit("old", limited, t0)
	l.Admit("recent", limited, t0.Add(900*time.Millisecond))
	l.Admit("quota", quota, t0)
	if n := l.Sweep(t0.Add(1500*time.Millisecond), 0); n != 1 {
		t.Fatalf("swept %d keys, want 1 (old)", n)
	}
	if got := l.keyCount(); got != 2 {
		t.Fatalf("%d keys left, want 2", got)
	}
	// recent's call is still in its window: a second call is refused.
	if d := l.Admit("recent", limited, t0.Add(1600*time.Millisecond)); d.Code != RateLimited {
		t.Fatalf("recent after the sweep: %+v, want rate_limited", d)
	}
	if q, ok := l.Current("quota", 0); !ok || q.Remaining != 4 {
		t.Fatalf("quota after the sweep: %+v %v, want 4 left", q, ok)
	}
	if d := l.Admit("old", limited, t0.Add(1600*time.Millisecond)); d.Code != OK {
		t.Fatalf("old after the sweep: %+v", d)
	}
}

// A sweep racing the calls never lets a key admit more than its limit: a
// call that got a key's state just before the sweep dropped it takes the
// key's state again rather than counting in the dropped one. Each burst of
// calls comes a window after the last, when the key's window has emptied
// and a sweep may drop its state at any moment.
func TestSweepRacingCallsKeepsTheLimit(t *testing.T) {
	l := New()
	p := Policy{Limit: 3, Window: time.Second}
	const bursts, callers = 3000, 4
	var now atomic.Int64 // the burst's time, for the sweeper
	stop := make(chan struct{})
	var sweeps sync.WaitGroup
	sweeps.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				l.Sweep(time.Unix(0, now.Load()), 0)
			}
		}
	})
	defer func() { close(stop); sweeps.Wait() }()
	for b := range bursts {
		at := t0.Add(time.Duration(b) * p.Window)
		now.Store(at.UnixNano())
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for range 2 {
					if l.Admit("k", p, at).Code == OK {
						admitted.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := admitted.Load(); n != 3 {
			t.Fatalf("burst %d admitted %d calls in one window, limit 3", b, n)
		}
	}
}
