package faults_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Two hosts serve one SQLite file (each with the default auto_migrate: the
// second finds the schema current). What one host does to a key, the
// other sees through the change feed within a second; keys created on
// both at once are all created, or refused with a JSON 503 when SQLite is
// busy, never a 500, and every 201 is a key that exists.
func TestTwoHostsOnOneSQLiteFile(t *testing.T) {
	const perHost = 50
	file := filepath.Join(t.TempDir(), "shared.db")
	a := startHost(t, hostConfig{DB: file})
	b := startHost(t, hostConfig{DB: file})
	if a.orgID != b.orgID {
		t.Fatalf("the hosts made two default organizations: %s and %s", a.orgID, b.orgID)
	}
	_, super := a.createKey("faults")
	c := newClient(2 * perHost)

	create := func(h *host, name string) answer {
		return c.do("POST", h.url+"/api/v2/keys", super, map[string]any{"name": name, "scopes": []string{"api-keys:read"}, "rate_limit": nil})
	}
	type created struct {
		Key    struct{ ID string } `json:"key"`
		RawKey string              `json:"raw_key"`
	}
	parse := func(ans answer) (created, bool) {
		var k created
		err := json.Unmarshal(ans.body, &k)
		return k, err == nil && k.RawKey != "" && k.Key.ID != ""
	}
	// until polls GET /me on h with key until it answers want, for at
	// most a second, and says how long that took.
	until := func(what string, h *host, key string, want int) time.Duration {
		t.Helper()
		begin := time.Now()
		for {
			ans := c.do("GET", h.url+"/api/v2/me", key, nil)
			if ans.status == want {
				return time.Since(begin)
			}
			if time.Since(begin) > time.Second {
				t.Fatalf("%s: host B still answers %d after 1 s, want %d", what, ans.status, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	ans := create(a, "made-on-a")
	if ans.status != 201 {
		t.Fatalf("create on A: %d %s", ans.status, ans.body)
	}
	k, ok := parse(ans)
	if !ok {
		t.Fatalf("create on A answered %s", ans.body)
	}
	seen := until("a key made on A", b, k.RawKey, 200)
	if r := c.do("DELETE", a.url+"/api/v2/keys/"+k.Key.ID, super, nil); r.status != 200 {
		t.Fatalf("revoke on A: %d %s", r.status, r.body)
	}
	refused := until("a key revoked on A", b, k.RawKey, 401)
	t.Logf("created_on_a_verified_on_b_ms: %.1f", float64(seen.Microseconds())/1000)
	t.Logf("revoked_on_a_refused_on_b_ms: %.1f", float64(refused.Microseconds())/1000)

	// Both hosts write at once.
	var mu sync.Mutex
	statuses := map[string]int{}
	var keys []created
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range perHost {
		for _, h := range []*host{a, b} {
			wg.Go(func() {
				ans := create(h, fmt.Sprintf("burst-%d", i))
				mu.Lock()
				defer mu.Unlock()
				statuses[fmt.Sprintf("%d %s", ans.status, ans.code())]++
				k, ok := parse(ans)
				switch {
				case ans.status == 201 && ok:
					keys = append(keys, k)
				case ans.status == 503 && ans.code() != "":
					// SQLite was busy past the query timeout: said so, in JSON.
				default:
					t.Errorf("concurrent create: %d %v %s", ans.status, ans.err, ans.body)
				}
			})
		}
	}
	wg.Wait()
	burst := time.Since(begin)
	for _, s := range slices.Sorted(maps.Keys(statuses)) {
		t.Logf("concurrent_create_answers %s: %d", strings.TrimSpace(s), statuses[s])
	}
	t.Logf("concurrent_creates_ms: %.1f", float64(burst.Microseconds())/1000)
	if len(keys) == 0 {
		t.Fatal("no concurrent create succeeded")
	}
	time.Sleep(time.Second) // the change feed's bound, for B to know A's keys
	for _, k := range keys {
		if r := c.do("GET", a.url+"/api/v2/keys/"+k.Key.ID, super, nil); r.status != 200 {
			t.Errorf("key %s answered 201 but GET on A says %d", k.Key.ID, r.status)
		}
		if r := c.do("GET", b.url+"/api/v2/me", k.RawKey, nil); r.status != 200 {
			t.Errorf("key %s answered 201 but does not verify on B: %d", k.Key.ID, r.status)
		}
	}
}
