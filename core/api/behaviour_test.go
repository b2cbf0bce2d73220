package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
)

var bearer = coretest.Bearer

// A rolled key works until the instant its grace ends and is refused from
// that instant on, without the maintenance task having run.
func TestRolledKeyExpiresAtExactInstant(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine)
		org := e.Org("A")
		admin, adminRaw := e.Superkey(org)
		old, oldRaw := e.Scoped(org, "api-keys:read")
		_ = admin

		r := e.Do("POST", "/api/v2/keys/"+old.ID+"/roll", bearer(adminRaw), map[string]any{"grace_seconds": 60})
		if r.Status != 201 {
			t.Fatalf("roll: %d %s", r.Status, r.Body)
		}
		body := r.JSON(t)
		newRaw := body["raw_key"].(string)
		prev := body["previous"].(map[string]any)
		if prev["status"] != "expiring" || prev["id"] != old.ID {
			t.Fatalf("previous = %v", prev)
		}
		expiresAt, err := time.Parse(time.RFC3339Nano, prev["expires_at"].(string))
		if err != nil || !expiresAt.Equal(e.Clock.Now().Add(60*time.Second)) {
			t.Fatalf("expires_at = %v (%v), want now+60s", prev["expires_at"], err)
		}
		if got := body["key"].(map[string]any)["scopes"]; fmt.Sprint(got) != "[api-keys:read]" {
			t.Fatalf("successor scopes = %v", got)
		}

		e.Clock.Set(expiresAt.Add(-time.Millisecond))
		if r := e.Do("GET", "/api/v2/me", bearer(oldRaw), nil); r.Status != 200 || r.JSON(t)["status"] != "expiring" {
			t.Fatalf("old key 1 ms before expiry: %d %s", r.Status, r.Body)
		}
		e.Clock.Set(expiresAt)
		if r := e.Do("GET", "/api/v2/me", bearer(oldRaw), nil); r.Status != 401 {
			t.Fatalf("old key at expires_at: %d %s", r.Status, r.Body)
		}
		if r := e.Do("GET", "/api/v2/me", bearer(newRaw), nil); r.Status != 200 {
			t.Fatalf("successor: %d %s", r.Status, r.Body)
		}
		// The listing shows the old key as expired before the task runs,
		// and the task then records it.
		if r := e.Do("GET", "/api/v2/keys/"+old.ID, bearer(adminRaw), nil); r.JSON(t)["key"].(map[string]any)["status"] != "expired" {
			t.Fatalf("old key status after expiry: %s", r.Body)
		}
		n, err := e.Host.Keys.ExpireDue(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
		}
		if r := e.Do("POST", "/api/v2/keys/"+old.ID+"/roll", bearer(adminRaw), nil); r.Status != 409 {
			t.Fatalf("rolling an expired key: %d %s", r.Status, r.Body)
		}
	})
}

