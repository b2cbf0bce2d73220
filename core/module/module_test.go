package module_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/core/module"
	"github.com/indigo-hq/indigo/core/scope"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/sdk/rpc"
)

var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildDir string
)

func TestMain(m *testing.M) {
	if paths := os.Getenv(envDial); paths != "" {
		dialAndReport(paths)
		os.Exit(0)
	}
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildModule builds a real module binary once per test run.
func buildModule(t *testing.T, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "indigo-modules-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

// children counts this process's child processes.
func children(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	me := strconv.Itoa(os.Getpid())
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut after ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 2 && fields[1] == me && fields[0] != "Z" {
			n++
		}
	}
	return n
}

type modSpec struct{ name, pkg, sha string }

func withModules(t *testing.T, timeout time.Duration, mods ...modSpec) coretest.Option {
	return func(c *config.Config, _ *core.Options) {
		c.V1.APIKey = "v1-global-key-for-tests"
		for _, m := range mods {
			c.Modules = append(c.Modules, config.Module{Name: m.name, Path: buildModule(t, m.pkg), SHA256: m.sha,
				Timeout: config.Duration{Duration: timeout}})
		}
	}
}

// wire runs the host's modules on w, whatever INDIGO_MODULE_WIRE says.
func wire(w string) coretest.Option {
	return func(c *config.Config, _ *core.Options) { c.API.ModuleWire = w }
}

func start(t *testing.T, opts ...coretest.Option) *coretest.Env {
	t.Helper()
	e := coretest.New(t, db.SQLite, opts...)
	if err := e.Host.LoadModules(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

func bearer(k string) string { return "Bearer " + k }

func TestProjectsModuleEndToEnd(t *testing.T) {
	e := start(t, withModules(t, 5*time.Second, modSpec{"projects", "./modules/projects", ""}, modSpec{"cms", "./modules/cms", ""}))
	orgA, orgB := e.Org("A"), e.Org("B")
	_, read := e.Scoped(orgA, "projects:read")
	_, write := e.Scoped(orgA, "projects:read", "projects:write")
	_, none := e.Scoped(orgA)
	_, superB := e.Superkey(orgB)

	r := e.Do("POST", "/api/v2/projects", bearer(write), map[string]any{"name": "Apollo"})
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["project"].(map[string]any)["id"].(string)
	calls := r.Header.Get("X-Projects-Calls")

	if r := e.Do("GET", "/api/v2/projects", bearer(read), nil); r.Status != 200 || !strings.Contains(string(r.Body), "Apollo") {
		t.Fatalf("list with read: %d %s", r.Status, r.Body)
	}
	if r := e.Do("GET", "/api/v2/projects/"+id, bearer(read), nil); r.Status != 200 {
		t.Fatalf("get with read: %d %s", r.Status, r.Body)
	}
	// Refused before the process boundary: the module's counter does not move.
	before := e.Do("GET", "/api/v2/projects", bearer(read), nil).Header.Get("X-Projects-Calls")
	for _, c := range []struct {
		method, auth string
		want         int
	}{
		{"POST", bearer(read), 403}, {"GET", bearer(none), 403}, {"GET", "", 401}, {"GET", "Bearer nope", 401},
	} {
		if r := e.Do(c.method, "/api/v2/projects", c.auth, map[string]any{"name": "x"}); r.Status != c.want || r.Header.Get("X-Projects-Calls") != "" {
			t.Fatalf("%s with %q: %d (module header %q)", c.method, c.auth, r.Status, r.Header.Get("X-Projects-Calls"))
		}
	}
	after := e.Do("GET", "/api/v2/projects", bearer(read), nil).Header.Get("X-Projects-Calls")
	b, _ := strconv.Atoi(before)
	a, _ := strconv.Atoi(after)
	if a != b+1 || calls == "" {
		t.Fatalf("module calls went from %s to %s across refused requests; want +1", before, after)
	}
	// Org B cannot see org A's project.
	if r := e.Do("GET", "/api/v2/projects/"+id, bearer(superB), nil); r.Status != 404 {
		t.Fatalf("org B reading org A's project: %d %s", r.Status, r.Body)
	}
	if r := e.Do("GET", "/api/v2/projects", bearer(superB), nil); strings.Contains(string(r.Body), "Apollo") {
		t.Fatalf("org B's list shows org A's project: %s", r.Body)
	}
	// Module scopes are registered and listed, grouped by module.
	sc := e.Do("GET", "/api/v2/scopes", bearer(superB), nil)
	if !strings.Contains(string(sc.Body), `"module":"projects","scopes":[{"id":"projects:read"`) || !strings.Contains(string(sc.Body), `"cms:write"`) {
		t.Fatalf("scopes: %s", sc.Body)
	}
	// An unknown module scope is refused at key creation; a known one works.
	if r := e.Do("POST", "/api/v2/keys", bearer(superB), map[string]any{"name": "k", "scopes": []string{"projects:delete"}}); r.Status != 422 {
		t.Fatalf("unknown module scope: %d", r.Status)
	}
	doc := string(e.Do("GET", "/api/openapi.json", "", nil).Body)
	for _, want := range []string{`"/api/v2/projects/{id}"`, `"/api/v1/cms/entries"`, `"projects:write"`} {
		if !strings.Contains(doc, want) {
			t.Fatalf("OpenAPI lacks %s", want)
		}
	}
}

func TestV1API(t *testing.T) {
	e := start(t, withModules(t, 5*time.Second, modSpec{"cms", "./modules/cms", ""}))
	org := e.Org("A")
	_, w := e.Scoped(org, "cms:write", "cms:read")
	e.Do("POST", "/api/v2/cms/entries", bearer(w), map[string]any{"title": "Hello", "body": "world", "published": true})
	e.Do("POST", "/api/v2/cms/entries", bearer(w), map[string]any{"title": "Draft", "body": "secret"})
	v1 := bearer("v1-global-key-for-tests")
	r := e.Do("GET", "/api/v1/cms/entries", v1, nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), "Hello") || strings.Contains(string(r.Body), "Draft") {
		t.Fatalf("v1 list: %d %s", r.Status, r.Body)
	}
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		if r := e.Do(m, "/api/v1/cms/entries", v1, map[string]any{"title": "x"}); r.Status != 405 {
			t.Fatalf("v1 %s: %d", m, r.Status)
		}
	}
	if r := e.Do("GET", "/api/v1/cms/entries", bearer("wrong"), nil); r.Status != 401 {
		t.Fatalf("v1 with a wrong key: %d", r.Status)
	}
	if r := e.Do("GET", "/api/v1/cms/entries", "", nil); r.Status != 401 {
		t.Fatalf("v1 without a key: %d", r.Status)
	}
	// An API key is not the v1 key, and the write route is not on v1.
	if r := e.Do("GET", "/api/v1/cms/entries", bearer(w), nil); r.Status != 401 {
		t.Fatalf("v1 with an org key: %d", r.Status)
	}

	// With no global key, v1 is 404 throughout.
	off := start(t, withModules(t, 5*time.Second, modSpec{"cms", "./modules/cms", ""}), func(c *config.Config, _ *core.Options) { c.V1.APIKey = "" })
	for _, m := range []string{"GET", "POST"} {
		if r := off.Do(m, "/api/v1/cms/entries", v1, nil); r.Status != 404 {
			t.Fatalf("v1 off, %s: %d", m, r.Status)
		}
	}
}

func TestModuleSeesCallerNotCredentials(t *testing.T) {
	e := start(t, withModules(t, 5*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", ""}))
	org := e.Org("A")
	k, raw := e.Scoped(org, "testmod:read")
	r := e.Do("GET", "/api/v2/testmod/ping", bearer(raw), nil)
	if r.Status != 200 {
		t.Fatalf("ping: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if m["org_id"] != org || m["key_id"] != k.ID || m["auth"] != "" || m["request_id"] != r.Header.Get("X-Request-Id") {
		t.Fatalf("module saw %v", m)
	}
	if r.Header.Get("Set-Cookie") != "" || r.Header.Get("X-Testmod") != "kept" {
		t.Fatalf("headers from the module: %v", r.Header)
	}
}

func TestSlowCallTimesOut(t *testing.T) {
	e := start(t, withModules(t, 300*time.Millisecond, modSpec{"testmod", "./core/module/testdata/testmod", ""}))
	_, raw := e.Scoped(e.Org("A"), "testmod:read")
	begin := time.Now()
	r := e.Do("GET", "/api/v2/testmod/slow?ms=3000", bearer(raw), nil)
	if r.Status != 504 || r.ErrorCode() != "module_timeout" {
		t.Fatalf("slow call: %d %s", r.Status, r.Body)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Fatalf("504 after %v; the deadline is 300ms", d)
	}
	if r := e.Do("GET", "/api/v2/testmod/slow?ms=10", bearer(raw), nil); r.Status != 204 {
		t.Fatalf("a fast call after a timeout: %d", r.Status)
	}
}

func TestTamperedBinaryIsRefused(t *testing.T) {
	path := buildModule(t, "./core/module/testdata/testmod")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	good := hex.EncodeToString(sum[:])
	bad := strings.Repeat("0", 64)

	ok := start(t, withModules(t, 5*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", good}))
	if len(ok.Host.Modules.Modules()) != 1 {
		t.Fatal("the module with the recorded digest did not load")
	}
	e := coretest.New(t, db.SQLite, withModules(t, 5*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", bad}))
	before := children(t)
	err = e.Host.LoadModules(context.Background())
	if err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("tampered binary: %v", err)
	}
	if children(t) > before {
		t.Fatal("a refused module left a process behind")
	}
}

// kill -9 a module under light load: the host stays up, the module's
// routes answer 503 while it is down and 200 after the restart, another
// module keeps serving, and no process is leaked. A call sent just as the
// process died, before the host saw it go, is 502 module_outcome_unknown:
// the host cannot tell whether the module ran it.
func TestCrashAndRestart(t *testing.T) {
	before := children(t)
	e := start(t, withModules(t, 5*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", ""}, modSpec{"projects", "./modules/projects", ""}))
	org := e.Org("A")
	_, raw := e.Scoped(org, "testmod:read", "projects:read")
	if got := children(t); got != before+2 {
		t.Fatalf("%d children with two modules, want %d", got, before+2)
	}
	var inst interface {
		PID() int
		Up() bool
		Restarts() int64
	}
	for _, m := range e.Host.Modules.Modules() {
		if m.Name() == "testmod" {
			inst = m
		}
	}

	// Light load on the other module throughout.
	stop := make(chan struct{})
	var otherFailures, otherCalls atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			otherCalls.Add(1)
			if r := e.Do("GET", "/api/v2/projects", bearer(raw), nil); r.Status != 200 {
				otherFailures.Add(1)
			}
		}
	}()

	saw503 := 0
	for cycle := 0; cycle < 10; cycle++ {
		pid := inst.PID()
		if pid == 0 {
			t.Fatalf("cycle %d: module down before the kill", cycle)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			r := e.Do("GET", "/api/v2/testmod/ping", bearer(raw), nil)
			if r.Status == 503 {
				saw503++
				if r.ErrorCode() != "module_unavailable" {
					t.Fatalf("503 body: %s", r.Body)
				}
			}
			if r.Status == 200 && inst.PID() != pid && inst.PID() != 0 {
				break
			}
			unknown := r.Status == 502 && r.ErrorCode() == "module_outcome_unknown"
			if r.Status != 200 && r.Status != 503 && !unknown {
				t.Fatalf("cycle %d: status %d %s", cycle, r.Status, r.Body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d: module not back after 15s", cycle)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	if saw503 == 0 {
		t.Fatal("never saw a 503 while the module was down")
	}
	if otherFailures.Load() != 0 || otherCalls.Load() == 0 {
		t.Fatalf("the other module failed %d of %d calls during the crashes", otherFailures.Load(), otherCalls.Load())
	}
	if inst.Restarts() < 10 {
		t.Fatalf("restarts = %d, want 10", inst.Restarts())
	}
	if got := children(t); got != before+2 {
		t.Fatalf("%d children after 10 crash/restart cycles, want %d", got, before+2)
	}
	if err := e.Host.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for children(t) != before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := children(t); got != before {
		t.Fatalf("%d children after shutdown, want %d", got, before)
	}
	fmt.Fprintf(os.Stderr, "crash test: %d restarts, %d 503s seen, other module %d calls\n", inst.Restarts(), saw503, otherCalls.Load())
}

func TestDescribeAndManifestChecks(t *testing.T) {
	path := buildModule(t, "./modules/projects")
	ctx := context.Background()
	m, err := module.Describe(ctx, config.Module{Name: "projects", Path: path})
	if err != nil || m.Name != "projects" || len(m.Routes) != 3 || m.Protocol != 1 {
		t.Fatalf("describe: %+v %v", m, err)
	}
	if _, err := module.Describe(ctx, config.Module{Name: "billing", Path: path}); err == nil || !strings.Contains(err.Error(), `says it is module "projects"`) {
		t.Fatalf("a binary under another name: %v", err)
	}
	if _, err := module.Describe(ctx, config.Module{Name: "projects", Path: path, SHA256: strings.Repeat("a", 64)}); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("a wrong digest: %v", err)
	}
	// The host refuses the same mismatch at start, and leaves nothing running.
	e := coretest.New(t, db.SQLite, func(c *config.Config, _ *core.Options) {
		c.Modules = []config.Module{{Name: "billing", Path: path}}
	})
	before := children(t)
	if err := e.Host.LoadModules(ctx); err == nil || !strings.Contains(err.Error(), `module "billing"`) {
		t.Fatalf("load under another name: %v", err)
	}
	if children(t) > before {
		t.Fatal("a refused module left a process behind")
	}
	// Commands register module scopes from describe, without starting them.
	reg := scope.NewWithCore()
	var warned []error
	module.RegisterDescribed(ctx, reg, []config.Module{{Name: "projects", Path: path}, {Name: "gone", Path: "/nonexistent"}},
		func(err error) { warned = append(warned, err) })
	if !reg.Has("projects:write") || len(warned) != 1 || !strings.Contains(warned[0].Error(), `"gone"`) {
		t.Fatalf("registered %v, warned %v", reg.List(), warned)
	}
}

// gone reports whether pid has exited and been reaped: a zombie still
// has its /proc entry.
func gone(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return os.IsNotExist(err)
}

// killOnFailure SIGKILLs pid at the end of a failed test, so that a
// stopped module cannot outlive it; a passing test has reaped it already.
func killOnFailure(t *testing.T, pid int) {
	t.Cleanup(func() {
		if t.Failed() && !gone(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// sigstop stops pid and waits until the kernel reports it stopped: the
// signal is delivered asynchronously.
func sigstop(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "T" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped 5s after SIGSTOP: %s", pid, s)
		}
	}
}

func findModule(t *testing.T, e *coretest.Env, name string) *module.Instance {
	t.Helper()
	m := e.Host.Modules.Find(name)
	if m == nil || m.PID() == 0 {
		t.Fatalf("module %s is not running", name)
	}
	return m
}

// A module that stops answering (SIGSTOP) cannot hold up shutdown: at the
// deadline the host kills it, and the process is reaped.
func TestShutdownKillsAHungModule(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("no /proc")
	}
	e := start(t, withModules(t, 5*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", ""}))
	pid := findModule(t, e, "testmod").PID()
	killOnFailure(t, pid)
	sigstop(t, pid)
	const deadline = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	begin := time.Now()
	done := make(chan error, 1)
	go func() { done <- e.Host.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(deadline + 5*time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL) // unblocks the shutdown, so the test can end
		<-done
		t.Fatalf("shutdown was still waiting on the stopped module %v after its %v deadline", 5*time.Second, deadline)
	}
	if d := time.Since(begin); d > deadline+time.Second {
		t.Fatalf("shutdown took %v with a %v deadline", d, deadline)
	}
	if !gone(pid) {
		t.Fatalf("module process %d is still there (or not reaped) after shutdown", pid)
	}
}

func hangSettings(threshold int, health time.Duration) coretest.Option {
	return func(c *config.Config, _ *core.Options) {
		c.API.ModuleHangThreshold = threshold
		c.API.ModuleHealthInterval = config.Duration{Duration: health}
	}
}

// replacedWithin waits until the module serves from a process other than
// old and a call succeeds, answering 503 meanwhile.
func replacedWithin(t *testing.T, e *coretest.Env, m *module.Instance, old int, raw string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r := e.Do("GET", "/api/v2/testmod/ping", bearer(raw), nil)
		if r.Status == 200 && m.PID() != old && m.PID() != 0 {
			return
		}
		if r.Status != 200 && r.Status != 503 && r.Status != 504 {
			t.Fatalf("while the module was replaced: %d %s", r.Status, r.Body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("module still on pid %d (now %d) after %v: last answer %d %s", old, m.PID(), d, r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A module that stops answering gets 504 for a while, not forever: after
// api.module_hang_threshold timeouts in a row the host kills the process
// and starts another, and says why. An answer in between resets the count.
func TestHungModuleIsReplaced(t *testing.T) {
	e := start(t, withModules(t, 300*time.Millisecond, modSpec{"testmod", "./core/module/testdata/testmod", ""}), hangSettings(3, 0))
	_, raw := e.Scoped(e.Org("A"), "testmod:read")
	m := findModule(t, e, "testmod")
	pid := m.PID()
	killOnFailure(t, pid)

	// Slow, not hung: two timeouts, an answer, two timeouts keep the process.
	for _, path := range []string{"slow?ms=2000", "slow?ms=2000", "ping", "slow?ms=2000", "slow?ms=2000"} {
		if r := e.Do("GET", "/api/v2/testmod/"+path, bearer(raw), nil); r.Status != 200 && r.ErrorCode() != "module_timeout" {
			t.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
	}
	if m.PID() != pid {
		t.Fatalf("module replaced although it answered between timeouts (pid %d, now %d)", pid, m.PID())
	}
	if r := e.Do("GET", "/api/v2/testmod/ping", bearer(raw), nil); r.Status != 200 {
		t.Fatalf("ping: %d %s", r.Status, r.Body)
	}

	sigstop(t, pid)
	for i := range 3 {
		if r := e.Do("GET", "/api/v2/testmod/ping", bearer(raw), nil); r.Status != 504 || r.ErrorCode() != "module_timeout" {
			t.Fatalf("call %d to the stopped module: %d %s", i+1, r.Status, r.Body)
		}
	}
	replacedWithin(t, e, m, pid, raw, 10*time.Second)
	if !gone(pid) {
		t.Fatalf("the hung process %d is still there (or not reaped)", pid)
	}
	if m.Restarts() != 1 {
		t.Fatalf("restarts = %d, want 1", m.Restarts())
	}
	logs := e.Logs.String()
	if !strings.Contains(logs, "module stopped answering") || !strings.Contains(logs, "module=testmod") || !strings.Contains(logs, `reason="3 calls timed out in a row"`) {
		t.Fatalf("the log does not say which module was replaced and why:\n%s", logs)
	}
}

// A hung module that gets no calls is found by the health checks.
func TestHungIdleModuleIsReplaced(t *testing.T) {
	e := start(t, withModules(t, 300*time.Millisecond, modSpec{"testmod", "./core/module/testdata/testmod", ""}), hangSettings(2, 100*time.Millisecond))
	_, raw := e.Scoped(e.Org("A"), "testmod:read")
	m := findModule(t, e, "testmod")
	pid := m.PID()
	killOnFailure(t, pid)
	sigstop(t, pid)
	deadline := time.Now().Add(10 * time.Second)
	for m.PID() == pid {
		if time.Now().After(deadline) {
			t.Fatal("the stopped module was not replaced within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	replacedWithin(t, e, m, pid, raw, 10*time.Second)
	if logs := e.Logs.String(); !strings.Contains(logs, `reason="2 failed health checks in a row"`) {
		t.Fatalf("the log does not say why:\n%s", logs)
	}
}

// writesStarted is how many writes the test module has begun.
func writesStarted(t *testing.T, e *coretest.Env, raw string) int {
	t.Helper()
	r := e.Do("GET", "/api/v2/testmod/writes", bearer(raw), nil)
	if r.Status != 200 {
		t.Fatalf("writes: %d %s", r.Status, r.Body)
	}
	return int(r.JSON(t)["started"].(float64))
}

// A write the module had when it was killed may have been applied: the
// caller is told so (502 module_outcome_unknown), never to try again,
// which could apply it twice.
func TestModuleKilledMidCallIsOutcomeUnknown(t *testing.T) {
	for _, wire := range []struct {
		name string
		body string
	}{
		{"stream", `{"name":"small"}`},
		{"unary", `{"name":"` + strings.Repeat("x", 100<<10) + `"}`}, // above the stream's body limit
	} {
		t.Run(wire.name, func(t *testing.T) {
			e := start(t, withModules(t, 10*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", ""}))
			_, raw := e.Scoped(e.Org("A"), "testmod:read", "testmod:write")
			m := findModule(t, e, "testmod")
			pid := m.PID()
			got := make(chan coretest.Response, 1)
			go func() { got <- e.Do("POST", "/api/v2/testmod/writes?ms=5000", bearer(raw), wire.body) }()
			deadline := time.Now().Add(5 * time.Second)
			for writesStarted(t, e, raw) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the write never reached the module")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			r := <-got
			if r.Status != 502 || r.ErrorCode() != "module_outcome_unknown" || r.Header.Get("Retry-After") != "" {
				t.Fatalf("a write in flight when its module died: %d %s (Retry-After %q), want 502 module_outcome_unknown",
					r.Status, r.Body, r.Header.Get("Retry-After"))
			}
			if !strings.Contains(string(r.Body), "may have been applied") {
				t.Fatalf("the message does not say the write may have happened: %s", r.Body)
			}
		})
	}
}

// A call made while the module is known to be down never reached it: 503
// with Retry-After, safe to repeat.
func TestModuleDownIsRetryable(t *testing.T) {
	// A copy of the binary, moved away so that restarts fail while the
	// test needs the module down.
	path := filepath.Join(t.TempDir(), "testmod")
	b, err := os.ReadFile(buildModule(t, "./core/module/testdata/testmod"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(c *config.Config, _ *core.Options) {
		c.Modules = []config.Module{{Name: "testmod", Path: path, Timeout: config.Duration{Duration: 5 * time.Second}}}
	})
	_, raw := e.Scoped(e.Org("A"), "testmod:read", "testmod:write")
	m := findModule(t, e, "testmod")
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(m.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.Up() {
		if time.Now().After(deadline) {
			t.Fatal("the host did not see the module go down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := e.Do("POST", "/api/v2/testmod/writes", bearer(raw), `{"name":"x"}`)
	if r.Status != 503 || r.ErrorCode() != "module_unavailable" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a write while the module is down: %d %s (Retry-After %q)", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	if err := os.Rename(path+".away", path); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		r := e.Do("POST", "/api/v2/testmod/writes", bearer(raw), `{"name":"x"}`)
		if r.Status == 201 {
			break
		}
		if r.Status != 503 || time.Now().After(deadline) {
			t.Fatalf("after the binary came back: %d %s", r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An Idempotency-Key makes a retried write safe: the retry is answered
// with the first answer, marked Idempotent-Replayed, without reaching the
// module. A retry while the first still runs is 409, the key with another
// body 422. An answer the host could not get (the module died) is not
// kept: the retry runs.
func TestIdempotencyKeyReplaysAModuleAnswer(t *testing.T) {
	e := start(t, withModules(t, 10*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", ""}))
	org := e.Org("A")
	_, raw := e.Scoped(org, "testmod:read", "testmod:write")
	_, other := e.Scoped(org, "testmod:read", "testmod:write")
	post := func(key, query, body string, auth ...string) coretest.Response {
		a := raw
		if len(auth) > 0 {
			a = auth[0]
		}
		return e.Do("POST", "/api/v2/testmod/writes"+query, bearer(a), body, "Idempotency-Key", key)
	}

	first := post("k1", "", `{"name":"a"}`)
	if first.Status != 201 || first.Header.Get("X-Testmod-Write") != "1" || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %s %v", first.Status, first.Body, first.Header)
	}
	again := post("k1", "", `{"name":"a"}`)
	if again.Status != 201 || string(again.Body) != string(first.Body) || again.Header.Get("X-Testmod-Write") != "1" ||
		again.Header.Get("Idempotent-Replayed") != "true" || again.Header.Get("X-Request-Id") == first.Header.Get("X-Request-Id") {
		t.Fatalf("retry: %d %s %v", again.Status, again.Body, again.Header)
	}
	if n := writesStarted(t, e, raw); n != 1 {
		t.Fatalf("the module was called %d times for one key, want 1", n)
	}
	if r := post("k1", "", `{"name":"b"}`); r.Status != 422 || r.ErrorCode() != "idempotency_key_reused" {
		t.Fatalf("the key with another body: %d %s", r.Status, r.Body)
	}
	if r := post("k1", "?x=1", `{"name":"a"}`); r.Status != 422 || r.ErrorCode() != "idempotency_key_reused" {
		t.Fatalf("the key with another query: %d %s", r.Status, r.Body)
	}
	// Another key, or the same key sent by another API key, is another request.
	if r := post("k2", "", `{"name":"a"}`); r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("another key: %d %s", r.Status, r.Body)
	}
	if r := post("k1", "", `{"name":"a"}`, other); r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the key from another API key: %d %s", r.Status, r.Body)
	}
	if r := e.Do("POST", "/api/v2/testmod/writes", bearer(raw), `{}`, "Idempotency-Key", strings.Repeat("k", 129)); r.Status != 400 || r.ErrorCode() != "idempotency_key_invalid" {
		t.Fatalf("a key too long: %d %s", r.Status, r.Body)
	}
	if n := writesStarted(t, e, raw); n != 3 {
		t.Fatalf("module calls = %d, want 3", n)
	}

	// A retry while the first runs.
	slow := make(chan coretest.Response, 1)
	go func() { slow <- post("k3", "?ms=1000", `{}`) }()
	for deadline := time.Now().Add(5 * time.Second); writesStarted(t, e, raw) != 4; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow write never reached the module")
		}
	}
	if r := post("k3", "?ms=1000", `{}`); r.Status != 409 || r.ErrorCode() != "idempotency_in_progress" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a retry while the first runs: %d %s", r.Status, r.Body)
	}
	if r := <-slow; r.Status != 201 {
		t.Fatalf("slow write: %d %s", r.Status, r.Body)
	}
	if r := post("k3", "?ms=1000", `{}`); r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a retry after the first answered: %d %s", r.Status, r.Body)
	}

	// Kept for api.idempotency_ttl (24 h) on the host's clock.
	e.Clock.Advance(24*time.Hour - time.Second)
	if r := post("k2", "", `{"name":"a"}`); r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("forgotten before the TTL: %d %s", r.Status, r.Body)
	}
	e.Clock.Advance(time.Second)
	fresh := post("k2", "", `{"name":"a"}`)
	if fresh.Status != 201 || fresh.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("kept past the TTL: %d %s", fresh.Status, fresh.Body)
	}
	if n := writesStarted(t, e, raw); n != 5 {
		t.Fatalf("module calls = %d, want 5", n)
	}

	// The module dies under a write: 502, not kept; a kept answer still
	// replays while the module restarts, and the retry of the lost write runs.
	m := findModule(t, e, "testmod")
	pid := m.PID()
	lost := make(chan coretest.Response, 1)
	go func() { lost <- post("k4", "?ms=5000", `{}`) }()
	for deadline := time.Now().Add(5 * time.Second); writesStarted(t, e, raw) != 6; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the write never reached the module")
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if r := <-lost; r.Status != 502 || r.ErrorCode() != "module_outcome_unknown" {
		t.Fatalf("the write the module died under: %d %s", r.Status, r.Body)
	}
	if r := post("k2", "", `{"name":"a"}`); r.Status != 201 || string(r.Body) != string(fresh.Body) || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a kept answer while the module restarts: %d %s", r.Status, r.Body)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r := post("k4", "", `{}`)
		if r.Status == 201 && r.Header.Get("Idempotent-Replayed") == "" {
			break
		}
		if r.Status != 503 || time.Now().After(deadline) {
			t.Fatalf("the retry of the lost write: %d %s", r.Status, r.Body)
		}
	}
}

// A caller that goes away mid-call is not a module failure: the call is
// logged and counted as 499, and no error is logged.
func TestCallerGoneIsNotAModuleError(t *testing.T) {
	e := start(t, withModules(t, 5*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", ""}))
	key, raw := e.Scoped(e.Org("A"), "testmod:read")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.Server.URL+"/api/v2/testmod/slow?ms=1500", nil)
	req.Header.Set("Authorization", bearer(raw))
	if resp, err := e.Client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the call was not cut off: %d", resp.StatusCode)
	}
	var status int64
	deadline := time.Now().Add(5 * time.Second)
	for status == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		e.FlushLogs()
		_ = e.Host.Store.DB.QueryRow("SELECT status FROM saas_api_request_logs WHERE key_id = ? AND route = ?",
			key.ID, "/api/v2/testmod/slow").Scan(&status)
	}
	if status != 499 {
		t.Fatalf("request log status %d, want 499", status)
	}
	if logs := e.Logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Fatalf("an error was logged for a caller that went away:\n%s", logs)
	}
	r := e.Do("GET", "/metrics", "", nil)
	if !strings.Contains(string(r.Body), `indigo_api_requests_total{route="/api/v2/testmod/slow",status="499"} 1`) {
		t.Fatalf("metrics do not count the call as 499:\n%s", r.Body)
	}
}

// [[modules]] env reaches the module's process on either wire, after the
// host's environment, which the module otherwise inherits.
func TestModuleEnv(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("no /proc")
	}
	if rpc.Handshake.MagicCookieKey != "INDIGO_MODULE" {
		t.Fatalf("the config refuses INDIGO_MODULE in [[modules]] env as the handshake's cookie, which is now %q", rpc.Handshake.MagicCookieKey)
	}
	t.Setenv("INDIGO_TEST_HOST_ONLY", "kept")
	t.Setenv("INDIGO_TEST_MODULE_NOTE", "the host's")
	for _, w := range []string{rpc.WireSocket, rpc.WireGRPC} {
		t.Run(w, func(t *testing.T) {
			e := start(t, withModules(t, 5*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", ""}), wire(w),
				func(c *config.Config, _ *core.Options) {
					c.Modules[0].Env = map[string]string{"GOMAXPROCS": "1", "INDIGO_TEST_MODULE_NOTE": "the module's"}
				})
			_, raw := e.Scoped(e.Org("A"), "testmod:read")
			if r := e.Do("GET", "/api/v2/testmod/ping", bearer(raw), nil); r.Status != 200 {
				t.Fatalf("ping: %d %s", r.Status, r.Body)
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", findModule(t, e, "testmod").PID()))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for kv := range strings.SplitSeq(string(b), "\x00") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					got[k] = v // the last one is what the process reads
				}
			}
			for k, want := range map[string]string{"GOMAXPROCS": "1", "INDIGO_TEST_MODULE_NOTE": "the module's", "INDIGO_TEST_HOST_ONLY": "kept"} {
				if got[k] != want {
					t.Errorf("module's %s = %q, want %q", k, got[k], want)
				}
			}
			if got[rpc.Handshake.MagicCookieKey] != rpc.Handshake.MagicCookieValue {
				t.Errorf("the handshake's cookie is not in the module's environment")
			}
		})
	}
}
