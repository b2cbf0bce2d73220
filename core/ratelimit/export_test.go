package ratelimit

import "time"

// AdmitTogether decides n calls of key id under p's rate limit as one
// group of a round trip (one script run), as concurrent calls would be,
// and returns how many were admitted.
func (s *Shared) AdmitTogether(id string, p Policy, n int) (admitted int, err error) {
	nm := s.namesOf(id, p.Epoch)
	req := admitReq{rlKey: nm.rl, qKey: nm.q, leaseKey: nm.lease, limit: p.Limit, windowMS: p.Window.Milliseconds()}
	batch := make([]*admitCall, n)
	for i := range batch {
		batch[i] = &admitCall{req: req, res: make(chan admitResult, 1)}
	}
	s.roundTrip(batch, nil)
	for _, c := range batch {
		r := <-c.res
		if r.err != nil {
			return admitted, r.err
		}
		if r.res.code == 0 {
			admitted++
		}
	}
	return admitted, nil
}

// LeaseFor makes the next call of key id ask for a lease of about want
// calls, as a host that made that many calls in the last lease time would,
// then makes the call, and returns the call's decision and how many calls
// this host now holds leased.
func (s *Shared) LeaseFor(id string, p Policy, want int64) (Decision, int64) {
	kl := s.leases.of(id, p)
	d := int64(leaseTime(p.Window))
	kl.hits.Store(want) // and the call adds itself
	kl.lastAsk.Store(leaseClock() - d)
	dec := s.Admit(id, p, time.Time{})
	if g := kl.cur.Load(); g != nil {
		return dec, g.left.Load()
	}
	return dec, 0
}

// keyCount is how many keys the limiter holds state for.
func (l *Limiter) keyCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// Held counts what this host holds for keys: names, leases and lowest
// quotas seen.
func (s *Shared) Held() (names, leases, seen int) {
	s.names.Range(func(any, any) bool { names++; return true })
	s.leases.m.Range(func(any, any) bool { leases++; return true })
	s.seen.Range(func(any, any) bool { seen++; return true })
	return
}