// A revoke, disable or scope change made through this host is seen by the
// very next request, with no sleep.
func TestChangesSeenOnNextRequest(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine)
		org := e.Org("A")
		_, adminRaw := e.Superkey(org)
		k, raw := e.Scoped(org, "api-keys:read")
		auth := bearer(raw)

		if r := e.Do("GET", "/api/v2/keys", auth, nil); r.Status != 200 {
			t.Fatalf("warm the cache: %d", r.Status)
		}
		if r := e.Do("PUT", "/api/v2/keys/"+k.ID+"/scopes", bearer(adminRaw), map[string]any{"scopes": []string{}}); r.Status != 200 {
			t.Fatalf("scope change: %d %s", r.Status, r.Body)
		}
		if r := e.Do("GET", "/api/v2/keys", auth, nil); r.Status != 403 {
			t.Fatalf("after removing the scope: %d", r.Status)
		}
		if r := e.Do("PUT", "/api/v2/keys/"+k.ID+"/scopes", bearer(adminRaw), map[string]any{"scopes": []string{"api-keys:read"}}); r.Status != 200 {
			t.Fatalf("scope change back: %d", r.Status)
		}
		if r := e.Do("GET", "/api/v2/keys", auth, nil); r.Status != 200 {
			t.Fatalf("after restoring the scope: %d", r.Status)
		}
		if r := e.Do("PATCH", "/api/v2/keys/"+k.ID, bearer(adminRaw), map[string]any{"enabled": false}); r.Status != 200 {
			t.Fatalf("disable: %d", r.Status)
		}
		if r := e.Do("GET", "/api/v2/me", auth, nil); r.Status != 401 {
			t.Fatalf("after disable: %d", r.Status)
		}
		if r := e.Do("PATCH", "/api/v2/keys/"+k.ID, bearer(adminRaw), map[string]any{"enabled": true}); r.Status != 200 {
			t.Fatalf("enable: %d", r.Status)
		}
		if r := e.Do("GET", "/api/v2/me", auth, nil); r.Status != 200 {
			t.Fatalf("after re-enable: %d", r.Status)
		}
		if r := e.Do("DELETE", "/api/v2/keys/"+k.ID, bearer(adminRaw), nil); r.Status != 200 || !strings.Contains(string(r.Body), `"revoked":true`) {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		if r := e.Do("GET", "/api/v2/me", auth, nil); r.Status != 401 {
			t.Fatalf("after revoke: %d", r.Status)
		}
		if r := e.Do("PATCH", "/api/v2/keys/"+k.ID, bearer(adminRaw), map[string]any{"enabled": true}); r.Status != 409 {
			t.Fatalf("re-enabling a revoked key: %d %s", r.Status, r.Body)
		}
	})
}

// A change made by another process on the same database (the CLI uses the
// same services) reaches the running host within 1 s.
func TestChangesFromAnotherProcessWithinOneSecond(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine, func(c *config.Config, _ *core.Options) {
			c.API.ChangePollInterval = config.Duration{Duration: 250 * time.Millisecond}
		})
		org := e.Org("A")
		k, raw := e.Scoped(org, "api-keys:read")
		if r := e.Do("GET", "/api/v2/me", bearer(raw), nil); r.Status != 200 {
			t.Fatalf("warm: %d", r.Status)
		}
		other, err := core.Open(context.Background(), e.Cfg, core.Options{NoMigrate: true})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()

		waitStatus := func(what string, want int) {
			t.Helper()
			deadline := time.Now().Add(time.Second)
			for {
				r := e.Do("GET", "/api/v2/me", bearer(raw), nil)
				if r.Status == want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: host still answers %d after 1s", what, r.Status)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		cli := apikey.Actor{ID: "cli"}
		if _, err := other.Keys.Update(context.Background(), org, k.ID, cli, apikey.UpdateInput{Enabled: apikey.Opt[bool]{Set: true, V: false}}); err != nil {
			t.Fatal(err)
		}
		waitStatus("disable", 401)
		if _, err := other.Keys.Update(context.Background(), org, k.ID, cli, apikey.UpdateInput{Enabled: apikey.Opt[bool]{Set: true, V: true}}); err != nil {
			t.Fatal(err)
		}
		waitStatus("enable", 200)
		if err := other.Keys.Revoke(context.Background(), org, k.ID, cli); err != nil {
			t.Fatal(err)
		}
		waitStatus("revoke", 401)
	})
}

func concurrently(n int, fn func() int) map[int]int {
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			s := fn()
			mu.Lock()
			counts[s]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return counts
}

