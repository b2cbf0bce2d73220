package api_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/coretest"
)

// A duration in seconds that a time.Duration cannot hold is "too large",
// not the message of the value it wrapped around to: grace_seconds near
// MaxInt64 was "must not be negative" (and MinInt64 wrapped to a grace of
// zero), expires_in_seconds "must be in the future", and a refill interval
// was accepted and refilled at whatever period the product landed on.
func TestDurationsBeyondAHundredYearsAreTooLarge(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine)
		org := e.Org("A")
		_, raw := e.Superkey(org)
		auth := bearer(raw)
		k, _ := e.Scoped(org)
		big := []int64{math.MaxInt64, math.MaxInt64/int64(time.Second) + 1, apikey.MaxSeconds + 1}
		type req struct {
			method, path string
			body         map[string]any
			code         string
		}
		var cases []req
		for _, v := range big {
			cases = append(cases,
				req{"POST", "/api/v2/keys", map[string]any{"name": "x", "expires_in_seconds": v}, "invalid_expiry"},
				req{"POST", "/api/v2/keys/" + k.ID + "/roll", map[string]any{"grace_seconds": v}, "invalid_grace"},
				req{"POST", "/api/v2/keys", map[string]any{"name": "x", "refill": map[string]any{"amount": 1, "interval_seconds": v}}, "invalid_refill"},
				req{"PATCH", "/api/v2/keys/" + k.ID, map[string]any{"refill": map[string]any{"amount": 1, "interval_seconds": v}}, "invalid_refill"},
			)
		}
		for _, c := range cases {
			r := e.Do(c.method, c.path, auth, c.body)
			if msg := r.JSON(t)["error"]; r.Status != 422 || r.ErrorCode() != c.code || !strings.Contains(string(r.Body), "too large") || !strings.Contains(string(r.Body), "100 years") {
				t.Errorf("%s %s %v: %d %v; want 422 %s, too large", c.method, c.path, c.body, r.Status, msg, c.code)
			}
		}
		r := e.Do("POST", "/api/v2/keys/"+k.ID+"/roll", auth, map[string]any{"grace_seconds": int64(math.MinInt64)})
		if r.Status != 422 || r.ErrorCode() != "invalid_grace" || !strings.Contains(string(r.Body), "must not be negative") {
			t.Errorf("grace_seconds MinInt64: %d %s", r.Status, r.Body)
		}
		// The bound itself is accepted.
		r = e.Do("POST", "/api/v2/keys", auth, map[string]any{"name": "x", "expires_in_seconds": apikey.MaxSeconds,
			"refill": map[string]any{"amount": 1, "interval_seconds": apikey.MaxSeconds}})
		want := e.Clock.Now().Add(apikey.MaxSeconds * time.Second)
		at := func(v any) time.Time {
			s, _ := v.(string)
			ts, _ := time.Parse(time.RFC3339Nano, s)
			return ts
		}
		if r.Status != 201 || !at(r.JSON(t)["key"].(map[string]any)["expires_at"]).Equal(want) {
			t.Fatalf("expires_in_seconds = %d: %d %s; want expires_at %s", apikey.MaxSeconds, r.Status, r.Body, want)
		}
		r = e.Do("POST", "/api/v2/keys/"+k.ID+"/roll", auth, map[string]any{"grace_seconds": apikey.MaxSeconds})
		if r.Status != 201 || !at(r.JSON(t)["previous"].(map[string]any)["expires_at"]).Equal(want) {
			t.Fatalf("grace_seconds = %d: %d %s", apikey.MaxSeconds, r.Status, r.Body)
		}
	})
}
