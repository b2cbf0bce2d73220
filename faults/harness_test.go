package faults_test

import (
	"bufio"
	"bytes"
	"encoding/json"
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
	"syscall"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/coretest"
)

// The binaries are built once per test binary, into a folder removed at
// the end.
var bins struct {
	once                  sync.Once
	dir, indigo, projects string
	err                   error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		_ = os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// needFaults skips unless INDIGO_FAULTS=1 (make faults sets it): the tests
// build two binaries and run for tens of seconds, and their timings mean
// little on a machine busy with the rest of `go test ./...`.
func needFaults(t *testing.T) {
	t.Helper()
	if os.Getenv("INDIGO_FAULTS") != "1" {
		t.Skip("the fault tests run under make faults (INDIGO_FAULTS=1)")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("the fault tests read /proc")
	}
}

// build builds `indigo` and the projects module.
func build(t *testing.T) {
	t.Helper()
	needFaults(t)
	bins.once.Do(func() {
		begin := time.Now()
		defer func() { t.Logf("build_binaries_s: %.1f", time.Since(begin).Seconds()) }()
		if bins.dir, bins.err = os.MkdirTemp("", "indigo-faults-"); bins.err != nil {
			return
		}
		bins.indigo = filepath.Join(bins.dir, "indigo")
		bins.projects = filepath.Join(bins.dir, "projects")
		for _, b := range [][2]string{{bins.indigo, "../cmd/indigo"}, {bins.projects, "../modules/projects"}} {
			if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
				bins.err = fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
}

// hostConfig is what differs between the hosts the tests start.
type hostConfig struct {
	DB              string        // the SQLite file; a new one when ""
	Projects        bool          // load the projects module
	ShutdownTimeout time.Duration // 5 s when 0
	API             string        // more [api] lines
}

// host is a running `indigo serve`.
type host struct {
	t       *testing.T
	cmd     *exec.Cmd
	cfgPath string
	db      string
	url     string // http://127.0.0.1:port
	orgID   string // the default organization
	probes  int    // calls of createKey's probes that the host logged
	stderr  *coretest.SyncBuffer
	exited  chan struct{} // closed once the process is reaped
	waitErr error         // valid after exited
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

// startHost writes a config file and starts `indigo serve` on it. It
// returns once the host listens and has printed its default organization.
// The host is killed at cleanup if it still runs.
func startHost(t *testing.T, hc hostConfig) *host {
	t.Helper()
	build(t)
	dir := t.TempDir()
	if hc.DB == "" {
		hc.DB = filepath.Join(dir, "indigo.db")
	}
	if hc.ShutdownTimeout == 0 {
		hc.ShutdownTimeout = 5 * time.Second
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "[server]\naddr = %q\ndata_dir = %q\nshutdown_timeout = %q\n", freeAddr(t), filepath.Join(dir, "data"), hc.ShutdownTimeout.String())
	fmt.Fprintf(&cfg, "[database]\ndriver = \"sqlite\"\nurl = %q\n", hc.DB)
	fmt.Fprintf(&cfg, "[api]\ndev = true\n%s\n", hc.API)
	if hc.Projects {
		fmt.Fprintf(&cfg, "[[modules]]\nname = \"projects\"\npath = %q\n", bins.projects)
	}
	h := &host{t: t, cfgPath: filepath.Join(dir, "indigo.toml"), db: hc.DB, stderr: &coretest.SyncBuffer{}, exited: make(chan struct{})}
	if err := os.WriteFile(h.cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(bins.indigo, "serve", "--config", h.cfgPath)
	h.cmd.Stderr = h.stderr
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			l := sc.Text()
			if rest, ok := strings.CutPrefix(l, "Indigo is listening on "); ok {
				h.url, _, _ = strings.Cut(rest, " ")
			}
			if rest, ok := strings.CutPrefix(l, "Default organization: "); ok {
				if i, j := strings.LastIndexByte(rest, '('), strings.LastIndexByte(rest, ')'); i >= 0 && j > i {
					h.orgID = rest[i+1 : j]
				}
			}
			if !signalled && h.url != "" && h.orgID != "" {
				signalled = true
				close(ready)
			}
		}
	}()
	go func() {
		h.waitErr = h.cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-h.exited:
		default:
			_ = h.cmd.Process.Kill()
			<-h.exited
		}
		if t.Failed() {
			t.Logf("host %s log (the last 4 KiB):\n%s", h.url, tail(h.stderr.String(), 4<<10))
		}
	})
	select {
	case <-ready:
	case <-h.exited:
		t.Fatalf("serve exited at start: %v\n%s", h.waitErr, h.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start within 60 s:\n%s", h.stderr.String())
	}
	return h
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// running reports whether the host process has not exited.
func (h *host) running() bool {
	select {
	case <-h.exited:
		return false
	default:
		return true
	}
}

// createKey makes a superkey without a rate limit with the CLI, as an
// operator would, and waits until the host accepts it.
func (h *host) createKey(name string) (id, raw string) {
	h.t.Helper()
	cmd := exec.Command(bins.indigo, "keys", "create", "--org", h.orgID, "--name", name, "--superkey", "--rate-limit", "0", "--json", "--config", h.cfgPath)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		h.t.Fatalf("indigo keys create: %v\n%s%s", err, out, stderr)
	}
	var created struct {
		Key    struct{ ID string } `json:"key"`
		RawKey string              `json:"raw_key"`
	}
	if err := json.Unmarshal(out, &created); err != nil || created.RawKey == "" {
		h.t.Fatalf("indigo keys create printed %s: %v", out, err)
	}
	c := newClient(1)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r := c.do("GET", h.url+"/api/v2/me", created.RawKey, nil); r.status == 200 {
			h.probes++ // a refused unknown key is not logged; an accepted one is
			break
		} else if time.Now().After(deadline) {
			h.t.Fatalf("a key made by the CLI is still refused after 5 s: %d %s", r.status, r.body)
		}
	}
	return created.Key.ID, created.RawKey
}

// modulePIDs lists the host's live children that run the projects binary.
func (h *host) modulePIDs() []int {
	var out []int
	for _, pid := range childPIDs(h.cmd.Process.Pid) {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && filepath.Base(exe) == "projects" {
			out = append(out, pid)
		}
	}
	return out
}

// waitModule waits until the host runs one module process other than old
// (0: any) and returns its pid.
func (h *host) waitModule(old int, within time.Duration) int {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, pid := range h.modulePIDs() {
			if pid != old {
				return pid
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no new module process within %v (had %d)", within, old)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// childPIDs lists the live (not zombie) children of pid: from the
// kernel's children lists where it keeps them (CONFIG_PROC_CHILDREN),
// else by reading every process's parent from /proc/*/stat.
func childPIDs(pid int) []int {
	var out []int
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if len(lists) > 0 {
		for _, l := range lists {
			b, _ := os.ReadFile(l)
			for _, f := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(f); err == nil && alive(n) {
					out = append(out, n)
				}
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid := procStat(n); state != "" && state != "Z" && ppid == pid {
			out = append(out, n)
		}
	}
	return out
}

// procStat reads a process's state letter and parent ("" when it is gone).
func procStat(pid int) (state string, ppid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // state ppid ...
	if len(f) < 2 {
		return "", 0
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid
}

// alive reports whether pid is a process that has not exited (a zombie
// has).
func alive(pid int) bool {
	state, _ := procStat(pid)
	return state != "" && state != "Z"
}

func kill(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("kill -%d %d: %v", sig, pid, err)
	}
}

// client is an HTTP client that keeps a connection per worker.
type client struct{ hc *http.Client }

func newClient(workers int) *client {
	tr := &http.Transport{MaxIdleConns: 4 * workers, MaxIdleConnsPerHost: 2 * workers, IdleConnTimeout: 30 * time.Second}
	return &client{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

type answer struct {
	status int // 0 when the request failed (err)
	header http.Header
	body   []byte
	err    error
}

// code is the error code of a JSON error answer ("" for any other).
func (a answer) code() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(a.body, &e)
	return e.Error.Code
}

func (c *client) do(method, url, key string, body any) answer {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return answer{err: err}
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// metrics scrapes /metrics into series → value (a series is its name
// with its labels, as Prometheus prints it).
func (h *host) metrics(c *client) map[string]float64 {
	h.t.Helper()
	a := c.do("GET", h.url+"/metrics", "", nil)
	if a.err != nil || a.status != 200 {
		h.t.Fatalf("GET /metrics: %d %v", a.status, a.err)
	}
	out := map[string]float64{}
	for l := range strings.Lines(string(a.body)) {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// percentileMS is the p-th percentile (0 to 100) of ds, in milliseconds.
func percentileMS(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p / 100 * float64(len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}
