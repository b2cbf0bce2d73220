// Package soaktest holds the soak: the real host binary serving a steady
// load for minutes, watched for what grows. `make soak` runs it
// (INDIGO_SOAK=1); plain `go test ./...` skips it.
package soaktest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/coretest"
)

// The bounds a soak holds, from the sample that ends the warm-up to the
// largest later one.
const (
	rssGrowthMiB      = 30   // host or module RSS may grow this much,
	rssGrowthFraction = 0.20 // or this fraction of it, whichever is more
	goroutineGrowth   = 50
	fdGrowth          = 20
	// The load must really be applied: at least this fraction of the
	// requests the schedule asked for.
	minRateFraction = 0.8
	// conns is the client's connections, each served by one worker.
	conns = 16
)

// settings are the soak's knobs, from the environment.
type settings struct {
	duration, interval time.Duration
	rps, keys          int
}

func readSettings(t *testing.T) settings {
	t.Helper()
	s := settings{duration: 3 * time.Minute, rps: 300, keys: 1000}
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			t.Fatalf("SOAK_DURATION=%q: want a duration of 10s or more", v)
		}
		s.duration = d
	}
	// Samples every 15 s; a short run (CI's 30 s) samples six times.
	s.interval = 15 * time.Second
	if s.duration < 2*time.Minute {
		s.interval = s.duration / 6
	}
	for name, p := range map[string]*int{"SOAK_RPS": &s.rps, "SOAK_KEYS": &s.keys} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive integer", name, v)
			}
			*p = n
		}
	}
	return s
}

// TestSoak builds the host (cmd/indigo) and the projects module, serves
// them on SQLite in a temporary folder, creates the keys through the API
// and drives GET /api/v2/me and GET /api/v2/projects (the module, reading
// its database) round-robin over the keys at a steady rate. Every interval it samples the
// host's RSS, goroutines (go_goroutines from /metrics), open files and child
// processes, and the module's RSS; it prints them as a table and fails when
// one grows past its bound after the warm-up (the first third of the run),
// when the children change, or when a request fails.
func TestSoak(t *testing.T) {
	if os.Getenv("INDIGO_SOAK") != "1" {
		t.Skip("the soak runs with INDIGO_SOAK=1 (make soak)")
	}
	cfg := readSettings(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "indigo")
	build(t, root, bin, "./cmd/indigo")
	build(t, root, filepath.Join(dir, "plugins", "projects"), "./modules/projects")

	addr := freeAddr(t)
	toml := fmt.Sprintf(`[server]
addr = %q
[database]
driver = "sqlite"
url = "data/indigo.db"
[api]
dev = true
[[modules]]
name = "projects"
path = "plugins/projects"
`, addr)
	if err := os.WriteFile(filepath.Join(dir, "indigo.toml"), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(cleanEnv(), "INDIGO_CONFIG="+filepath.Join(dir, "indigo.toml"))
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = dir, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("indigo %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}

	pid := serve(t, bin, dir, env)
	base := "http://" + addr
	org := cli("orgs", "create", "Soak")
	var admin struct {
		RawKey string `json:"raw_key"`
	}
	if err := json.Unmarshal([]byte(cli("keys", "create", "--org", org, "--name", "soak-admin", "--superkey", "--rate-limit", "0", "--json")), &admin); err != nil {
		t.Fatal(err)
	}
	// A fixed pool of connections, all open before the first sample, so
	// that the host's open files and goroutines do not follow how many
	// requests happen to be in flight.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	if st, body := call(client, "POST", base+"/api/v2/projects", admin.RawKey, `{"name":"soak"}`); st != 201 {
		t.Fatalf("create a project: %d %s", st, body)
	}
	keys := createKeys(t, client, base, admin.RawKey, cfg.keys)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { _, _ = call(client, "GET", base+"/api/v2/me", keys[i%len(keys)], "") })
	}
	wg.Wait()
	t.Logf("host pid %d, %d keys; %d requests/s for %s, a sample every %s", pid, len(keys), cfg.rps, cfg.duration, cfg.interval)

	var samples []sample
	take := func(at time.Duration, l *load) {
		s, err := measure(client, base, pid)
		if err != nil {
			t.Fatalf("sample at %s: %v", at, err)
		}
		s.at = at
		if l != nil {
			s.requests, s.failed = l.done.Load(), l.failed.Load()
		}
		samples = append(samples, s)
		t.Log(s.row())
	}
	t.Log(header)
	take(0, nil)

	// The load runs on a little past the last sample, so that every
	// sample is taken under it.
	l := &load{client: client, base: base, keys: keys}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.duration+cfg.interval/2)
	defer cancel()
	done := make(chan struct{})
	start := time.Now() // wall clock: the soak's schedule is real time
	go func() { l.run(ctx, cfg.rps); close(done) }()
	tick := time.NewTicker(cfg.interval)
	for range int(cfg.duration / cfg.interval) {
		<-tick.C
		take(time.Since(start).Round(time.Second), l) // wall clock: as above
	}
	tick.Stop()
	<-done
	elapsed := time.Since(start) // wall clock: as above

	// Once the load stops and the client hangs up, the host is back to
	// what it held before it.
	client.CloseIdleConnections()
	time.Sleep(2 * time.Second)
	take(elapsed.Round(time.Second)+2*time.Second, l)
	idle := samples[len(samples)-1]
	samples = samples[:len(samples)-1]
	verdicts := judge(samples, cfg.duration/3)
	verdicts = append(verdicts,
		verdict{"idle after", fmt.Sprintf("goroutines %d → %d, open fds %d → %d from before the load", samples[0].goroutines, idle.goroutines, samples[0].fds, idle.fds),
			idle.goroutines-samples[0].goroutines < goroutineGrowth && idle.fds-samples[0].fds < fdGrowth})
	asked := int64(elapsed.Seconds() * float64(cfg.rps))
	verdicts = append(verdicts, verdict{"requests", fmt.Sprintf("%d of %d scheduled (%.0f/s), %d failed", l.done.Load(), asked,
		float64(l.done.Load())/elapsed.Seconds(), l.failed.Load()),
		l.failed.Load() == 0 && float64(l.done.Load()) >= minRateFraction*float64(asked)})
	fails := 0
	for _, v := range verdicts {
		mark := "ok  "
		if !v.ok {
			mark, fails = "FAIL", fails+1
		}
		t.Logf("%s %-12s %s", mark, v.what, v.detail)
	}
	if n := l.firstErr.Load(); n != nil {
		t.Logf("first failure: %s", *n)
	}
	if fails > 0 {
		t.Fatalf("%d of %d soak bounds broken", fails, len(verdicts))
	}
}

