package clienttest_test

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/sdk/client"
)

// exchange is one request the client sent, as the host answered it.
type exchange struct {
	method, path string
	status       int
}

// recorder is a transport that remembers every exchange.
type recorder struct {
	mu  sync.Mutex
	log []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.log = append(r.log, exchange{req.Method, req.URL.Path, resp.StatusCode})
		r.mu.Unlock()
	}
	return resp, err
}

// since returns the exchanges after the first n.
func (r *recorder) since(n int) []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log[n:])
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

func newClient(t *testing.T, env *coretest.Env, key string, opts ...client.Option) (*client.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	c, err := client.New(env.Server.URL, key, append([]client.Option{client.WithHTTPClient(&http.Client{Transport: rec, Timeout: 10 * time.Second})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

// wantError checks that err is Indigo's answer with status and code, and
// names its request.
func wantError(t *testing.T, what string, err error, status int, code string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: %T %v, want a *client.Error %d %s", what, err, err, status, code)
	}
	if e.Status != status || e.Code != code || e.Message == "" || e.RequestID == "" {
		t.Errorf("%s: %+v, want %d %s with a message and a request id", what, *e, status, code)
	}
	return e
}

func buildProjects(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./modules/projects")
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the projects module: %v\n%s", err, b)
	}
	return filepath.Join(dir, "projects")
}

// walkHost starts the host a client's walk-through runs against: the
// projects module (binary at projects) loaded, and the host on its own
// clock, so that a rate limit's Retry-After passes in real time.
func walkHost(t *testing.T, engine, projects string) *coretest.Env {
	t.Helper()
	env := coretest.New(t, engine, func(c *config.Config, o *core.Options) {
		o.Now = nil
		c.Modules = append(c.Modules, config.Module{Name: "projects", Path: projects})
	})
	if err := env.Host.LoadModules(context.Background()); err != nil {
		t.Fatal(err)
	}
	return env
}

// TestClientWalkThrough is issue 16's walk-through: the Go client against
// a host (with the projects module) on each engine, on the wall clock so
// that a Retry-After is really waited.
func TestClientWalkThrough(t *testing.T) {
	projects := buildProjects(t)
	coretest.Engines(t, func(t *testing.T, engine string) {
		env := walkHost(t, engine, projects)
		ctx := context.Background()
		org := env.Org("walk")
		admin, adminRaw := env.Superkey(org)
		c, rec := newClient(t, env, adminRaw)

		me, err := c.Me(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if me.KeyID != admin.ID || me.OrgID != org || !me.Superkey || me.Status != client.StatusActive {
			t.Errorf("Me: %+v", me)
		}
		scopes, err := c.Scopes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(scopes, func(s client.Scope) bool { return s.ID == "projects:write" && s.Module == "projects" }) {
			t.Errorf("Scopes lacks projects:write: %+v", scopes)
		}

		// Create: five keys, the admin's makes six: three pages of two.
		var created []string
		for i, name := range []string{"k1", "k2", "k3", "k4", "k5"} {
			k, err := c.Keys.Create(ctx, client.CreateKey{Name: name, Scopes: []string{api.ScopeKeysRead},
				RateLimit: &client.RateLimit{Limit: 60, Window: time.Minute}, Metadata: map[string]any{"n": i}})
			if err != nil {
				t.Fatal(err)
			}
			if k.Raw == "" || k.Name != name || k.Superkey || !slices.Equal(k.Scopes, []string{api.ScopeKeysRead}) ||
				k.RateLimit == nil || *k.RateLimit != (client.RateLimit{Limit: 60, Window: time.Minute}) {
				t.Errorf("Create %s: %+v", name, k)
			}
			created = append(created, k.ID)
		}
		mark := rec.len()
		var listed []string
		for k, err := range c.Keys.List(ctx, client.PageSize(2)) {
			if err != nil {
				t.Fatal(err)
			}
			listed = append(listed, k.ID)
		}
		want := append(slices.Clone(created), admin.ID)
		slices.Reverse(want[:5]) // newest first
		if !slices.Equal(listed, want) {
			t.Errorf("List: %v, want %v", listed, want)
		}
		if pages := rec.since(mark); len(pages) != 3 {
			t.Errorf("List sent %d requests, want 3 pages: %v", len(pages), pages)
		}
		// Stopping early fetches no further page.
		mark = rec.len()
		for range c.Keys.List(ctx, client.PageSize(2)) {
			break
		}
		if n := len(rec.since(mark)); n != 1 {
			t.Errorf("a List left after its first key sent %d requests, want 1", n)
		}

		// Update: rename, then remove the limit and set an expiry.
		id := created[0]
		k, err := c.Keys.Update(ctx, id, client.KeyUpdate{Name: new("renamed"), Metadata: client.Set(map[string]any{"team": "a"})})
		if err != nil {
			t.Fatal(err)
		}
		if k.Name != "renamed" || k.Metadata["team"] != "a" || k.RateLimit == nil {
			t.Errorf("Update: %+v", k)
		}
		expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Millisecond)
		k, err = c.Keys.Update(ctx, id, client.KeyUpdate{RateLimit: client.Null[client.RateLimit](), ExpiresAt: client.Set(expires)})
		if err != nil {
			t.Fatal(err)
		}
		if k.Name != "renamed" || k.RateLimit != nil || k.ExpiresAt == nil || !k.ExpiresAt.Equal(expires) {
			t.Errorf("Update with Null and Set: %+v (expires %v)", k, k.ExpiresAt)
		}
		got, err := c.Keys.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "renamed" || got.RateLimit != nil {
			t.Errorf("Get after Update: %+v", got)
		}

		// Scopes.
		k, err = c.Keys.SetScopes(ctx, id, []string{"projects:read", "projects:write"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(k.Scopes, []string{"projects:read", "projects:write"}) || k.Superkey {
			t.Errorf("SetScopes: %+v", k)
		}
		_, err = c.Keys.SetScopes(ctx, id, []string{"nope:read"})
		wantError(t, "SetScopes with an unknown scope", err, 422, "unknown_scope")
		if k, err = c.Keys.SetSuperkey(ctx, id); err != nil || !k.Superkey || k.Scopes != nil {
			t.Errorf("SetSuperkey: %+v %v", k, err)
		}
		if _, err = c.Keys.SetScopes(ctx, id, []string{"projects:read", "projects:write"}); err != nil {
			t.Fatal(err)
		}

		// Roll: the successor works, and so does the old key, expiring.
		rawOld := ""
		{
			ck, err := c.Keys.Create(ctx, client.CreateKey{Name: "to roll", Scopes: []string{"projects:read", "projects:write"}})
			if err != nil {
				t.Fatal(err)
			}
			id, rawOld = ck.ID, ck.Raw
		}
		rolled, err := c.Keys.Roll(ctx, id, new(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if rolled.Raw == "" || rolled.ID == id || rolled.Previous == nil || rolled.Previous.ID != id ||
			rolled.Previous.Status != client.StatusExpiring || rolled.Previous.ExpiresAt == nil {
			t.Errorf("Roll: %+v %+v", rolled, rolled.Previous)
		}
		oldC, _ := newClient(t, env, rawOld)
		if m, err := oldC.Me(ctx); err != nil || m.Status != client.StatusExpiring {
			t.Errorf("the rolled key within its grace: %+v %v", m, err)
		}
		newC, _ := newClient(t, env, rolled.Raw)
		var project struct {
			Project struct{ ID, Name string } `json:"project"`
		}
		if err := newC.Do(ctx, "POST", "/projects", map[string]string{"name": "walk"}, &project); err != nil {
			t.Fatal(err)
		}
		if project.Project.ID == "" || project.Project.Name != "walk" {
			t.Errorf("Do POST /projects: %+v", project)
		}
		var projectsList struct {
			Projects []struct{ ID string } `json:"projects"`
		}
		if err := oldC.Do(ctx, "GET", "/projects", nil, &projectsList); err != nil {
			t.Fatal(err)
		}

		// Stats: the new key's calls, once the request log has them.
		var st *client.Stats
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			env.FlushLogs()
			if st, err = c.Keys.Stats(ctx, rolled.ID); err != nil {
				t.Fatal(err)
			}
			if st.Total >= 1 || time.Now().After(deadline) {
				break
			}
		}
		if st.KeyID != rolled.ID || st.Total < 1 || len(st.ByRoute) == 0 || st.ByRoute[0].Route != "/api/v2/projects" {
			t.Errorf("Stats: %+v", st)
		}

		// Verify: valid with its scopes, refused without, and revoked.
		v, err := c.Keys.Verify(ctx, rolled.Raw, "projects:read")
		if err != nil {
			t.Fatal(err)
		}
		if !v.Valid || v.Code != client.CodeValid || v.KeyID != rolled.ID || v.OrgID != org || v.Superkey {
			t.Errorf("Verify: %+v", v)
		}
		if v, err = c.Keys.Verify(ctx, rolled.Raw, api.ScopeKeysWrite); err != nil || v.Valid || v.Code != client.CodeInsufficientScope {
			t.Errorf("Verify with a scope the key lacks: %+v %v", v, err)
		}

		// Revoke, then 401 for that key.
		if err := c.Keys.Revoke(ctx, rolled.ID); err != nil {
			t.Fatal(err)
		}
		_, err = newC.Me(ctx)
		wantError(t, "Me with a revoked key", err, 401, "unauthorized")
		if v, err = c.Keys.Verify(ctx, rolled.Raw); err != nil || v.Valid || v.Code != client.CodeRevoked {
			t.Errorf("Verify of a revoked key: %+v %v", v, err)
		}
		got, err = c.Keys.Get(ctx, rolled.ID)
		if err != nil || got.Status != client.StatusRevoked || got.RevokedAt == nil {
			t.Errorf("Get of a revoked key: %+v %v", got, err)
		}
		err = c.Keys.Revoke(ctx, admin.ID)
		wantError(t, "a key revoking itself", err, 409, "self_action")

		// Another org's key is a 404, like one that does not exist.
		other, _ := env.Superkey(env.Org("other"))
		_, err = c.Keys.Get(ctx, other.ID)
		wantError(t, "Get of another org's key", err, 404, "not_found")
		_, err = c.Keys.Get(ctx, "key_nope")
		wantError(t, "Get of no key", err, 404, "not_found")

		// A key limited to 1 call a second: the second call gets 429 with
		// Retry-After, and the client waits and succeeds.
		lim, err := c.Keys.Create(ctx, client.CreateKey{Name: "slow", RateLimit: &client.RateLimit{Limit: 1, Window: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		slow, slowRec := newClient(t, env, lim.Raw)
		if _, err := slow.Me(ctx); err != nil {
			t.Fatal(err)
		}
		mark = slowRec.len()
		start := time.Now()
		if _, err := slow.Me(ctx); err != nil {
			t.Fatalf("the retried call: %v", err)
		}
		waited := time.Since(start)
		sent := slowRec.since(mark)
		if len(sent) != 2 || sent[0].status != 429 || sent[1].status != 200 {
			t.Errorf("the second call sent %v, want a 429 then a 200", sent)
		}
		if waited < 500*time.Millisecond {
			t.Errorf("the retry came after %v: Retry-After was not waited", waited)
		}
		t.Logf("the call over the limit got %v and succeeded after %v", sent, waited.Round(time.Millisecond))
		// Without retries the 429 is the error, with its wait.
		once, _ := newClient(t, env, lim.Raw, client.WithRetry(client.Retry{Attempts: 1}))
		_, err = once.Me(ctx)
		if e := wantError(t, "a call over the limit, not retried", err, 429, "rate_limited"); e.RetryAfter <= 0 {
			t.Errorf("the 429 carries no Retry-After: %+v", e)
		}
	})
}
