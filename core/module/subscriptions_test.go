package module_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/core/module"
	"github.com/indigo-hq/indigo/sdk"
)

// withSubscriptions loads projects and core-subscriptions, and points the
// metering hook at the latter.
func withSubscriptions(t *testing.T, failOpen bool) coretest.Option {
	mods := withModules(t, 5*time.Second, modSpec{"projects", "./modules/projects", ""}, modSpec{"subscriptions", "./modules/subscriptions", ""})
	return func(c *config.Config, o *core.Options) {
		mods(c, o)
		c.API.Deps.DeductAPICallToken = "subscriptions"
		c.API.MeteringFailOpen = failOpen
	}
}

// subsAdmin runs the subscriptions binary's admin mode on the host's copy
// of the module's data, as `indigo subscriptions` does.
func subsAdmin(t *testing.T, e *coretest.Env, args ...string) map[string]any {
	t.Helper()
	dir := filepath.Join(e.Cfg.Server.DataDir, "modules", "subscriptions")
	mdb, err := e.Host.Store.ProvisionModule(t.Context(), "subscriptions", dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(buildModule(t, "./modules/subscriptions"), append([]string{"admin"}, args...)...)
	cmd.Env = append(os.Environ(), sdk.EnvDBEngine+"="+mdb.Engine, sdk.EnvDBDSN+"="+mdb.DSN)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("subscriptions admin %v: %v\n%s", args, err, out)
	}
	var acc map[string]any
	if err := json.Unmarshal(out, &acc); err != nil {
		t.Fatalf("admin output %s: %v", out, err)
	}
	return acc
}

func instance(t *testing.T, e *coretest.Env, name string) *module.Instance {
	t.Helper()
	m := e.Host.Modules.Find(name)
	if m == nil {
		t.Fatalf("module %s is not loaded", name)
	}
	return m
}

// Every v2 call is metered through the module: with a balance of 60, 100
// concurrent calls give exactly 60 successes and 40 × 402, and the balance
// ends at 0. A retry with the same Idempotency-Key is charged once.
func TestSubscriptionsMeterEveryCall(t *testing.T) {
	e := start(t, withSubscriptions(t, false))
	org := e.Org("A")
	_, raw := e.Scoped(org, "projects:read", "subscriptions:read")
	subsAdmin(t, e, "set-balance", org, "60")

	var mu sync.Mutex
	status := map[int]int{}
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			r := e.Do("GET", "/api/v2/projects", bearer(raw), nil)
			mu.Lock()
			defer mu.Unlock()
			status[r.Status]++
			if r.Status == 402 && r.ErrorCode() != "insufficient_balance" {
				t.Errorf("402 body: %s", r.Body)
			}
		})
	}
	wg.Wait()
	if status[200] != 60 || status[402] != 40 || len(status) != 2 {
		t.Fatalf("statuses %v, want 60 × 200 and 40 × 402", status)
	}
	// The balance route costs nothing, so an org out of tokens can read it.
	r := e.Do("GET", "/api/v2/subscriptions/balance", bearer(raw), nil)
	if r.Status != 200 || r.JSON(t)["balance"] != float64(0) {
		t.Fatalf("balance: %d %s", r.Status, r.Body)
	}

	subsAdmin(t, e, "top-up", org, "5")
	for range 3 {
		if r := e.Do("GET", "/api/v2/projects", bearer(raw), nil, "Idempotency-Key", "sync-job-42"); r.Status != 200 {
			t.Fatalf("retried call: %d %s", r.Status, r.Body)
		}
	}
	if acc := subsAdmin(t, e, "show", org); acc["balance"] != float64(4) {
		t.Fatalf("balance after three tries of one call: %v, want 4", acc["balance"])
	}
	r = e.Do("GET", "/api/v2/subscriptions/usage", bearer(raw), nil)
	if r.Status != 200 || r.JSON(t)["calls"] != float64(61) {
		t.Fatalf("usage: %d %s", r.Status, r.Body)
	}
}

