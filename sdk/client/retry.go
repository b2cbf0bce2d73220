package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Retry bounds how a call is repeated after a 429 (rate limited) or a 503
// (unavailable). A 429 is always safe to repeat: Indigo refuses it before
// anything runs. A 503 is repeated only for GET, HEAD, PUT, DELETE and
// OPTIONS, and for calls sent with an Idempotency-Key (the metered ones:
// Verify, Me and Do), so that a retry never creates a second key.
type Retry struct {
	// Attempts is how many times a call is sent at most, the first one
	// included (default 3; 1 turns retries off).
	Attempts int
	// MaxWait is the longest wait before a retry (default 30 s). An answer
	// whose Retry-After asks for more is returned as it is, as is one that
	// the call's context deadline would cut short.
	MaxWait time.Duration
	// Backoff is the first wait when the answer names none (default
	// 250 ms); it doubles at each retry, with jitter.
	Backoff time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 3
	}
	if r.MaxWait <= 0 {
		r.MaxWait = 30 * time.Second
	}
	if r.Backoff <= 0 {
		r.Backoff = 250 * time.Millisecond
	}
	return r
}

// idempotencyHeader makes a retried call count once: Indigo charges a
// metered call by this key instead of the request id, and replays a
// module's answer to a retry.
const idempotencyHeader = "Idempotency-Key"

func newIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "go-" + hex.EncodeToString(b[:])
}

// transport sends every request of a Client: it adds the key and retries
// 429 and 503 answers within Retry. The generated calls and Do share it.
type transport struct {
	hc        *http.Client
	key       string
	userAgent string
	retry     Retry
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
}

// Do implements openapi.HttpRequestDoer.
func (t *transport) Do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+t.key)
	req.Header.Set("User-Agent", t.userAgent)
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 {
			r = req.Clone(req.Context())
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
		}
		resp, err := t.hc.Do(r)
		if err != nil {
			return nil, err
		}
		wait, again := t.retryAfter(req, resp, attempt)
		if !again {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err := t.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// retryAfter says whether the answer to attempt is repeated, and after
// how long.
func (t *transport) retryAfter(req *http.Request, resp *http.Response, attempt int) (time.Duration, bool) {
	switch {
	case resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable,
		attempt >= t.retry.Attempts,
		resp.StatusCode == http.StatusServiceUnavailable && !idempotent(req),
		// A replayed answer is the one Indigo kept: it would be again.
		resp.Header.Get("Idempotent-Replayed") == "true",
		req.Body != nil && req.Body != http.NoBody && req.GetBody == nil:
		return 0, false
	}
	wait, ok := retryAfter(resp.Header, t.now)
	if !ok {
		wait = t.retry.Backoff << (attempt - 1)
		wait = wait/2 + mrand.N(wait/2+1)
	}
	if wait > t.retry.MaxWait {
		return 0, false
	}
	if dl, ok := req.Context().Deadline(); ok && !t.now().Add(wait).Before(dl) {
		return 0, false
	}
	return wait, true
}

func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return req.Header.Get(idempotencyHeader) != ""
}

// retryAfter reads Retry-After: seconds, or an HTTP date.
func retryAfter(h http.Header, now func() time.Time) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Duration(min(s, 1<<31)) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now()), 0), true
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