func TestRateLimitExactUnderConcurrency(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine)
		org := e.Org("A")
		k, raw := e.Key(org, apikey.CreateInput{RateLimitSet: true, RateLimit: &apikey.RateLimit{Limit: 50, WindowSeconds: 60}})
		e.Client.Transport.(*http.Transport).MaxIdleConnsPerHost = 200
		counts := concurrently(200, func() int { return e.Do("GET", "/api/v2/me", bearer(raw), nil).Status })
		if counts[200] != 50 || counts[429] != 150 {
			t.Fatalf("statuses %v; want exactly 50×200 and 150×429", counts)
		}
		r := e.Do("GET", "/api/v2/me", bearer(raw), nil)
		if r.Status != 429 || r.ErrorCode() != "rate_limited" {
			t.Fatalf("over limit: %d %s", r.Status, r.Body)
		}
		for _, h := range []string{"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
			if r.Header.Get(h) == "" {
				t.Errorf("429 lacks %s", h)
			}
		}
		if r.Header.Get("RateLimit-Limit") != "50" || r.Header.Get("RateLimit-Remaining") != "0" {
			t.Errorf("headers %v", r.Header)
		}
		// The window the clock starts in ends at 12:01:00; rejections did
		// not count against the next one.
		e.Clock.Advance(time.Minute)
		counts = concurrently(60, func() int { return e.Do("GET", "/api/v2/me", bearer(raw), nil).Status })
		if counts[200] != 50 {
			t.Fatalf("next window admitted %d, want 50 (key %s)", counts[200], k.ID)
		}
	})
}

func TestQuotaExactUnderConcurrency(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine)
		org := e.Org("A")
		one := int64(1)
		k, raw := e.Key(org, apikey.CreateInput{Remaining: &one})
		_, adminRaw := e.Superkey(org)
		e.Client.Transport.(*http.Transport).MaxIdleConnsPerHost = 50
		counts := concurrently(50, func() int { return e.Do("GET", "/api/v2/me", bearer(raw), nil).Status })
		if counts[200] != 1 || counts[429] != 49 {
			t.Fatalf("statuses %v; want exactly 1×200 and 49×429", counts)
		}
		if r := e.Do("GET", "/api/v2/me", bearer(raw), nil); r.ErrorCode() != "quota_exceeded" {
			t.Fatalf("spent quota: %d %s", r.Status, r.Body)
		}
		r := e.Do("GET", "/api/v2/keys/"+k.ID, bearer(adminRaw), nil)
		if got := r.JSON(t)["key"].(map[string]any)["remaining"]; got != float64(0) {
			t.Fatalf("remaining = %v, want 0", got)
		}
		// Saved lazily, and never below zero.
		if err := e.Host.Keys.FlushUsage(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		row, err := e.Host.Store.Q().GetKeyByID(context.Background(), k.ID)
		if err != nil || !row.Remaining.Valid || row.Remaining.Int64 != 0 {
			t.Fatalf("stored remaining = %+v, %v", row.Remaining, err)
		}
		// An explicit top-up replaces the in-memory count.
		if r := e.Do("PATCH", "/api/v2/keys/"+k.ID, bearer(adminRaw), map[string]any{"remaining": 2}); r.Status != 200 {
			t.Fatalf("top up: %d %s", r.Status, r.Body)
		}
		counts = concurrently(5, func() int { return e.Do("GET", "/api/v2/me", bearer(raw), nil).Status })
		if counts[200] != 2 {
			t.Fatalf("after top-up admitted %d, want 2", counts[200])
		}
	})
}