func build(t *testing.T, root, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// cleanEnv is the environment without INDIGO_ settings, so that only the
// soak's config reaches the binary.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INDIGO_") {
			env = append(env, kv)
		}
	}
	return env
}

// serve starts `indigo serve` and returns its pid once it listens; it is
// stopped with SIGTERM at the end.
func serve(t *testing.T, bin, dir string, env []string) int {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Dir, cmd.Env = dir, env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr coretest.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	listening := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if !ok && strings.HasPrefix(sc.Text(), "Indigo is listening on ") {
				ok = true
				listening <- true
			}
		}
		if !ok {
			listening <- false
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("serve exited with %v: %s", err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("serve did not stop on SIGTERM")
		}
	})
	select {
	case ok := <-listening:
		if !ok {
			t.Fatalf("serve exited: %s", stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start: %s", stderr.String())
	}
	return cmd.Process.Pid
}

// call sends one request and returns the status and body.
func call(c *http.Client, method, url, key, body string) (int, []byte) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// createKeys creates n keys holding projects:read through the API, a few
// at a time.
func createKeys(t *testing.T, c *http.Client, base, admin string, n int) []string {
	t.Helper()
	keys := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[string]
	for range conns {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed.Load() != nil {
					return
				}
				st, body := call(c, "POST", base+"/api/v2/keys", admin, fmt.Sprintf(`{"name":"soak-%d","scopes":["projects:read"]}`, i))
				var created struct {
					RawKey string `json:"raw_key"`
				}
				if st != 201 || json.Unmarshal(body, &created) != nil || created.RawKey == "" {
					msg := fmt.Sprintf("create key %d: %d %s", i, st, body)
					failed.Store(&msg)
					return
				}
				keys[i] = created.RawKey
			}
		})
	}
	wg.Wait()
	if msg := failed.Load(); msg != nil {
		t.Fatal(*msg)
	}
	return keys
}

// load is the steady traffic: an open schedule of rps requests a second
// that does not slow down when the host does, served by a pool of workers.
type load struct {
	client       *http.Client
	base         string
	keys         []string
	done, failed atomic.Int64
	firstErr     atomic.Pointer[string]
}

