package clienttest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/sdk/client"
)

// TestMiddlewareAgainstAHost protects a handler with client.Middleware
// verifying through a real host: a revoked key is admitted from the cache
// until the positive bound, then refused; a key without the required
// scope is refused; with the host stopped, a key it has not seen is 503
// (or admitted, with no caller, when failing open).
func TestMiddlewareAgainstAHost(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		env := coretest.New(t, engine)
		ctx := context.Background()
		org := env.Org("service")
		_, verifyRaw := env.Scoped(org, api.ScopeKeysVerify)
		_, adminRaw := env.Superkey(org)
		admin, _ := newClient(t, env, adminRaw)

		// The middleware's cache runs on a clock of its own (the host's is
		// the fake of coretest).
		clock := coretest.NewClock()
		verifier, _ := newClient(t, env, verifyRaw, client.WithClock(clock.Now))
		const bound = 30 * time.Second
		protect := func(failOpen bool) http.Handler {
			return client.Middleware(verifier, client.MiddlewareConfig{Scopes: []string{api.ScopeKeysRead}, PositiveTTL: bound, FailOpen: failOpen})(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					c := client.CallerFrom(r.Context())
					if c == nil {
						w.Header().Set("X-Caller", "none")
					} else {
						w.Header().Set("X-Caller", c.KeyID)
					}
					w.WriteHeader(http.StatusNoContent)
				}))
		}
		closed, open := protect(false), protect(true)
		call := func(h http.Handler, key string) (int, string) {
			r := httptest.NewRequest("GET", "/report", nil)
			r.Header.Set("Authorization", "Bearer "+key)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w.Code, w.Header().Get("X-Caller")
		}

		user, err := admin.Keys.Create(ctx, client.CreateKey{Name: "user", Scopes: []string{api.ScopeKeysRead}})
		if err != nil {
			t.Fatal(err)
		}
		if st, caller := call(closed, user.Raw); st != 204 || caller != user.ID {
			t.Fatalf("a valid key: %d, caller %q", st, caller)
		}
		narrow, err := admin.Keys.Create(ctx, client.CreateKey{Name: "narrow"})
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := call(closed, narrow.Raw); st != 403 {
			t.Errorf("a key without the scope: %d, want 403", st)
		}
		if st, _ := call(closed, "indigo_sk_made_up"); st != 401 {
			t.Errorf("a made-up key: %d, want 401", st)
		}

		if err := admin.Keys.Revoke(ctx, user.ID); err != nil {
			t.Fatal(err)
		}
		clock.Advance(bound - time.Second)
		if st, _ := call(closed, user.Raw); st != 204 {
			t.Errorf("a revoked key within the positive bound: %d, want 204 (cached)", st)
		}
		clock.Advance(time.Second)
		if st, _ := call(closed, user.Raw); st != 401 {
			t.Errorf("a revoked key at the positive bound: %d, want 401", st)
		}

		fresh, err := admin.Keys.Create(ctx, client.CreateKey{Name: "fresh", Scopes: []string{api.ScopeKeysRead}})
		if err != nil {
			t.Fatal(err)
		}
		env.Server.Close() // the host is gone
		if st, _ := call(closed, fresh.Raw); st != 503 {
			t.Errorf("the host stopped: %d, want 503", st)
		}
		if st, caller := call(open, fresh.Raw); st != 204 || caller != "none" {
			t.Errorf("the host stopped, failing open: %d, caller %q, want 204 and none", st, caller)
		}
	})
}
