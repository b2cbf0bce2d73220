// Package clustertest drives the local production rehearsal (make cluster:
// PostgreSQL, Redis, three hosts and HAProxy on loopback) from outside, as
// clients and operators would: through the load balancer and against each
// host. `make test-cluster` runs it; `make test` runs it under CI=true.
package clustertest

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the cluster's PostgreSQL, for its request log
)

const lb = "http://127.0.0.1:18080"

var hosts = []string{"http://127.0.0.1:18081", "http://127.0.0.1:18082", "http://127.0.0.1:18083"}

type cluster struct {
	t    *testing.T
	root string
}

// up starts the cluster (building bin/indigo) and stops it at the end.
// Without PostgreSQL, Redis or HAProxy installed the test skips, except
// under CI=true.
func up(t *testing.T) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	var missing []string
	for _, bin := range []string{"redis-server", "haproxy"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if pg, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(pg) == 0 {
		missing = append(missing, "postgresql")
	}
	if len(missing) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the cluster needs %s", strings.Join(missing, ", "))
		}
		t.Skipf("the cluster needs %s", strings.Join(missing, ", "))
	}
	root, _ := filepath.Abs("../..")
	c := &cluster{t: t, root: root}
	c.make("cluster-stop") // one left running by an interrupted run
	_ = os.RemoveAll(filepath.Join(root, ".cluster"))
	c.make("cluster")
	t.Cleanup(func() { c.make("cluster-stop") })
	return c
}

func (c *cluster) make(target string) string {
	c.t.Helper()
	cmd := exec.Command("make", target)
	cmd.Dir = c.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("make %s: %v\n%s", target, err, out)
	}
	return string(out)
}

// indigo runs the CLI against the cluster's database.
func (c *cluster) indigo(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(c.root, "bin", "indigo"), append(args, "--config", "deploy/cluster.toml")...)
	cmd.Dir = c.root
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("indigo %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (c *cluster) key(org, name string, extra ...string) (id, raw string) {
	c.t.Helper()
	var created struct {
		Key    struct{ ID string } `json:"key"`
		RawKey string              `json:"raw_key"`
	}
	if len(extra) == 0 || extra[0] != "--superkey" {
		extra = append(extra, "--scopes", "")
	}
	out := c.indigo(append([]string{"keys", "create", "--org", org, "--name", name, "--json"}, extra...)...)
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		c.t.Fatal(err)
	}
	return created.Key.ID, created.RawKey
}

