package client_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/sdk/client"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeVerify answers POST /api/v2/keys/verify from codes (key → code),
// counting the calls; down answers 503.
type fakeVerify struct {
	mu    sync.Mutex
	codes map[string]string
	calls atomic.Int32
	down  atomic.Bool
	gate  chan struct{} // when set, each verification waits for it
}

func (f *fakeVerify) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	w.Header().Set("Content-Type", "application/json")
	if f.down.Load() || r.URL.Path != "/api/v2/keys/verify" {
		w.WriteHeader(503)
		_, _ = io.WriteString(w, `{"error":{"code":"unavailable","message":"down"}}`)
		return
	}
	var body struct{ Key string }
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	code, ok := f.codes[body.Key]
	f.mu.Unlock()
	if !ok {
		code = "not_found"
	}
	resp := map[string]any{"valid": code == "valid", "code": code, "key_id": nil, "org_id": nil, "scopes": nil, "remaining": nil, "rate_limit": nil}
	if code != "not_found" {
		resp["key_id"], resp["org_id"], resp["scopes"] = "key_"+body.Key, "org_1", []string{"reports:read"}
	}
	if code == "rate_limited" {
		resp["rate_limit"] = map[string]int{"limit": 1, "remaining": 0, "reset": 3}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func (f *fakeVerify) set(key, code string) {
	f.mu.Lock()
	f.codes[key] = code
	f.mu.Unlock()
}

type mwFixture struct {
	verify *fakeVerify
	clock  *fakeClock
	srv    http.Handler
	seen   atomic.Pointer[client.Caller]
	ran    atomic.Int32
}

func newMW(t *testing.T, cfg client.MiddlewareConfig) *mwFixture {
	t.Helper()
	f := &mwFixture{verify: &fakeVerify{codes: map[string]string{}}, clock: &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	ts := httptest.NewServer(f.verify)
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL, "indigo_sk_service", client.WithClock(f.clock.Now), client.WithRetry(client.Retry{Attempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	f.srv = client.Middleware(c, cfg)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.ran.Add(1)
		f.seen.Store(client.CallerFrom(r.Context()))
		w.WriteHeader(http.StatusNoContent)
	}))
	return f
}

// call sends a request with the key and returns the status and error code.
func (f *mwFixture) call(key string) (int, string, http.Header) {
	r := httptest.NewRequest("GET", "/reports", nil)
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	var body struct{ Error struct{ Code string } }
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return w.Code, body.Error.Code, w.Header()
}

func (f *mwFixture) expect(t *testing.T, key string, status int, code string, verifications int32) {
	t.Helper()
	st, c, _ := f.call(key)
	if st != status || c != code {
		t.Errorf("key %q: %d %q, want %d %q", key, st, c, status, code)
	}
	if n := f.verify.calls.Load(); n != verifications {
		t.Errorf("key %q: %d verifications so far, want %d", key, n, verifications)
	}
}

func TestMiddlewareCachesWithinItsBounds(t *testing.T) {
	f := newMW(t, client.MiddlewareConfig{PositiveTTL: 30 * time.Second, NegativeTTL: 5 * time.Second, Scopes: []string{"reports:read"}})
	f.verify.set("good", "valid")
	f.verify.set("bad", "revoked")

	f.expect(t, "good", 204, "", 1)
	if c := f.seen.Load(); c == nil || c.KeyID != "key_good" || c.OrgID != "org_1" || len(c.Scopes) != 1 {
		t.Errorf("the handler saw the caller %+v", c)
	}
	// Revoked at Indigo: admitted from the cache until the positive bound.
	f.verify.set("good", "revoked")
	f.clock.Advance(29 * time.Second)
	f.expect(t, "good", 204, "", 1)
	f.clock.Advance(time.Second)
	f.expect(t, "good", 401, "unauthorized", 2)

	f.expect(t, "bad", 401, "unauthorized", 3)
	f.expect(t, "bad", 401, "unauthorized", 3)
	// Made valid: refused from the cache until the negative bound.
	f.verify.set("bad", "valid")
	f.clock.Advance(4 * time.Second)
	f.expect(t, "bad", 401, "unauthorized", 3)
	f.clock.Advance(time.Second)
	f.expect(t, "bad", 204, "", 4)

	f.verify.set("narrow", "insufficient_scope")
	f.expect(t, "narrow", 403, "insufficient_scope", 5)
	f.expect(t, "narrow", 403, "insufficient_scope", 5)

	// A rate-limited key is told when to come back, and never cached.
	f.verify.set("busy", "rate_limited")
	f.expect(t, "busy", 429, "rate_limited", 6)
	if _, _, h := f.call("busy"); h.Get("Retry-After") != "3" {
		t.Errorf("Retry-After %q, want 3", h.Get("Retry-After"))
	}
	if n := f.verify.calls.Load(); n != 7 {
		t.Errorf("%d verifications, want 7: a rate-limited answer must not be cached", n)
	}

	// No key, or not a bearer: refused without asking.
	f.expect(t, "", 401, "unauthorized", 7)
	if f.ran.Load() != 3 {
		t.Errorf("the handler ran %d times, want 3", f.ran.Load())
	}
}

func TestMiddlewareFailsClosedByDefault(t *testing.T) {
	f := newMW(t, client.MiddlewareConfig{})
	f.verify.down.Store(true)
	st, code, h := f.call("good")
	if st != 503 || code != "unavailable" || h.Get("Retry-After") == "" {
		t.Errorf("Indigo down: %d %q (Retry-After %q), want 503 unavailable", st, code, h.Get("Retry-After"))
	}
	// Not cached: back up, admitted at once.
	f.verify.down.Store(false)
	f.verify.set("good", "valid")
	f.expect(t, "good", 204, "", 2)
	if f.ran.Load() != 1 {
		t.Errorf("the handler ran %d times, want 1", f.ran.Load())
	}
}

func TestMiddlewareFailsOpenWhenAsked(t *testing.T) {
	f := newMW(t, client.MiddlewareConfig{FailOpen: true})
	f.verify.down.Store(true)
	f.expect(t, "good", 204, "", 1)
	if c := f.seen.Load(); c != nil {
		t.Errorf("fail-open put a caller in the context: %+v", c)
	}
}

// Concurrent requests with one key share one verification: each
// verification counts toward the key's rate limit.
func TestMiddlewareSharesOneVerification(t *testing.T) {
	f := newMW(t, client.MiddlewareConfig{})
	f.verify.set("good", "valid")
	f.verify.gate = make(chan struct{})
	var wg sync.WaitGroup
	statuses := make([]int, 20)
	for i := range statuses {
		wg.Go(func() { statuses[i], _, _ = f.call("good") })
	}
	for f.verify.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others queue behind it
	close(f.verify.gate)
	wg.Wait()
	for i, st := range statuses {
		if st != 204 {
			t.Errorf("request %d: %d", i, st)
		}
	}
	if n := f.verify.calls.Load(); n != 1 {
		t.Errorf("%d verifications for 20 concurrent requests, want 1", n)
	}
}