// The 401 body is the same bytes whatever the reason.
func TestUniformUnauthorized(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine)
		org := e.Org("A")
		_, adminRaw := e.Superkey(org)
		dis, disRaw := e.Scoped(org)
		rev, revRaw := e.Scoped(org)
		exp, expRaw := e.Key(org, apikey.CreateInput{ExpiresAt: ptrTime(e.Clock.Now().Add(time.Second))})
		_ = exp
		e.Do("PATCH", "/api/v2/keys/"+dis.ID, bearer(adminRaw), map[string]any{"enabled": false})
		e.Do("DELETE", "/api/v2/keys/"+rev.ID, bearer(adminRaw), nil)
		e.Clock.Advance(2 * time.Second)
		good, _ := apikey.Generate("indigo_sk")
		last := byte('a')
		if good[len(good)-1] == 'a' {
			last = 'b'
		}
		badSum := good[:len(good)-1] + string(last)

		cases := map[string]string{
			"missing":      "",
			"not bearer":   "Basic " + disRaw,
			"empty bearer": "Bearer ",
			"two spaces":   "Bearer  " + adminRaw,
			"malformed":    "Bearer not-a-key",
			"bad checksum": "Bearer " + badSum,
			"unknown":      "Bearer " + good,
			"disabled":     "Bearer " + disRaw,
			"revoked":      "Bearer " + revRaw,
			"expired":      "Bearer " + expRaw,
		}
		var first []byte
		for name, auth := range cases {
			r := e.Do("GET", "/api/v2/me", auth, nil)
			if r.Status != 401 {
				t.Errorf("%s: status %d", name, r.Status)
				continue
			}
			if first == nil {
				first = r.Body
			}
			if !bytes.Equal(first, r.Body) {
				t.Errorf("%s: body %q differs from %q", name, r.Body, first)
			}
			if rid := r.Header.Get("X-Request-Id"); rid == "" || bytes.Contains(r.Body, []byte(rid)) {
				t.Errorf("%s: request id %q missing from the header or present in the body", name, rid)
			}
		}
	})
}

// A key with the right shape but a wrong checksum is refused before any
// lookup: it is not a cache miss (no database read) and is not cached, while
// an unknown key with a valid checksum is looked up once and then answered
// from the negative cache.
func TestBadChecksumCostsNoLookup(t *testing.T) {
	e := coretest.New(t, db.SQLite)
	good, _ := apikey.Generate("indigo_sk")
	last := byte('a')
	if good[len(good)-1] == 'a' {
		last = 'b'
	}
	badSum := good[:len(good)-1] + string(last)
	_, misses0 := e.Host.Keys.CacheStats()
	for i := 0; i < 3; i++ {
		if r := e.Do("GET", "/api/v2/me", bearer(badSum), nil); r.Status != 401 {
			t.Fatalf("bad checksum: %d", r.Status)
		}
	}
	if _, m := e.Host.Keys.CacheStats(); m != misses0 {
		t.Fatalf("a bad checksum cost %d cache misses (lookups), want 0", m-misses0)
	}
	for i := 0; i < 3; i++ {
		if r := e.Do("GET", "/api/v2/me", bearer(good), nil); r.Status != 401 {
			t.Fatalf("unknown key: %d", r.Status)
		}
	}
	if _, m := e.Host.Keys.CacheStats(); m != misses0+1 {
		t.Fatalf("an unknown key cost %d lookups in 3 calls, want 1", m-misses0)
	}
}

func ptrTime(t time.Time) *time.Time { return &t }

