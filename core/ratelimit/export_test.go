package ratelimit

// AdmitTogether decides n calls of key id under p's rate limit as one
// group of a round trip (one script run), as concurrent calls would be,
// and returns how many were admitted.
func (s *Shared) AdmitTogether(id string, p Policy, n int) (admitted int, err error) {
	nm := s.namesOf(id, p.Epoch)
	req := admitReq{rlKey: nm.rl, qKey: nm.q, limit: p.Limit, windowMS: p.Window.Milliseconds()}
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
