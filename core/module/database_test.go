package module_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
)

// onDatabase points a host at url, to put several hosts on one database.
func onDatabase(url string) coretest.Option {
	return func(c *config.Config, _ *core.Options) { c.Database.URL = url }
}

func startOn(t *testing.T, engine string, opts ...coretest.Option) *coretest.Env {
	t.Helper()
	e := coretest.New(t, engine, opts...)
	if err := e.Host.LoadModules(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// A project created through one host is read through another at once: the
// module's data lives in the shared database, not in a host's files.
func TestModuleDataIsSharedAcrossHosts(t *testing.T) {
	shared := dbtest.URL(t, db.Postgres)
	mods := withModules(t, 5*time.Second, modSpec{"projects", "./modules/projects", ""})
	a := startOn(t, db.Postgres, mods, onDatabase(shared))
	b := startOn(t, db.Postgres, mods, onDatabase(shared))
	org := a.Org("Acme")
	_, raw := a.Scoped(org, "projects:read", "projects:write")

	r := a.Do("POST", "/api/v2/projects", bearer(raw), map[string]any{"name": "Apollo"})
	if r.Status != 201 {
		t.Fatalf("create through A: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["project"].(map[string]any)["id"].(string)
	if r := b.Do("GET", "/api/v2/projects/"+id, bearer(raw), nil); r.Status != 200 || !strings.Contains(string(r.Body), "Apollo") {
		t.Fatalf("read through B: %d %s", r.Status, r.Body)
	}
	if r := b.Do("GET", "/api/v2/projects", bearer(raw), nil); r.Status != 200 || !strings.Contains(string(r.Body), id) {
		t.Fatalf("list through B: %d %s", r.Status, r.Body)
	}
}

// Three hosts starting at once against an empty database apply every
// module migration exactly once, and none of them logs an error.
func TestModuleMigrationsOnceAcrossHostsStartingAtOnce(t *testing.T) {
	shared := dbtest.URL(t, db.Postgres)
	mods := withModules(t, 10*time.Second, modSpec{"projects", "./modules/projects", ""})
	// The core schema is migrated first, by one host, as a deployment does
	// (docs/deploy.md); the three then start together.
	first := coretest.New(t, db.Postgres, onDatabase(shared))
	envs := make([]*coretest.Env, 3)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := range envs {
		envs[i] = coretest.New(t, db.Postgres, mods, onDatabase(shared))
	}
	for _, e := range envs {
		wg.Go(func() { errs <- e.Host.LoadModules(context.Background()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a host did not load its modules: %v", err)
		}
	}
	u, _ := url.Parse(shared)
	schema := db.ModuleSchema(u.Query().Get("search_path"), "projects")
	var version int
	var dirty bool
	var rows int
	if err := first.Host.Store.DB.QueryRow(fmt.Sprintf(`SELECT count(*), max(version), bool_or(dirty) FROM %q.schema_migrations`, schema)).Scan(&rows, &version, &dirty); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || version != 1 || dirty {
		t.Fatalf("schema_migrations: %d rows, version %d, dirty %v", rows, version, dirty)
	}
	for i, e := range envs {
		if logs := e.Logs.String(); strings.Contains(logs, "level=ERROR") {
			t.Errorf("host %d logged an error:\n%s", i, logs)
		}
	}
}

// A module's role reaches its own schema only: not the core's tables, not
// another module's schema.
func TestModuleRoleReachesOnlyItsSchema(t *testing.T) {
	store := dbtest.Open(t, db.Postgres)
	ctx := context.Background()
	projects, err := store.ProvisionModule(ctx, "projects", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cms, err := store.ProvisionModule(ctx, "cms", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if projects.Role == "" {
		t.Skip("the test database's role cannot create roles; modules share it (see the README)")
	}
	// Provisioning again (a second host) hands out the same credentials.
	again, err := store.ProvisionModule(ctx, "projects", t.TempDir())
	if err != nil || again.DSN != projects.DSN {
		t.Fatalf("second provisioning: %v, same DSN %v", err, again.DSN == projects.DSN)
	}
	asCMS, err := sql.Open("pgx", cms.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer asCMS.Close()
	if _, err := asCMS.Exec(`CREATE TABLE entries (id TEXT)`); err != nil {
		t.Fatalf("cms in its own schema: %v", err)
	}
	asProjects, err := sql.Open("pgx", projects.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer asProjects.Close()
	if _, err := asProjects.Exec(`CREATE TABLE projects (id TEXT)`); err != nil {
		t.Fatalf("projects in its own schema: %v", err)
	}
	host, _ := url.Parse(store.URL)
	hostSchema := host.Query().Get("search_path")
	for what, q := range map[string]string{
		"the core's keys":        fmt.Sprintf(`SELECT count(*) FROM %q.saas_api_keys`, hostSchema),
		"another module's table": fmt.Sprintf(`SELECT count(*) FROM %q.entries`, cms.Schema),
	} {
		var n int
		err := asProjects.QueryRow(q).Scan(&n)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("projects' role read %s: %v", what, err)
		}
	}
}

// A module whose migration fails stays down and says why; the host and the
// other modules serve.
func TestBrokenModuleMigrationStopsOnlyThatModule(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := startOn(t, engine, withModules(t, 10*time.Second,
			modSpec{"projects", "./modules/projects", ""}, modSpec{"badmig", "./core/module/testdata/badmig", ""}))
		org := e.Org("Acme")
		_, raw := e.Scoped(org, "projects:read", "badmig:read")
		r := e.Do("GET", "/api/v2/badmig", bearer(raw), nil)
		body := string(r.Body)
		if r.Status != 503 || !strings.Contains(body, "module_unavailable") || !strings.Contains(body, "migrations/"+engine+"/000002_broken.up.sql") {
			t.Fatalf("the broken module: %d %s", r.Status, body)
		}
		if !strings.Contains(e.Logs.String(), "module is down until it is fixed") || !strings.Contains(e.Logs.String(), "000002_broken.up.sql") {
			t.Fatalf("the reason is not logged:\n%s", e.Logs.String())
		}
		if r := e.Do("GET", "/api/v2/projects", bearer(raw), nil); r.Status != 200 {
			t.Fatalf("the other module: %d %s", r.Status, r.Body)
		}
		if r := e.Do("GET", "/api/v2/me", bearer(raw), nil); r.Status != 200 {
			t.Fatalf("the core: %d", r.Status)
		}
	})
}

func ticker(t *testing.T, cfg map[string]any) coretest.Option {
	bin := buildModule(t, "./core/module/testdata/ticker")
	return func(c *config.Config, o *core.Options) {
		c.Modules = append(c.Modules, config.Module{Name: "ticker", Path: bin, Timeout: config.Duration{Duration: 10 * time.Second}, Config: cfg})
		o.NoMaintenance, o.Now = false, time.Now // the schedule runs on the real clock
	}
}

// A module task every second, on two hosts sharing PostgreSQL, runs once
// per interval: never twice in one second, and no interval skipped.
func TestModuleTaskRunsOncePerIntervalAcrossHosts(t *testing.T) {
	shared := dbtest.URL(t, db.Postgres)
	a := startOn(t, db.Postgres, ticker(t, nil), onDatabase(shared))
	b := startOn(t, db.Postgres, ticker(t, nil), onDatabase(shared))
	time.Sleep(6500 * time.Millisecond)
	_, raw := a.Scoped(a.Org("Acme"), "ticker:read")
	r := a.Do("GET", "/api/v2/ticker/runs", bearer(raw), nil)
	var body struct{ Runs [][2]int64 }
	if err := json.Unmarshal(r.Body, &body); err != nil || r.Status != 200 {
		t.Fatalf("runs: %d %s", r.Status, r.Body)
	}
	runs := body.Runs
	if len(runs) < 5 || len(runs) > 8 {
		t.Fatalf("%d runs in 6.5 s of a 1 s task: %v", len(runs), runs)
	}
	// The module records when it ran, which can lag the host's claim by
	// the call's delivery (half a second was seen under -race on a loaded
	// machine): a late run is that much closer to the next one. Two hosts
	// running one interval would both claim it within a check period
	// (250 ms) of its start, so a gap under 400 ms is a double run.
	for i := 1; i < len(runs); i++ {
		if gap := runs[i][0] - runs[i-1][0]; gap < 400 || gap > 1600 {
			t.Errorf("runs %d and %d are %d ms apart, want one interval (1000 ms, checked every 250 ms, give or take a late delivery)", i-1, i, gap)
		}
	}
	var listed struct {
		Runs     int64
		Failures int64
	}
	if err := a.Host.Store.DB.QueryRow(`SELECT runs, failures FROM saas_task_runs WHERE task = 'module:ticker:tick'`).Scan(&listed.Runs, &listed.Failures); err != nil {
		t.Fatal(err)
	}
	if listed.Runs < int64(len(runs)) || listed.Failures != 0 {
		t.Fatalf("saas_task_runs: %+v, module saw %d", listed, len(runs))
	}
	// Each host's /metrics counts the runs it made; together, all of them.
	total := 0.0
	for _, e := range []*coretest.Env{a, b} {
		m := string(e.Do("GET", "/metrics", "", nil).Body)
		for _, line := range strings.Split(m, "\n") {
			if v, ok := strings.CutPrefix(line, `indigo_task_runs_total{result="ok",task="module:ticker:tick"} `); ok {
				n, _ := strconv.ParseFloat(v, 64)
				total += n
			}
		}
	}
	// (The schedule goes on while the test reads: allow the runs since.)
	if total < float64(listed.Runs) || total > float64(listed.Runs)+2 {
		t.Fatalf("the hosts' metrics count %v runs, saas_task_runs %d", total, listed.Runs)
	}
}

// Stop runs when the host shuts down (its effect: a file written), and a
// module hanging in Stop is killed within the deadline.
func TestModuleStopRunsAndAHangingStopIsKilled(t *testing.T) {
	stopFile := filepath.Join(t.TempDir(), "stopped")
	e := startOn(t, db.SQLite, ticker(t, map[string]any{"stop_file": stopFile}))
	if err := e.Host.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(stopFile); err != nil || string(b) != "stopped\n" {
		t.Fatalf("Stop did not run: %q %v", b, err)
	}

	hang := startOn(t, db.SQLite, ticker(t, map[string]any{"hang_in_stop": true}))
	pid := hang.Host.Modules.Modules()[0].PID()
	start := time.Now()
	if err := hang.Host.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("shutdown took %s with a module hanging in Stop", took)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("the module hanging in Stop (pid %d) is still alive", pid)
	}
}

// One balance, two hosts: an org with 60 tokens called 100 times at once,
// half through each host, gets exactly 60 answers and 40 × 402.
func TestSubscriptionBalanceIsOneAcrossHosts(t *testing.T) {
	shared := dbtest.URL(t, db.Postgres)
	a := startOn(t, db.Postgres, withSubscriptions(t, false), onDatabase(shared))
	b := startOn(t, db.Postgres, withSubscriptions(t, false), onDatabase(shared))
	org := a.Org("Acme")
	_, raw := a.Scoped(org, "projects:read")
	subsAdmin(t, a, "set-balance", org, "60")

	var mu sync.Mutex
	status := map[int]int{}
	var wg sync.WaitGroup
	for i := range 100 {
		host := a
		if i%2 == 1 {
			host = b
		}
		wg.Go(func() {
			r := host.Do("GET", "/api/v2/projects", bearer(raw), nil)
			mu.Lock()
			defer mu.Unlock()
			status[r.Status]++
		})
	}
	wg.Wait()
	if status[200] != 60 || status[402] != 40 || len(status) != 2 {
		t.Fatalf("statuses %v across two hosts, want 60 × 200 and 40 × 402\nA:\n%s\nB:\n%s", status, a.Logs.String(), b.Logs.String())
	}
	if acc := subsAdmin(t, b, "show", org); acc["balance"] != float64(0) {
		t.Fatalf("balance after: %v", acc["balance"])
	}
}