// The plaintext key is nowhere: not in the database files, the logs, or
// any list or admin response.
func TestPlaintextKeyStoredNowhere(t *testing.T) {
	e := coretest.New(t, db.SQLite)
	org := e.Org("A")
	k, raw := e.Superkey(org)
	resp := e.Do("POST", "/api/v2/keys", bearer(raw), map[string]any{"name": "second", "scopes": []string{"api-keys:read"}})
	raw2 := resp.JSON(t)["raw_key"].(string)
	r := e.Do("POST", "/api/v2/keys/"+k.ID+"/roll", bearer(raw2), nil) // refused: lacks write
	if r.Status != 403 {
		t.Fatalf("roll with a read key: %d", r.Status)
	}
	for i := 0; i < 3; i++ {
		e.Do("GET", "/api/v2/me", bearer(raw), nil)
		e.Do("GET", "/api/v2/keys", bearer(raw2), nil)
	}
	cookie, _ := e.Session(org, "op@example.com", "owner", true)
	var bodies [][]byte
	for _, p := range []string{"/api/v2/keys", "/api/v2/keys/" + k.ID, "/api/v2/keys/" + k.ID + "/stats"} {
		bodies = append(bodies, e.Do("GET", p, bearer(raw), nil).Body)
	}
	e.FlushLogs()
	if err := e.Host.Keys.FlushUsage(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/api/admin/keys", "/api/admin/logs", "/api/admin/audit"} {
		r := e.Do("GET", p, "", nil, "Cookie", cookie)
		if r.Status != 200 {
			t.Fatalf("%s: %d", p, r.Status)
		}
		bodies = append(bodies, r.Body)
	}
	if _, err := e.Host.Store.DB.Exec("PRAGMA wal_checkpoint(FULL)"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(e.Cfg.Database.URL)
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) == 0 {
		t.Fatal("no database files found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	bodies = append(bodies, []byte(e.Logs.String()))
	if !strings.Contains(e.Logs.String(), "api key created") {
		t.Fatal("the log capture is empty; the check would prove nothing")
	}
	for _, secret := range []string{raw, raw2} {
		for i, b := range bodies {
			// The random part alone must not appear either.
			if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(secret[len("indigo_sk_"):len(secret)-6])) {
				t.Fatalf("plaintext key found in source %d", i)
			}
		}
	}
	// The hash is what is stored: if it is absent too, the files read are
	// not the database and the check above proved nothing.
	found := false
	for _, b := range bodies {
		found = found || bytes.Contains(b, []byte(apikey.Hash(raw)))
	}
	if !found {
		t.Fatal("the key's hash is not in the database files either")
	}
}

// last_used_at is updated in memory at once, and in the database only by
// the background flush.
func TestLastUsedIsSavedLazily(t *testing.T) {
	e := coretest.New(t, db.SQLite, func(c *config.Config, _ *core.Options) {
		c.API.UsageFlushInterval = config.Duration{Duration: time.Hour}
	})
	org := e.Org("A")
	k, raw := e.Superkey(org)
	if r := e.Do("GET", "/api/v2/me", bearer(raw), nil); r.Status != 200 {
		t.Fatal(r.Status)
	}
	row, _ := e.Host.Store.Q().GetKeyByID(context.Background(), k.ID)
	if row.LastUsedAt.Valid {
		t.Fatal("the request wrote last_used_at synchronously")
	}
	got := e.Do("GET", "/api/v2/keys/"+k.ID, bearer(raw), nil).JSON(t)["key"].(map[string]any)["last_used_at"]
	if got == nil {
		t.Fatal("the API does not show the in-memory last use")
	}
	if err := e.Host.Keys.FlushUsage(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	row, _ = e.Host.Store.Q().GetKeyByID(context.Background(), k.ID)
	if !row.LastUsedAt.Valid || row.LastUsedAt.Int64 != e.Clock.Now().UnixMilli() {
		t.Fatalf("after flush last_used_at = %+v", row.LastUsedAt)
	}
	// Within the minute, another use is not written again.
	e.Clock.Advance(30 * time.Second)
	e.Do("GET", "/api/v2/me", bearer(raw), nil)
	_ = e.Host.Keys.FlushUsage(context.Background(), false)
	row2, _ := e.Host.Store.Q().GetKeyByID(context.Background(), k.ID)
	if row2.LastUsedAt != row.LastUsedAt {
		t.Fatal("last_used_at was written twice within a minute")
	}
	e.Clock.Advance(31 * time.Second)
	e.Do("GET", "/api/v2/me", bearer(raw), nil)
	_ = e.Host.Keys.FlushUsage(context.Background(), false)
	row3, _ := e.Host.Store.Q().GetKeyByID(context.Background(), k.ID)
	if row3.LastUsedAt.Int64 != e.Clock.Now().UnixMilli() {
		t.Fatal("last_used_at was not written after a minute")
	}
}

func TestStatsAndMetrics(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine)
		org := e.Org("A")
		k, raw := e.Scoped(org, "api-keys:read")
		for i := 0; i < 3; i++ {
			e.Do("GET", "/api/v2/me", bearer(raw), nil)
		}
		e.Do("POST", "/api/v2/keys", bearer(raw), map[string]any{"name": "x"}) // 403
		e.Clock.Advance(24 * time.Hour)
		e.Do("GET", "/api/v2/keys", bearer(raw), nil)
		e.FlushLogs()
		r := e.Do("GET", "/api/v2/keys/"+k.ID+"/stats", bearer(raw), nil)
		if r.Status != 200 {
			t.Fatalf("stats: %d %s", r.Status, r.Body)
		}
		st := r.JSON(t)
		// The stats call itself is logged after it answers.
		if st["total"] != float64(5) {
			t.Fatalf("total = %v, want 5: %s", st["total"], r.Body)
		}
		days := fmt.Sprint(st["by_day"])
		if days != "[map[client_error:1 count:4 day:2026-03-01 server_error:0 success:3] map[client_error:0 count:1 day:2026-03-02 server_error:0 success:1]]" {
			t.Fatalf("by_day = %s", days)
		}
		routes := fmt.Sprint(st["by_route"])
		for _, want := range []string{"map[count:3 route:/api/v2/me status:200]", "map[count:1 route:/api/v2/keys status:403]", "map[count:1 route:/api/v2/keys status:200]"} {
			if !strings.Contains(routes, want) {
				t.Fatalf("by_route = %s, missing %s", routes, want)
			}
		}
		m := e.Do("GET", "/metrics", "", nil)
		for _, want := range []string{
			`indigo_api_requests_total{route="/api/v2/me",status="200"} 3`,
			`indigo_api_requests_total{route="/api/v2/keys",status="403"} 1`,
			"indigo_api_key_cache_hits_total", "indigo_request_log_dropped_total 0", "indigo_request_log_queue_depth",
		} {
			if !strings.Contains(string(m.Body), want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}

// Shutdown writes every queued log entry before the store closes.
func TestShutdownFlushesRequestLogs(t *testing.T) {
	e := coretest.New(t, db.SQLite, func(c *config.Config, _ *core.Options) {
		c.API.LogFlushInterval = config.Duration{Duration: time.Hour}
		c.API.LogBatchSize = 10000
	})
	org := e.Org("A")
	_, raw := e.Superkey(org)
	for i := 0; i < 25; i++ {
		e.Do("GET", "/api/v2/me", bearer(raw), nil)
	}
	if n := e.Host.Logs.Written(); n != 0 {
		t.Fatalf("%d entries written before shutdown; the test needs them queued", n)
	}
	e.Server.Close()
	if err := e.Host.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := db.Open(context.Background(), db.SQLite, e.Cfg.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.DB.QueryRow("SELECT COUNT(*) FROM saas_api_request_logs").Scan(&n); err != nil || n != 25 {
		t.Fatalf("%d log rows after shutdown (%v), want 25", n, err)
	}
}

// Defect 3 of issue 14 at the host: PostgreSQL becomes unreachable with
// calls still queued, and the host is stopped (SIGTERM) in the outage. What
// the database cannot take goes to the spool in the data folder, and the
// next host on that folder replays it: every call is logged, once.
func TestPostgresOutageAtShutdownSpoolsAndTheNextHostReplays(t *testing.T) {
	u, err := url.Parse(dbtest.URL(t, db.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	proxy := coretest.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	data := t.TempDir()
	throughProxy := func(c *config.Config, _ *core.Options) {
		c.Database.URL = u.String()
		c.Server.DataDir = data
		c.API.LogFlushInterval = config.Duration{Duration: time.Hour}
		c.API.LogBatchSize = 10000
	}
	a := coretest.New(t, db.Postgres, throughProxy)
	org := a.Org("A")
	_, raw := a.Superkey(org)
	const n = 40
	for i := 0; i < n; i++ {
		if i == n/2 {
			a.FlushLogs()
		}
		if r := a.Do("GET", "/api/v2/me", bearer(raw), nil); r.Status != 200 {
			t.Fatalf("call %d: %d %s", i, r.Status, r.Body)
		}
	}
	// The last half waits in the queue for the hour-long flush interval.
	proxy.Refuse()
	a.Server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = a.Host.Shutdown(ctx) // the key usage cannot be saved either, and says so
	cancel()
	if segs, _ := filepath.Glob(filepath.Join(core.SpoolDir(a.Cfg), "*.jsonl")); len(segs) == 0 || a.Host.Logs.Spilled() != n/2 || a.Host.Logs.Dropped() != 0 {
		t.Fatalf("after a shutdown in the outage: segments %v, spilled %d, dropped %d", segs, a.Host.Logs.Spilled(), a.Host.Logs.Dropped())
	}

	proxy.Forward()
	b := coretest.New(t, db.Postgres, throughProxy)
	var rows, distinct int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := b.Host.Store.DB.QueryRow("SELECT COUNT(*), COUNT(DISTINCT request_id) FROM saas_api_request_logs").Scan(&rows, &distinct)
		if err == nil && rows == n && b.Host.Logs.SpoolBytes() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d log rows (%v), spool %d bytes: want %d rows and an empty spool", rows, err, b.Host.Logs.SpoolBytes(), n)
		}
	}
	if distinct != n {
		t.Fatalf("%d distinct request ids in %d rows", distinct, rows)
	}
}

// A used, expired or malformed sign-in link answers a page for the person
// who followed it, saying what happened and how to get a new link; the
// session tells the dashboard its organization's name and the default
// rate limit of new keys.
func TestSignInLinkPageAndSession(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine, func(c *config.Config, _ *core.Options) { c.API.DefaultRateLimit = "600/1m" })
		org := e.Org("Acme Widgets")
		tok, err := e.Host.Local.LoginLink(context.Background(), org, "owner@example.com", "owner", false)
		if err != nil {
			t.Fatal(err)
		}
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		get := func(url string) (*http.Response, string) {
			t.Helper()
			resp, err := noFollow.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			return resp, b.String()
		}
		link := e.Server.URL + "/auth/login?token=" + tok
		if resp, _ := get(link); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("first use: %d", resp.StatusCode)
		}
		for name, url := range map[string]string{
			"used":     link,
			"unknown":  e.Server.URL + "/auth/login?token=" + strings.Repeat("ab", 32),
			"no token": e.Server.URL + "/auth/login",
			"too long": e.Server.URL + "/auth/login?token=" + strings.Repeat("x", 200),
		} {
			resp, body := get(url)
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("%s link: %d %s", name, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			for _, want := range []string{"can no longer be used", "already used, has expired", "15 minutes", "indigo login-link --org"} {
				if !strings.Contains(body, want) {
					t.Errorf("%s link page lacks %q:\n%s", name, want, body)
				}
			}
			if strings.Contains(body, `{"error"`) || resp.Header.Get("Content-Security-Policy") == "" {
				t.Errorf("%s link: a JSON body or no CSP", name)
			}
		}

		cookie, _ := e.Session(org, "admin@example.com", "admin", false)
		r := e.Do("GET", "/api/session", "", nil, "Cookie", cookie)
		s := r.JSON(t)
		rl, _ := s["default_rate_limit"].(map[string]any)
		if r.Status != 200 || s["org_name"] != "Acme Widgets" || s["org_id"] != org || rl["limit"] != 600.0 || rl["window_seconds"] != 60.0 {
			t.Fatalf("session: %d %s", r.Status, r.Body)
		}
	})
}

// Every kind of domain refusal has a status, and the answer keeps the
// domain's code and message.
func TestEveryDomainRefusalHasAStatus(t *testing.T) {
	for _, k := range []apikey.Kind{apikey.Malformed, apikey.Invalid, apikey.NotFound, apikey.Conflict, apikey.Unavailable} {
		e := api.StatusOf(fmt.Errorf("wrapped: %w", &apikey.Error{Kind: k, Code: "c", Message: "m"}))
		if e == nil || e.Status < 400 || e.Status > 599 || e.Code != "c" || e.Message != "m" {
			t.Errorf("kind %d: %+v", k, e)
		}
	}
	if api.StatusOf(errors.New("disk on fire")) != nil {
		t.Error("an unexpected error was given a status (it must stay a logged 500)")
	}
}

// A flood of made-up keys that pass the checksum costs no database lookup
// each: the host knows which hashes are stored, and leaves only a small
// budget of lookups a second for keys created a moment ago elsewhere. A key
// created by another process is still accepted once the change feed has
// reported it, even while that budget is spent.
func TestMadeUpKeysCostNoLookupEach(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine)
		org := e.Org("Acme")
		_, good := e.Superkey(org)
		if err := e.Host.Keys.LoadKnownKeys(context.Background()); err != nil {
			t.Fatal(err)
		}
		if r := e.Do("GET", "/api/v2/me", bearer(good), nil); r.Status != 200 {
			t.Fatalf("a stored key: %d", r.Status)
		}
		_, misses0 := e.Host.Keys.CacheStats()
		const flood = 1000
		floodStart := time.Now()
		for range flood {
			madeUp, _ := apikey.Generate("indigo_sk")
			if r := e.Do("GET", "/api/v2/me", bearer(madeUp), nil); r.Status != 401 {
				t.Fatalf("a made-up key: %d", r.Status)
			}
		}
		_, misses := e.Host.Keys.CacheStats()
		// The budget is 100 lookups that find nothing per second of the
		// wall clock that the flood touched, plus the filter's false
		// positives (0.1%).
		allowed := uint64(100*(int(time.Since(floodStart)/time.Second)+2) + flood/100)
		if lookups := misses - misses0; lookups > allowed {
			t.Fatalf("%d made-up keys cost %d lookups; want at most %d (the budget and a few false positives)", flood, lookups, allowed)
		}
		if refused := e.Host.Keys.UnknownRefused(); refused < flood-allowed {
			t.Fatalf("%d refused without a lookup, want most of %d", refused, flood)
		}
		// Another process (the CLI, another host) creates a key: the
		// change feed tells this host, which then accepts it at once.
		other := apikey.New(e.Host.Store, e.Host.Scopes, apikey.Settings{Prefix: "indigo_sk"}, e.Clock.Now, nil)
		_, raw, err := other.Create(context.Background(), org, apikey.Actor{ID: "cli"}, apikey.CreateInput{Name: "from elsewhere"})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := e.Do("GET", "/api/v2/me", bearer(raw), nil)
			if r.Status == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a key created by another process: %d after 5 s", r.Status)
			}
			// Keep the lookup budget spent, as a flood would.
			for range 50 {
				madeUp, _ := apikey.Generate("indigo_sk")
				e.Do("GET", "/api/v2/me", bearer(madeUp), nil)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// A caller that goes away while its key is being looked up (a cache miss)
// is recorded as 499 and logged below error level: the database did not
// fail, and nobody should be paged for it.
func TestCallerGoneDuringKeyLookup(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine)
		_, raw := e.Superkey(e.Org("A"))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req := httptest.NewRequestWithContext(ctx, "GET", "/api/v2/me", nil)
		req.Header.Set("Authorization", bearer(raw))
		w := httptest.NewRecorder()
		e.Host.Handler().ServeHTTP(w, req)
		if w.Code != 499 {
			t.Fatalf("status %d %s, want 499", w.Code, w.Body)
		}
		if logs := e.Logs.String(); strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "caller went away during the key lookup") {
			t.Fatalf("logs:\n%s", logs)
		}
		m := e.Do("GET", "/metrics", "", nil)
		if !strings.Contains(string(m.Body), `indigo_api_key_verifications_total{result="caller_gone"} 1`) {
			t.Fatalf("metrics do not count the lookup as caller_gone:\n%s", m.Body)
		}
		// The key itself is fine: the next call with it passes.
		if r := e.Do("GET", "/api/v2/me", bearer(raw), nil); r.Status != 200 {
			t.Fatalf("the next call: %d %s", r.Status, r.Body)
		}
	})
}
