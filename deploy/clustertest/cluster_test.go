// Package clustertest drives the local production rehearsal (make cluster:
// PostgreSQL, Redis, three hosts and HAProxy on loopback) from outside, as
// clients and operators would: through the load balancer and against each
// host. `make test-cluster` runs it; `make test` runs it under CI=true.
package clustertest

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
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
	// Maintenance every 2 s instead of every minute, so that the once-only
	// test sees several intervals (the hosts inherit the environment).
	cmd.Env = append(os.Environ(), "INDIGO_API_MAINTENANCE_INTERVAL=2s")
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

	// Maintenance runs once per interval across the three hosts: each task
	// is claimed by one host per interval (saas_task_runs), and the hosts'
	// own counts of the runs they made add up to the claimed runs.
	t.Run("maintenance once across hosts", func(t *testing.T) {
		before, countedBefore := c.taskRuns(), hostTaskRuns()
		time.Sleep(6500 * time.Millisecond)
		after, counted := c.taskRuns(), hostTaskRuns()
		ran := map[string]int64{}
		for _, task := range []string{"expire-keys", "prune-request-logs", "prune-key-changes", "log-partitions"} {
			d := after[task] - before[task]
			ran[task] = d
			if d < 2 || d > 4 {
				t.Errorf("%s ran %d times in 6.5 s of a 2 s interval across three hosts, want 3 (2 to 4)", task, d)
			}
			// The hosts count a run when it ends: one under way at either
			// reading may be claimed and not yet counted.
			if n := int64(counted[task] - countedBefore[task]); n < d-1 || n > d+1 {
				t.Errorf("%s: the hosts counted %d runs, saas_task_runs %d", task, n, d)
			}
		}
		t.Logf("runs in 6.5 s across three hosts (2 s interval): %v", ran)
	})

	// Redis restarted (empty) mid-load: the hosts fall back to their share
	// of what Redis last reported, say so in /readyz, go back to Redis by
	// themselves, and the quota bound holds: at most what the hosts had not
	// seen spent is granted twice (a few calls in flight here), and what
	// they spent alone during the outage comes off the new count.
	t.Run("redis restarted mid-load", func(t *testing.T) {
		const quota = 1000
		id, raw := c.key(org, "redis-outage", "--rate-limit", "0") // the quota alone (no default limit)
		_, admin := c.key(org, "admin-redis", "--superkey")
		c.setRemaining(admin, id, quota)
		status, stopLoad := load(4, 20*time.Millisecond, func() int { return call(lb, "GET", "/api/v2/me", raw) })
		time.Sleep(time.Second)
		c.cluster("redis-stop")
		downAt := time.Now()
		waitReady(t, "degraded", 3*time.Second)
		okBefore := status()[200]
		time.Sleep(2 * time.Second)
		if during := status()[200] - okBefore; during == 0 {
			t.Fatalf("no call passed while Redis was down: %v", status())
		}
		atRestart, refusedAtRestart := status()[200], status()[429]
		if refusedAtRestart > 0 {
			t.Errorf("%d calls refused while Redis was down: the fallback shares were too small (%v)", refusedAtRestart, status())
		}
		c.cluster("redis-start")
		waitReady(t, "ready", 5*time.Second)
		t.Logf("redis down %v; every host back on Redis %v after it returned", 2*time.Second, time.Since(downAt)-2*time.Second)
		// Spend the rest: the quota runs out on every host.
		deadline := time.Now().Add(15 * time.Second)
		for status()[429] < 50 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		got := stopLoad()
		if got[429] < 50 {
			t.Fatalf("the quota never ran out: %v", got)
		}
		// The bound: 4 callers in flight, each call possibly granted twice
		// (unseen by a host when Redis lost it), and as safe the other way.
		const slack = 12
		t.Logf("%d passed (%d before it went down, %d while down, %d after)", got[200], okBefore, atRestart-okBefore, got[200]-atRestart)
		if got[200] > quota+slack || got[200] < quota-slack {
			t.Fatalf("%v: %d passed for a quota of %d (bound ±%d)", got, got[200], quota, slack)
		}
		for s := range got {
			if s != 200 && s != 429 {
				t.Fatalf("%v: a status other than 200 and 429", got)
			}
		}
		t.Logf("quota %d across a Redis restart: %d passed (%d before it went down, %d while down, %d after), %d refused",
			quota, got[200], okBefore, atRestart-okBefore, got[200]-atRestart, got[429])
	})

	// PostgreSQL restarted mid-load: cached keys keep verifying, management
	// answers 503 JSON while it is down, and everything comes back without
	// restarting a host (including the change feed: a revocation still
	// reaches the other hosts).
	t.Run("postgres restarted mid-load", func(t *testing.T) {
		_, admin := c.key(org, "admin-pg", "--superkey")
		_, raw := c.key(org, "steady-pg", "--rate-limit", "0")
		for _, h := range hosts { // both keys cached on every host
			if s := call(h, "GET", "/api/v2/me", raw); s != 200 {
				t.Fatalf("%s: %d", h, s)
			}
			if s := call(h, "GET", "/api/v2/me", admin); s != 200 {
				t.Fatalf("%s: %d", h, s)
			}
		}
		_, stopLoad := load(4, 2*time.Millisecond, func() int { return call(lb, "GET", "/api/v2/me", raw) })
		time.Sleep(500 * time.Millisecond)
		c.cluster("pg-stop")
		for i, h := range hosts {
			code, body := callBody(h, "GET", "/api/v2/keys", admin)
			if code != 503 || !strings.Contains(body, `"code":"`) {
				t.Fatalf("host%d: management call with PostgreSQL down: %d %s", i+1, code, body)
			}
		}
		time.Sleep(3 * time.Second) // long enough for HAProxy to see every /readyz fail
		if code, body := callBody(lb, "GET", "/api/v2/keys", admin); code != 503 || !strings.HasPrefix(body, "{") {
			t.Fatalf("through the load balancer with PostgreSQL down: %d %s", code, body)
		}
		c.cluster("pg-start")
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, _ := callBody(lb, "GET", "/api/v2/keys", admin)
			if code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("management still %d 15 s after PostgreSQL came back", code)
			}
			time.Sleep(100 * time.Millisecond)
		}
		got := stopLoad()
		if len(got) != 1 || got[200] == 0 {
			t.Fatalf("a cached key through the outage: %v, want only 200", got)
		}
		t.Logf("a cached key across a PostgreSQL restart: %v", got)
		// Each host is whole again: it creates and verifies a new key, and
		// a revocation through host 1 reaches hosts 2 and 3 promptly.
		for i, h := range hosts {
			if code, body := callBody(h, "GET", "/api/v2/keys?limit=1", admin); code != 200 {
				t.Fatalf("host%d after the restart: %d %s", i+1, code, body)
			}
		}
		id, fresh := c.keyOverAPI(admin, "after-pg")
		for _, h := range hosts[1:] {
			if s := call(h, "GET", "/api/v2/me", fresh); s != 200 {
				t.Fatalf("a new key on %s after the restart: %d", h, s)
			}
		}
		if s := call(hosts[0], "DELETE", "/api/v2/keys/"+id, admin); s != 200 {
			t.Fatalf("revoke: %d", s)
		}
		start := time.Now()
		for _, h := range hosts[1:] {
			for call(h, "GET", "/api/v2/me", fresh) != 401 {
				if time.Since(start) > 2*time.Second {
					t.Fatalf("a revocation after the PostgreSQL restart has not reached %s in 2 s", h)
				}
				time.Sleep(time.Millisecond)
			}
		}
		t.Logf("a revocation after the restart reached both other hosts in %v", time.Since(start))
	})

	// Last, as it leaves the cluster a host short: a host killed with
	// SIGKILL mid-load. HAProxy stops sending it traffic; a call that was
	// on it when it died may fail (HAProxy never sends a request that
	// reached a host twice), and none after.
	t.Run("a host killed mid-load", func(t *testing.T) {
		keyID, raw := c.key(org, "steady", "--rate-limit", "0") // no limit: every call should pass
		pidFile := filepath.Join(c.root, ".cluster", "pids", "host2.pid")
		pid, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		const workers = 4
		var mu sync.Mutex
		status := map[int]int{}
		answered := map[string]string{} // request id -> the host that answered 200
		var lastFailure time.Time
		start := time.Now()
		killedAt := start.Add(time.Second)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for time.Since(start) < 5*time.Second {
					s, rid, host := callVia(lb, "/api/v2/me", raw)
					mu.Lock()
					status[s]++
					if s == 200 {
						answered[rid] = host
					}
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

		// Every answered call has its request-log row, except those the
		// killed host had queued and not yet written (its queue died with
		// it; at most one flush interval of its calls).
		time.Sleep(2 * time.Second) // the live hosts' writers flush
		logged := c.loggedRequestIDs(keyID)
		lost := map[string]int{}
		for rid, host := range answered {
			if !logged[rid] {
				lost[host]++
			}
		}
		for host, n := range lost {
			if host != "host2" && host != "host2-standby" {
				t.Fatalf("%d answered calls of %s have no request-log row (lost: %v)", n, host, lost)
			}
		}
		t.Logf("request-log rows: %d answered with 200, %d logged; unlogged by host: %v", len(answered), len(logged), lost)
	})
}