func call(base, method, path, key string) int {
	req, _ := http.NewRequest(method, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestCluster(t *testing.T) {
	c := up(t)
	org := c.indigo("orgs", "create", "Acme")

	// A key allowed L per window, driven through the load balancer (round
	// robin over three hosts) at about 10× the limit for five and a half
	// windows: the admitted count is the ideal (L per window started) to
	// within 5%, and no window's length ever holds more than L × 1.05.
	t.Run("rate limit across hosts", func(t *testing.T) {
		const limit, window = 20, time.Second
		keyID, raw := c.key(org, "limited", "--rate-limit", fmt.Sprintf("%d/1s", limit))
		var mu sync.Mutex
		var admitted []time.Time
		start := time.Now()
		duration := 5500 * time.Millisecond
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for time.Since(start) < duration {
					if call(lb, "GET", "/api/v2/me", raw) == 200 {
						mu.Lock()
						admitted = append(admitted, time.Now())
						mu.Unlock()
					}
					time.Sleep(time.Millisecond) // ~200 calls a second each: ~10× the limit
				}
			})
		}
		wg.Wait()
		ideal := limit * 6 // windows started at 0, 1, 2, 3, 4 and 5 s
		if n := len(admitted); n < ideal || float64(n) > float64(ideal)*1.05 {
			t.Fatalf("admitted %d, ideal %d", n, ideal)
		}
		// The hosts' request log has when each admitted call started, on
		// the clock the hosts and Redis share (one machine): a client's
		// receive times would add the network's jitter.
		time.Sleep(1200 * time.Millisecond) // the log writer's flush
		at := c.admittedAt(keyID)
		if len(at) != len(admitted) {
			t.Fatalf("the request log has %d admitted calls, the client saw %d", len(at), len(admitted))
		}
		worst := 0
		for i := range at {
			j := i
			for j < len(at) && at[j]-at[i] < window.Milliseconds() {
				j++
			}
			worst = max(worst, j-i)
		}
		if float64(worst) > limit*1.05 {
			t.Fatalf("%d admitted within one window, limit %d", worst, limit)
		}
		t.Logf("admitted %d of an ideal %d; at most %d in any %v", len(admitted), ideal, worst, window)
	})

	// remaining = 100 and 300 concurrent calls over the three hosts: exactly
	// 100 pass.
	t.Run("quota across hosts", func(t *testing.T) {
		id, raw := c.key(org, "quota")
		if out := c.indigo("keys", "list", "--org", org); !strings.Contains(out, id) {
			t.Fatal(out)
		}
		// The CLI has no quota flag: set it over the API with a superkey.
		_, admin := c.key(org, "admin", "--superkey")
		req, _ := http.NewRequest("PATCH", lb+"/api/v2/keys/"+id, strings.NewReader(`{"remaining":100}`))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("set remaining: %v %v", err, resp)
		}
		resp.Body.Close()
		time.Sleep(100 * time.Millisecond) // the change reaches every host's cache
		var mu sync.Mutex
		got := map[int]int{}
		var wg sync.WaitGroup
		for i := range 300 {
			wg.Go(func() {
				s := call(hosts[i%3], "GET", "/api/v2/me", raw)
				mu.Lock()
				got[s]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if got[200] != 100 || got[429] != 200 {
			t.Fatalf("%v, want 100 × 200 and 200 × 429", got)
		}
	})

	// A key revoked through host 1 is refused by hosts 2 and 3.
	t.Run("revocation", func(t *testing.T) {
		_, admin := c.key(org, "revoker", "--superkey")
		var delays []time.Duration
		for i := range 200 {
			id, raw := c.keyOverAPI(admin, fmt.Sprint("r", i))
			for _, h := range hosts[1:] {
				if s := call(h, "GET", "/api/v2/me", raw); s != 200 {
					t.Fatalf("a new key on %s: %d", h, s)
				}
			}
			if s := call(hosts[0], "DELETE", "/api/v2/keys/"+id, admin); s != 200 {
				t.Fatalf("revoke: %d", s)
			}
			start := time.Now()
			for _, h := range hosts[1:] {
				for call(h, "GET", "/api/v2/me", raw) != 401 {
					if time.Since(start) > time.Second {
						t.Fatalf("key %d still works on %s a second after its revocation", i, h)
					}
					time.Sleep(200 * time.Microsecond)
				}
			}
			delays = append(delays, time.Since(start))
		}
		slices.Sort(delays)
		t.Logf("revocation_p50_ms: %.2f revocation_p99_ms: %.2f revocation_max_ms: %.2f (over %d keys, both other hosts)",
			ms(delays[len(delays)/2]), ms(delays[len(delays)*99/100]), ms(delays[len(delays)-1]), len(delays))
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// admittedAt reads from the cluster's database when each admitted call of
// a key started (ms), in order.
func (c *cluster) admittedAt(keyID string) []int64 {
	c.t.Helper()
	db, err := sql.Open("pgx", "postgres://indigo@127.0.0.1:55432/indigo?sslmode=disable")
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT created_at FROM saas_api_request_logs WHERE key_id = $1 AND status = 200 ORDER BY created_at`, keyID)
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			c.t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// keyOverAPI creates a key through the load balancer (faster than the CLI).
func (c *cluster) keyOverAPI(admin, name string) (id, raw string) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", lb+"/api/v2/keys", strings.NewReader(`{"name":"`+name+`","scopes":[]}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var created struct {
		Key    struct{ ID string } `json:"key"`
		RawKey string              `json:"raw_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != 201 {
		c.t.Fatalf("create a key: %d %v", resp.StatusCode, err)
	}
	return created.Key.ID, created.RawKey
}
