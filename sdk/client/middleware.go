package client

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MiddlewareConfig shapes Middleware. The zero value is the default.
type MiddlewareConfig struct {
	// Scopes that every request's key must hold: a key that lacks one is
	// refused with 403 insufficient_scope.
	Scopes []string
	// PositiveTTL is how long a valid key is admitted without asking
	// Indigo again (default 30 s). It is the bound on a change: a key
	// revoked, disabled, expired or re-scoped is refused at the latest
	// this long after. It also means that a key's rate limit and quota
	// count one call per verification, not per request. Negative: ask for
	// every request.
	PositiveTTL time.Duration
	// NegativeTTL is how long a refused key (unknown, revoked, expired,
	// disabled, or lacking a scope) is refused without asking (default
	// 5 s): shorter, so that a key just created or enabled is admitted
	// soon, and a flood of bad keys costs Indigo one check per key and
	// period. Negative: ask for every request.
	NegativeTTL time.Duration
	// FailOpen admits requests, with no Caller in their context, when
	// Indigo cannot answer (unreachable, a 5xx, or a refusal of the
	// client's own key). The default fails closed: 503 unavailable.
	FailOpen bool
	// MaxEntries bounds the cache (default 10,000 keys).
	MaxEntries int
	// VerifyTimeout bounds one verification, retries included (default
	// 10 s).
	VerifyTimeout time.Duration
	// OnError, if set, is told why a verification failed.
	OnError func(r *http.Request, err error)
}

// Caller is the key a request verified with, which CallerFrom returns to
// the handler behind Middleware.
type Caller struct {
	KeyID    string
	OrgID    string
	Scopes   []string // nil for a superkey
	Superkey bool
}

type callerKey struct{}

// CallerFrom returns the verified caller of a request behind Middleware,
// or nil (no Middleware, or Indigo was down and FailOpen let it through).
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// Middleware protects a net/http handler with Indigo's keys: each request
// must carry "Authorization: Bearer <key>", which is checked through
// POST /api/v2/keys/verify with c's key (it needs api-keys:verify, and
// verifies keys of its own org only). The answer is cached for
// PositiveTTL (valid) or NegativeTTL (refused) per key, and concurrent
// requests with the same key share one verification. Refusals have
// Indigo's error shape: 401 unauthorized, 403 insufficient_scope, 429
// rate_limited or quota_exceeded (not cached), and 503 unavailable when
// Indigo cannot answer, unless FailOpen. Each verification is a metered
// call of c's org (POST /keys/verify costs 1 when metering is wired).
func Middleware(c *Client, cfg MiddlewareConfig) func(http.Handler) http.Handler {
	if cfg.PositiveTTL == 0 {
		cfg.PositiveTTL = 30 * time.Second
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = 5 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10_000
	}
	if cfg.VerifyTimeout <= 0 {
		cfg.VerifyTimeout = 10 * time.Second
	}
	v := &verifier{c: c, cfg: cfg, cache: map[[32]byte]verdict{}, flights: map[[32]byte]*flight{}}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key, ok := bearer(r.Header.Get("Authorization"))
			if !ok {
				refuse(w, verdict{status: http.StatusUnauthorized, code: "unauthorized", message: unauthorized})
				return
			}
			d, err := v.check(r, key)
			if err != nil {
				if cfg.OnError != nil {
					cfg.OnError(r, err)
				}
				if cfg.FailOpen {
					next.ServeHTTP(w, r)
					return
				}
				w.Header().Set("Retry-After", "1")
				refuse(w, verdict{status: http.StatusServiceUnavailable, code: "unavailable", message: "the key cannot be verified now"})
				return
			}
			if d.caller == nil {
				refuse(w, d)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, d.caller)))
		})
	}
}

// unauthorized is Indigo's message for every invalid key: which reason
// (unknown, revoked, ...) is not the caller's business.
const unauthorized = "missing or invalid API key"

