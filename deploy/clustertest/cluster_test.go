// Package clustertest drives the local production rehearsal (make cluster:
// PostgreSQL, Redis, three hosts and HAProxy on loopback) from outside, as
// clients and operators would: through the load balancer and against each
// host. `make test-cluster` runs it; `make test` runs it under CI=true.
package clustertest

import (
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
		_, raw := c.key(org, "limited", "--rate-limit", fmt.Sprintf("%d/1s", limit))
		// Each admitted call is known to have been admitted (on Redis's
		// clock) between its send and its receive.
		type span struct{ sent, got time.Time }
		var mu sync.Mutex
		var admitted []span
		start := time.Now()
		duration := 5500 * time.Millisecond
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for time.Since(start) < duration {
					sent := time.Now()
					if call(lb, "GET", "/api/v2/me", raw) == 200 {
						got := time.Now()
						mu.Lock()
						admitted = append(admitted, span{sent, got})
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
		// A window certainly held more than the limit when some calls'
		// spans all fit in one window's length: whatever the network's
		// jitter, their admissions were then within it.
		worst := 0
		for _, first := range admitted {
			n := 0
			for _, c := range admitted {
				if !c.sent.Before(first.sent) && c.got.Sub(first.sent) < window {
					n++
				}
			}
			worst = max(worst, n)
		}
		if float64(worst) > limit*1.05 {
			t.Fatalf("%d admitted within one window, limit %d", worst, limit)
		}
		t.Logf("admitted %d of an ideal %d; at most %d certainly within any %v", len(admitted), ideal, worst, window)
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

	// Last, as it leaves the cluster a host short: a host killed with
	// SIGKILL mid-load. HAProxy stops sending it traffic; a call that was
	// on it when it died may fail (HAProxy never sends a request that
	// reached a host twice), and none after.
	t.Run("a host killed mid-load", func(t *testing.T) {
		_, raw := c.key(org, "steady", "--rate-limit", "0") // no limit: every call should pass
		pidFile := filepath.Join(c.root, ".cluster", "pids", "host2.pid")
		pid, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		const workers = 4
		var mu sync.Mutex
		status := map[int]int{}
		var lastFailure time.Time
		start := time.Now()
		killedAt := start.Add(time.Second)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for time.Since(start) < 5*time.Second {
					s := call(lb, "GET", "/api/v2/me", raw)
					mu.Lock()
					status[s]++
					if s != 200 {
						lastFailure = time.Now()
					}
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Until(killedAt))
		if out, err := exec.Command("kill", "-9", strings.TrimSpace(string(pid))).CombinedOutput(); err != nil {
			t.Fatalf("kill host2: %v %s", err, out)
		}
		wg.Wait()
		failed := 0
		for s, n := range status {
			if s != 200 {
				failed += n
			}
		}
		if failed > workers {
			t.Fatalf("%v: more failures than calls in flight when the host died", status)
		}
		if failed > 0 && lastFailure.Sub(killedAt) > time.Second {
			t.Fatalf("a call failed %v after the kill: HAProxy kept sending to the dead host", lastFailure.Sub(killedAt))
		}
		t.Logf("host killed mid-load: %v over %v (%d failed, all at the kill)", status, 5*time.Second, failed)
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

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