// The plan's key limit is enforced at create: a Starter org gets 3 keys
// and a 409 for the 4th; a Personal org gets none.
func TestSubscriptionsPlanKeyLimits(t *testing.T) {
	e := start(t, withSubscriptions(t, false))
	starter, personal := e.Org("Starter Inc"), e.Org("Solo")
	subsAdmin(t, e, "set-plan", starter, "starter")
	subsAdmin(t, e, "set-plan", personal, "personal")

	cookie, csrf := e.Session(starter, "owner@starter.test", "owner", false)
	create := func(cookie, csrf, name string) coretest.Response {
		return e.Do("POST", "/api/v2/keys", "", map[string]any{"name": name, "scopes": []string{"projects:read"}}, "Cookie", cookie, "X-CSRF-Token", csrf)
	}
	var ids []string
	for i := range 3 {
		r := create(cookie, csrf, fmt.Sprint("key ", i))
		if r.Status != 201 {
			t.Fatalf("key %d of 3: %d %s", i, r.Status, r.Body)
		}
		ids = append(ids, r.JSON(t)["key"].(map[string]any)["id"].(string))
	}
	r := create(cookie, csrf, "one too many")
	if r.Status != 409 || r.ErrorCode() != "key_limit_reached" || !strings.Contains(string(r.Body), "starter plan allows 3") {
		t.Fatalf("4th key: %d %s", r.Status, r.Body)
	}
	// Revoking one frees its place.
	if r := e.Do("DELETE", "/api/v2/keys/"+ids[0], "", nil, "Cookie", cookie, "X-CSRF-Token", csrf); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := create(cookie, csrf, "replacement"); r.Status != 201 {
		t.Fatalf("after a revoke: %d %s", r.Status, r.Body)
	}

	pc, pcsrf := e.Session(personal, "me@solo.test", "owner", false)
	if r := create(pc, pcsrf, "first"); r.Status != 409 || !strings.Contains(string(r.Body), "personal plan allows 0") {
		t.Fatalf("personal org: %d %s", r.Status, r.Body)
	}
}

