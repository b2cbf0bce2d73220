package api_test

import (
	"encoding/base64"
	"math"
	"net/url"
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

// A cursor that does not decode to a position of its list is a 400
// invalid_cursor on every paginated list. "AAAA" (three NUL bytes) used to
// answer an empty page on SQLite and a 500 on PostgreSQL, and a log
// cursor that did not parse was a plain bad_request.
func TestCursorThatIsNoPositionIsRefused(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine)
		org := e.Org("A")
		_, raw := e.Superkey(org)
		op, _ := e.Session(org, "operator@example.com", "owner", true)
		for range 3 {
			if r := e.Do("POST", "/api/v2/keys", bearer(raw), map[string]any{"name": "k"}); r.Status != 201 {
				t.Fatalf("create: %d %s", r.Status, r.Body)
			}
		}
		e.FlushLogs()
		b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		bad := []string{"AAAA", "!!!!", "a", b64("key_"), b64("key_\x00"), b64("key_01 AB"), b64("org_01KJMMA2G0B62JBFN46QA10W5A"),
			b64("0"), b64("-1"), b64("+5"), b64("007"), b64("abc"), b64("99999999999999999999"), b64(strings.Repeat("7", 65))}
		for _, l := range []struct {
			path, field string
			header      []string
			other       string // a cursor of another list
		}{
			{"/api/v2/keys", "keys", nil, b64("5")},
			{"/api/admin/keys", "keys", []string{"Cookie", op}, b64("5")},
			{"/api/admin/logs", "logs", []string{"Cookie", op}, b64("key_01KJMMA2G0B62JBFN46QA10W5A")},
			{"/api/admin/audit", "audit", []string{"Cookie", op}, b64("key_01KJMMA2G0B62JBFN46QA10W5A")},
		} {
			auth := ""
			if l.header == nil {
				auth = bearer(raw)
			}
			r := e.Do("GET", l.path+"?limit=1", auth, nil, l.header...)
			next, _ := r.JSON(t)["next_cursor"].(string)
			if r.Status != 200 || next == "" {
				t.Fatalf("%s?limit=1: %d %s", l.path, r.Status, r.Body)
			}
			if r := e.Do("GET", l.path+"?limit=1&cursor="+next, auth, nil, l.header...); r.Status != 200 || len(r.JSON(t)[l.field].([]any)) != 1 {
				t.Errorf("%s with its own next_cursor %q: %d %s", l.path, next, r.Status, r.Body)
			}
			for _, c := range append(bad, l.other) {
				r := e.Do("GET", l.path+"?cursor="+url.QueryEscape(c), auth, nil, l.header...)
				if r.Status != 400 || r.ErrorCode() != "invalid_cursor" {
					t.Errorf("%s?cursor=%s: %d %s; want 400 invalid_cursor", l.path, c, r.Status, r.Body)
				}
			}
		}
	})
}