// cluster runs deploy/cluster.sh with one command (redis-stop, pg-start…).
func (c *cluster) cluster(cmd string) {
	c.t.Helper()
	out, err := exec.Command(filepath.Join(c.root, "deploy", "cluster.sh"), cmd).CombinedOutput()
	if err != nil {
		c.t.Fatalf("cluster.sh %s: %v\n%s", cmd, err, out)
	}
}

// setRemaining sets a key's quota over the API (the CLI has no flag for it).
func (c *cluster) setRemaining(admin, id string, n int) {
	c.t.Helper()
	req, _ := http.NewRequest("PATCH", lb+"/api/v2/keys/"+id, strings.NewReader(fmt.Sprintf(`{"remaining":%d}`, n)))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		c.t.Fatalf("set remaining: %v %v", err, resp)
	}
	resp.Body.Close()
	time.Sleep(100 * time.Millisecond) // the change reaches every host's cache
}

// load runs workers that each call do, pausing between calls, until the
// returned stop; status is the count so far by status code.
func load(workers int, pause time.Duration, do func() int) (status func() map[int]int, stop func() map[int]int) {
	var mu sync.Mutex
	got := map[int]int{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				s := do()
				mu.Lock()
				got[s]++
				mu.Unlock()
				time.Sleep(pause)
			}
		})
	}
	status = func() map[int]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(got)
	}
	return status, func() map[int]int { close(done); wg.Wait(); return status() }
}