// With the provider killed, the closed policy (the default) answers 503
// and the open policy lets the call through.
func TestSubscriptionsProviderDown(t *testing.T) {
	for _, open := range []bool{false, true} {
		t.Run(map[bool]string{false: "closed", true: "open"}[open], func(t *testing.T) {
			e := start(t, withSubscriptions(t, open))
			org := e.Org("A")
			_, raw := e.Scoped(org, "projects:read")
			subsAdmin(t, e, "set-balance", org, "100")
			if r := e.Do("GET", "/api/v2/projects", bearer(raw), nil); r.Status != 200 {
				t.Fatalf("before the kill: %d %s", r.Status, r.Body)
			}
			subs := instance(t, e, "subscriptions")
			if err := syscall.Kill(subs.PID(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			r := e.Do("GET", "/api/v2/projects", bearer(raw), nil)
			switch {
			case !open && (r.Status != 503 || r.ErrorCode() != "metering_unavailable"):
				t.Fatalf("closed policy with the provider down: %d %s", r.Status, r.Body)
			case open && r.Status != 200:
				t.Fatalf("open policy with the provider down: %d %s", r.Status, r.Body)
			}
			// The open policy records the call it let through.
			unreconciled := func() int64 {
				n, err := e.Host.Store.Q().CountUnreconciledCalls(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			want := map[bool]int64{false: 0, true: 1}[open]
			for deadline := time.Now().Add(5 * time.Second); unreconciled() != want; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d unmetered calls recorded, want %d", unreconciled(), want)
				}
			}
			// Once the module is back, calls are metered again, and the
			// recorded call is charged by the reconcile task.
			deadline := time.Now().Add(15 * time.Second)
			for !subs.Up() {
				if time.Now().After(deadline) {
					t.Fatal("the subscriptions module did not come back")
				}
				time.Sleep(20 * time.Millisecond)
			}
			afterKill := subsAdmin(t, e, "show", org)["balance"].(float64)
			if !e.Host.Maint.RunOnce(t.Context(), "reconcile-metering") {
				t.Fatal("the reconcile task did not run")
			}
			if n := unreconciled(); n != 0 {
				t.Fatalf("%d calls left unreconciled", n)
			}
			before := subsAdmin(t, e, "show", org)["balance"].(float64)
			if before != afterKill-float64(want) {
				t.Fatalf("balance %v → %v across reconciliation, want %d charged", afterKill, before, want)
			}
			if r := e.Do("GET", "/api/v2/projects", bearer(raw), nil); r.Status != 200 {
				t.Fatalf("after the restart: %d %s", r.Status, r.Body)
			}
			if after := subsAdmin(t, e, "show", org)["balance"].(float64); after != before-1 {
				t.Fatalf("balance %v → %v: the call after the restart was not metered", before, after)
			}
		})
	}
}

// A module that sets OnKeyEvent gets each key event through the
// notification dispatcher, without the key.
func TestModuleReceivesKeyEvents(t *testing.T) {
	e := start(t, withModules(t, 5*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", ""}))
	org := e.Org("A")
	_, admin := e.Superkey(org)
	r := e.Do("POST", "/api/v2/keys", bearer(admin), map[string]any{"name": "watched", "scopes": []string{"testmod:read"}})
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	created := r.JSON(t)
	id, raw := created["key"].(map[string]any)["id"].(string), created["raw_key"].(string)
	if r := e.Do("DELETE", "/api/v2/keys/"+id, bearer(admin), nil); r.Status != 200 {
		t.Fatalf("revoke: %d", r.Status)
	}
	if err := e.Host.Notify.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	r = e.Do("GET", "/api/v2/testmod/events", bearer(admin), nil)
	if strings.Contains(string(r.Body), raw) || strings.Contains(string(r.Body), raw[len(raw)-10:]) {
		t.Fatalf("an event carried the key: %s", r.Body)
	}
	var got []string
	for _, ev := range r.JSON(t)["events"].([]any) {
		ev := ev.(map[string]any)
		if ev["key"].(map[string]any)["id"] == id {
			got = append(got, ev["type"].(string))
			if ev["org_id"] != org || ev["key"].(map[string]any)["name"] != "watched" {
				t.Errorf("event %v", ev)
			}
		}
	}
	// Delivery is at least once, not in order (receivers order by time).
	sort.Strings(got)
	if fmt.Sprint(got) != "[key.created key.revoked]" {
		t.Fatalf("the module got %v for the key; body %s", got, r.Body)
	}
}

// [api.deps] resolve_org_id may name a module: management requests are
// then signed in by the module's hook, and its orgs are recorded on first
// sight.
func TestModuleResolvesOrgID(t *testing.T) {
	mods := withModules(t, 5*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", ""})
	e := start(t, func(c *config.Config, o *core.Options) {
		mods(c, o)
		c.API.Deps.ResolveOrgID = "testmod"
	})
	as := func(user string) []string {
		return []string{"X-Testmod-User", user, "X-Testmod-Org", "org-from-module"}
	}
	r := e.Do("GET", "/api/session", "", nil, as("alice")...)
	if r.Status != 200 || r.JSON(t)["org_id"] != "org-from-module" || r.JSON(t)["role"] != "owner" {
		t.Fatalf("session through the module: %d %s", r.Status, r.Body)
	}
	r = e.Do("POST", "/api/v2/keys", "", map[string]any{"name": "k", "scopes": []string{"testmod:read"}}, as("alice")...)
	if r.Status != 201 || r.JSON(t)["key"].(map[string]any)["org_id"] != "org-from-module" {
		t.Fatalf("create through the module's identity: %d %s", r.Status, r.Body)
	}
	if r := e.Do("GET", "/api/v2/keys", "", nil, as("bob")...); r.Status != 403 {
		t.Fatalf("a member: %d", r.Status)
	}
	if r := e.Do("GET", "/api/v2/keys", "", nil); r.Status != 401 {
		t.Fatalf("nobody: %d", r.Status)
	}
	if r := e.Do("GET", "/auth/login?token=x", "", nil); r.Status != 404 {
		t.Fatalf("local sign-in with a module resolver: %d", r.Status)
	}
}

// A hook named in [api.deps] that the module does not provide stops the
// start with a clear message.
func TestMissingHookFailsTheStart(t *testing.T) {
	mods := withModules(t, 5*time.Second, modSpec{"projects", "./modules/projects", ""})
	e := coretest.New(t, "sqlite", func(c *config.Config, o *core.Options) {
		mods(c, o)
		c.API.Deps.DeductAPICallToken = "projects"
	})
	err := e.Host.LoadModules(t.Context())
	if err == nil || !strings.Contains(err.Error(), "api.deps.deduct_api_call_token") || !strings.Contains(err.Error(), "does not provide deduct_api_call_token") {
		t.Fatalf("LoadModules = %v", err)
	}
}
