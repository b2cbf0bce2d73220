package core_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
)

// Two hosts on one PostgreSQL database and one Redis act as one: a key's
// rate limit and quota hold across both; with Redis gone each host keeps
// its share, /readyz says degraded, and /metrics shows the fallback.
func TestTwoHostsShareLimitsThroughRedis(t *testing.T) {
	redis := coretest.Redis(t)
	shared := dbtest.URL(t, db.Postgres)
	opt := func(c *config.Config, _ *core.Options) {
		c.Database.URL = shared
		c.Redis.URL = redis.URL
	}
	a := coretest.New(t, db.Postgres, opt)
	b := coretest.New(t, db.Postgres, opt)
	org := a.Org("Acme")
	hosts := []*coretest.Env{a, b}
	calls := func(raw string, n int) map[int]int {
		got := map[int]int{}
		for i := range n {
			got[hosts[i%2].Do("GET", "/api/v2/me", coretest.Bearer(raw), nil).Status]++
		}
		return got
	}

	_, limited := a.Key(org, apikey.CreateInput{Name: "limited", Scopes: []string{}, RateLimitSet: true, RateLimit: &apikey.RateLimit{Limit: 10, WindowSeconds: 60}})
	if got := calls(limited, 40); got[200] != 10 || got[429] != 30 {
		t.Fatalf("a limit of 10 over two hosts: %v\n%s", got, a.Logs.String())
	}
	remaining := int64(20)
	_, quota := a.Key(org, apikey.CreateInput{Name: "quota", Scopes: []string{}, Remaining: &remaining})
	if got := calls(quota, 60); got[200] != 20 || got[429] != 40 {
		t.Fatalf("a quota of 20 over two hosts: %v", got)
	}

	redis.Stop()
	for _, e := range hosts { // each learns that there are two
		e.Host.Beat(t.Context())
	}
	_, fresh := a.Key(org, apikey.CreateInput{Name: "fresh", Scopes: []string{}, RateLimitSet: true, RateLimit: &apikey.RateLimit{Limit: 10, WindowSeconds: 60}})
	if got := calls(fresh, 20); got[200] != 10 || got[429] != 10 {
		t.Fatalf("a limit of 10 over two hosts without Redis (5 each): %v", got)
	}
	r := a.Do("GET", "/readyz", "", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"status":"degraded"`) || !strings.Contains(string(r.Body), `"redis":"unreachable`) {
		t.Fatalf("readyz without Redis: %d %s", r.Status, r.Body)
	}
	m := string(a.Do("GET", "/metrics", "", nil).Body)
	if !strings.Contains(m, "indigo_redis_fallback 1") {
		t.Fatalf("metrics without Redis lack the fallback gauge")
	}
	// Host a decided half of the 100 calls above through Redis and half
	// of the last 20 by the fallback.
	for via, least := range map[string]int{"redis": 50, "fallback": 10} {
		v := metricValue(t, m, `indigo_ratelimit_decisions_total{via="`+via+`"}`)
		if v < float64(least) {
			t.Fatalf("decisions via %s: %v, want at least %d", via, v, least)
		}
	}
	if !strings.Contains(a.Logs.String(), "redis is unreachable") {
		t.Fatalf("the fallback was not logged:\n%s", a.Logs.String())
	}
	redis.Start()
	time.Sleep(1100 * time.Millisecond) // a degraded host asks Redis again after a second
	if r := a.Do("GET", "/api/v2/me", coretest.Bearer(fresh), nil); r.Status != 200 && r.Status != 429 {
		t.Fatalf("after Redis came back: %d", r.Status)
	}
	if r := a.Do("GET", "/readyz", "", nil); !strings.Contains(string(r.Body), `"redis":"ok"`) {
		t.Fatalf("readyz after Redis came back: %s", r.Body)
	}
	if m := a.Do("GET", "/metrics", "", nil); !strings.Contains(string(m.Body), "indigo_redis_fallback 0") {
		t.Fatal("the fallback gauge did not clear")
	}
}

// A key revoked through host A is refused by host B: the delay is measured
// over 200 keys and printed; the test fails only past a second, so that a
// loaded machine does not make it flaky. B's poll is a 10 s safety net, so
// what is measured is the LISTEN/NOTIFY path.
func TestRevocationReachesTheOtherHost(t *testing.T) {
	shared := dbtest.URL(t, db.Postgres)
	opt := func(c *config.Config, o *core.Options) {
		c.Database.URL = shared
		c.API.ChangeSafetyPoll = config.Duration{Duration: 10 * time.Second}
	}
	a := coretest.New(t, db.Postgres, opt)
	b := coretest.New(t, db.Postgres, opt)
	org := a.Org("Acme")
	_, adminRaw := a.Superkey(org)
	var delays []time.Duration
	for i := range 200 {
		k, raw := a.Key(org, apikey.CreateInput{Name: fmt.Sprint("k", i), Scopes: []string{}})
		if r := b.Do("GET", "/api/v2/me", coretest.Bearer(raw), nil); r.Status != 200 { // cached on B
			t.Fatalf("key %d on B: %d", i, r.Status)
		}
		if r := a.Do("DELETE", "/api/v2/keys/"+k.ID, coretest.Bearer(adminRaw), nil); r.Status != 200 {
			t.Fatalf("revoke through A: %d %s", r.Status, r.Body)
		}
		start := time.Now()
		for b.Do("GET", "/api/v2/me", coretest.Bearer(raw), nil).Status != 401 {
			if time.Since(start) > time.Second {
				t.Fatalf("key %d still works on B a second after its revocation", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
		delays = append(delays, time.Since(start))
	}
	slices.Sort(delays)
	t.Logf("revocation across hosts over %d keys: p50 %v, p99 %v, max %v", len(delays),
		delays[len(delays)/2].Round(10*time.Microsecond), delays[len(delays)*99/100].Round(10*time.Microsecond), delays[len(delays)-1].Round(10*time.Microsecond))
}

// metricValue is the value of one series in a /metrics page.
func metricValue(t *testing.T, page, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(page, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", series)
	return 0
}