// waitReady waits until every host's /readyz says want ("ready" or
// "degraded").
func waitReady(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, h := range hosts {
		for {
			_, body := callBody(h, "GET", "/readyz", "")
			if strings.Contains(body, `"status":"`+want+`"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s/readyz is not %q after %v: %s", h, want, within, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// hostTaskRuns adds up the hosts' own counts of the task runs they made.
func hostTaskRuns() map[string]float64 {
	ran := map[string]float64{}
	for _, h := range hosts {
		_, body := callBody(h, "GET", "/metrics", "")
		for _, line := range strings.Split(body, "\n") {
			rest, ok := strings.CutPrefix(line, `indigo_task_runs_total{result="ok",task="`)
			if !ok {
				continue
			}
			task, v, _ := strings.Cut(rest, `"} `)
			n, _ := strconv.ParseFloat(v, 64)
			ran[task] += n
		}
	}
	return ran
}

// taskRuns reads how many times each task ran, from saas_task_runs.
func (c *cluster) taskRuns() map[string]int64 {
	c.t.Helper()
	conn, err := sql.Open("pgx", "postgres://indigo@127.0.0.1:55432/indigo?sslmode=disable")
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query("SELECT task, runs FROM saas_task_runs")
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var task string
		var n int64
		if err := rows.Scan(&task, &n); err != nil {
			c.t.Fatal(err)
		}
		out[task] = n
	}
	return out
}

// callVia is a GET that also returns the request id and the host that
// answered (HAProxy's X-Indigo-Host).
func callVia(base, path, key string) (status int, requestID, host string) {
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", ""
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Request-Id"), resp.Header.Get("X-Indigo-Host")
}

// loggedRequestIDs reads the request ids logged for a key, from the
// cluster's database.
func (c *cluster) loggedRequestIDs(keyID string) map[string]bool {
	c.t.Helper()
	conn, err := sql.Open("pgx", "postgres://indigo@127.0.0.1:55432/indigo?sslmode=disable")
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query("SELECT request_id FROM saas_api_request_logs WHERE key_id = $1", keyID)
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			c.t.Fatal(err)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return ids
}

func callBody(base, method, path, key string) (int, string) {
	req, _ := http.NewRequest(method, base+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
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