func (l *load) run(ctx context.Context, rps int) {
	jobs := make(chan int64, rps) // a second of backlog at most
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for i := range jobs {
				path := "/api/v2/me"
				if i%2 == 1 {
					path = "/api/v2/projects"
				}
				st, body := call(l.client, "GET", l.base+path, l.keys[int(i/2)%len(l.keys)], "")
				l.done.Add(1)
				if st != 200 {
					if l.failed.Add(1) == 1 {
						msg := fmt.Sprintf("GET %s: %d %s", path, st, body)
						l.firstErr.Store(&msg)
					}
				}
			}
		})
	}
	start := time.Now() // wall clock: the schedule is real time
	var sent int64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			// wall clock: as above
			due := int64(time.Since(start).Seconds() * float64(rps))
			for ; sent < due; sent++ {
				select {
				case jobs <- sent:
				default: // the workers are a second behind: the host is not keeping up
				}
			}
		}
	}
	close(jobs)
	wg.Wait()
}

// sample is one row of the table.
type sample struct {
	at               time.Duration
	rssKiB           int64
	goroutines       int64
	fds              int64
	children         []int
	moduleRSSKiB     int64
	requests, failed int64
}

const header = "    time    rss MiB  goroutines  open fds  children  module rss MiB  requests  failed"

func (s sample) row() string {
	return fmt.Sprintf("%8s  %9.1f  %10d  %8d  %8d  %13.1f  %8d  %6d", s.at, float64(s.rssKiB)/1024, s.goroutines, s.fds,
		len(s.children), float64(s.moduleRSSKiB)/1024, s.requests, s.failed)
}

// measure reads the host's figures from /proc and /metrics.
func measure(c *http.Client, base string, pid int) (sample, error) {
	var s sample
	var err error
	if s.rssKiB, err = vmRSS(pid); err != nil {
		return s, err
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = int64(len(fds))
	if s.children, err = children(pid); err != nil {
		return s, err
	}
	for _, child := range s.children {
		if kb, err := vmRSS(child); err == nil {
			s.moduleRSSKiB += kb
		}
	}
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return s, fmt.Errorf("go_goroutines %q: %v", v, err)
			}
			s.goroutines = int64(f)
			return s, nil
		}
	}
	return s, errors.New("/metrics has no go_goroutines")
}

func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("pid %d: no VmRSS", pid)
}

// children lists a process's child processes, from every thread's
// children file.
func children(pid int) ([]int, error) {
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("pid %d: no task children files: %v", pid, err)
	}
	var out []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that ended
		}
		for _, field := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(field); err == nil {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

type verdict struct {
	what, detail string
	ok           bool
}

// judge compares the samples after the warm-up with the first sample that
// ends it.
func judge(samples []sample, warmup time.Duration) []verdict {
	i := slices.IndexFunc(samples, func(s sample) bool { return s.at >= warmup })
	if i < 0 || i == len(samples)-1 {
		return []verdict{{"samples", fmt.Sprintf("%d samples, none after the warm-up of %s to compare", len(samples), warmup), false}}
	}
	base, later := samples[i], samples[i+1:]
	peak := func(f func(sample) int64) int64 {
		m := f(later[0])
		for _, s := range later[1:] {
			m = max(m, f(s))
		}
		return m
	}
	grew := func(what string, f func(sample) int64, bound int64, unit string, scale float64) verdict {
		b, p := f(base), peak(f)
		return verdict{what, fmt.Sprintf("%s after the warm-up, %s at most (bound +%s)",
			num(float64(b)/scale, unit), num(float64(p)/scale, unit), num(float64(bound)/scale, unit)), p-b < bound}
	}
	rssBound := func(f func(sample) int64) int64 {
		return max(rssGrowthMiB*1024, int64(rssGrowthFraction*float64(f(base))))
	}
	rss := func(s sample) int64 { return s.rssKiB }
	modRSS := func(s sample) int64 { return s.moduleRSSKiB }
	out := []verdict{
		grew("host rss", rss, rssBound(rss), "MiB", 1024),
		grew("module rss", modRSS, rssBound(modRSS), "MiB", 1024),
		grew("goroutines", func(s sample) int64 { return s.goroutines }, goroutineGrowth, "", 1),
		grew("open fds", func(s sample) int64 { return s.fds }, fdGrowth, "", 1),
	}
	same := true
	for _, s := range samples {
		same = same && slices.Equal(s.children, samples[0].children)
	}
	out = append(out, verdict{"children", fmt.Sprintf("%v at the start, constant: %v", samples[0].children, same), same && len(samples[0].children) > 0})
	return out
}

func num(v float64, unit string) string {
	if unit == "" {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
}