// verdict is a verification's outcome: a caller, or a refusal.
type verdict struct {
	caller     *Caller
	status     int
	code       string
	message    string
	retryAfter time.Duration
	expires    time.Time
}

type flight struct {
	done chan struct{}
	d    verdict
	err  error
}

type verifier struct {
	c   *Client
	cfg MiddlewareConfig

	mu      sync.Mutex
	cache   map[[32]byte]verdict // by the key's SHA-256: no plaintext kept
	flights map[[32]byte]*flight
}

func (v *verifier) check(r *http.Request, key string) (verdict, error) {
	id := sha256.Sum256([]byte(key))
	v.mu.Lock()
	if d, ok := v.cache[id]; ok {
		if v.c.t.now().Before(d.expires) {
			v.mu.Unlock()
			return d, nil
		}
		delete(v.cache, id)
	}
	f, ok := v.flights[id]
	if !ok {
		f = &flight{done: make(chan struct{})}
		v.flights[id] = f
	}
	v.mu.Unlock()
	if ok {
		select {
		case <-f.done:
			return f.d, f.err
		case <-r.Context().Done():
			return verdict{}, r.Context().Err()
		}
	}
	// The first request's cancellation must not fail the others waiting.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), v.cfg.VerifyTimeout)
	f.d, f.err = v.verify(ctx, key)
	cancel()
	v.mu.Lock()
	delete(v.flights, id)
	if f.err == nil && !f.d.expires.IsZero() {
		v.store(id, f.d)
	}
	v.mu.Unlock()
	close(f.done)
	return f.d, f.err
}

// verify asks Indigo; the verdict's expires is zero when it is not cached.
func (v *verifier) verify(ctx context.Context, key string) (verdict, error) {
	res, err := v.c.Keys.Verify(ctx, key, v.cfg.Scopes...)
	if err != nil {
		return verdict{}, err
	}
	now := v.c.t.now()
	switch res.Code {
	case CodeValid:
		d := verdict{caller: &Caller{KeyID: res.KeyID, OrgID: res.OrgID, Scopes: res.Scopes, Superkey: res.Superkey}}
		if v.cfg.PositiveTTL > 0 {
			d.expires = now.Add(v.cfg.PositiveTTL)
		}
		return d, nil
	case CodeRateLimited, CodeQuotaExceeded:
		d := verdict{status: http.StatusTooManyRequests, code: res.Code, message: "this key's " + strings.ReplaceAll(res.Code, "_", " ")}
		if res.RateLimit != nil {
			d.retryAfter = res.RateLimit.Reset
		}
		return d, nil
	}
	d := verdict{status: http.StatusUnauthorized, code: "unauthorized", message: unauthorized}
	if res.Code == CodeInsufficientScope {
		d = verdict{status: http.StatusForbidden, code: res.Code, message: "this key lacks a scope this service requires: " + strings.Join(v.cfg.Scopes, ", ")}
	}
	if v.cfg.NegativeTTL > 0 {
		d.expires = now.Add(v.cfg.NegativeTTL)
	}
	return d, nil
}

// store caches d; a full cache drops what expired, then any entries.
func (v *verifier) store(id [32]byte, d verdict) {
	if len(v.cache) >= v.cfg.MaxEntries {
		now := v.c.t.now()
		for k, e := range v.cache {
			if !now.Before(e.expires) {
				delete(v.cache, k)
			}
		}
		for k := range v.cache {
			if len(v.cache) < v.cfg.MaxEntries {
				break
			}
			delete(v.cache, k)
		}
	}
	v.cache[id] = d
}

func bearer(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	key := strings.TrimSpace(h[len(scheme):])
	return key, key != ""
}

func refuse(w http.ResponseWriter, d verdict) {
	if d.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((d.retryAfter+time.Second-1)/time.Second)))
	}
	if d.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(d.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": d.code, "message": d.message}})
}
