package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gorilla/mux"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
)

// This file is the authorization walk: it enumerates every route of a
// running host from the router itself (core v2, management, admin,
// session, sign-in, ops, the UI, v1, and the routes of real module
// binaries) and holds each to the policy declared for it in
// routePolicies. A route that is not declared there fails the test: adding
// a route means saying who may call it.

// access is the kind of caller a route admits.
type access int

const (
	// public: anyone, without credentials.
	public access = iota
	// signInLink: the one-time link in the query is the credential.
	signInLink
	// keyed: a v2 route behind withApiV2Route: a key of the org holding
	// the scopes (or any key: anyKey), and with session, a signed-in owner
	// or admin of the org.
	keyed
	// denied: a v2 route mounted with neither scopes nor AnyKey: no one,
	// a superkey included.
	denied
	// operator: a signed-in user holding the operator flag.
	operator
	// signedIn: any signed-in member, whatever the role.
	signedIn
	// v1Key: the global v1 key.
	v1Key
	// v1ReadOnly: the methods other than GET on a v1 path: 405 for all.
	v1ReadOnly
)

// policy is a route's declared access, and what the walk needs to call it.
type policy struct {
	access  access
	scopes  []string // keyed: the scopes the route requires
	anyKey  bool     // keyed: any valid key, whatever its scopes
	session bool     // keyed: signed-in owners and admins of the org too
	// object is what {id} names, an object of an org ("key", "project",
	// "entry"): another org's is a 404, never a 403.
	object string
	// body is one the route accepts, so that the answers the walk sees
	// are access decisions and not a 400.
	body   string
	probe  string // a prefix route: the path below it to call
	status int    // what an admitted caller gets (200 when 0)
}

var (
	keysRead  = []string{api.ScopeKeysRead}
	keysWrite = []string{api.ScopeKeysWrite}
)

// routePolicies declares every route of a host that runs the projects
// and cms modules with a v1 key, as "METHOD template" ("*" for a route
// that takes every method; a template ending in * is a prefix).
var routePolicies = map[string]policy{
	// Core v2: the data plane and key management.
	"GET /api/v2/me":               {access: keyed, anyKey: true},
	"GET /api/v2/scopes":           {access: keyed, scopes: keysRead, session: true},
	"POST /api/v2/keys/verify":     {access: keyed, scopes: []string{api.ScopeKeysVerify}, session: true, body: `{"key":"indigo_sk_unknown"}`},
	"GET /api/v2/keys":             {access: keyed, scopes: keysRead, session: true},
	"POST /api/v2/keys":            {access: keyed, scopes: keysWrite, session: true, body: `{"name":"walk","scopes":[]}`, status: 201},
	"GET /api/v2/keys/{id}":        {access: keyed, scopes: keysRead, session: true, object: "key"},
	"PATCH /api/v2/keys/{id}":      {access: keyed, scopes: keysWrite, session: true, object: "key", body: `{"name":"renamed"}`},
	"PUT /api/v2/keys/{id}/scopes": {access: keyed, scopes: keysWrite, session: true, object: "key", body: `{"scopes":[]}`},
	"POST /api/v2/keys/{id}/roll":  {access: keyed, scopes: keysWrite, session: true, object: "key", status: 201},
	"DELETE /api/v2/keys/{id}":     {access: keyed, scopes: keysWrite, session: true, object: "key"},
	"GET /api/v2/keys/{id}/stats":  {access: keyed, scopes: keysRead, session: true, object: "key"},

	// Module routes, served by the real binaries over gRPC.
	"GET /api/v2/projects":                             {access: keyed, scopes: []string{"projects:read"}},
	"POST /api/v2/projects":                            {access: keyed, scopes: []string{"projects:write"}, body: `{"name":"walk"}`, status: 201},
	"GET /api/v2/projects/{id}":                        {access: keyed, scopes: []string{"projects:read"}, object: "project"},
	"GET /api/v2/cms/entries":                          {access: keyed, scopes: []string{"cms:read"}},
	"POST /api/v2/cms/entries":                         {access: keyed, scopes: []string{"cms:write"}, body: `{"title":"walk","body":"b"}`, status: 201},
	"GET /api/v2/cms/entries/{id}":                     {access: keyed, scopes: []string{"cms:read"}, object: "entry"},
	"GET /api/v1/cms/entries":                          {access: v1Key},
	"GET /api/v1/cms/entries/{id}":                     {access: v1Key, object: "entry"},
	"* /api/v1/cms/entries":                            {access: v1ReadOnly},
	"* /api/v1/cms/entries/{id}":                       {access: v1ReadOnly, object: "entry"},
	walkNoPolicyMethod + " /api/v2" + walkNoPolicyPath: {access: denied, session: true},

	// The operator's views across orgs.
	"GET /api/admin/keys":  {access: operator},
	"GET /api/admin/logs":  {access: operator},
	"GET /api/admin/audit": {access: operator},

	// Sign-in and the session.
	"GET /auth/login":   {access: signInLink, status: http.StatusSeeOther},
	"POST /auth/logout": {access: signedIn},
	"GET /api/session":  {access: signedIn},

	// Operations and the document.
	"GET /healthz":          {access: public},
	"GET /readyz":           {access: public},
	"GET /metrics":          {access: public},
	"GET /api/openapi.json": {access: public},

	// The UI: a shell that holds no data (it calls the API above) and its
	// assets.
	"GET /":                   {access: public},
	"HEAD /":                  {access: public},
	"GET /settings/api-keys":  {access: public},
	"HEAD /settings/api-keys": {access: public},
	"GET /account/api":        {access: public},
	"HEAD /account/api":       {access: public},
	"GET /admin/api-keys":     {access: public},
	"HEAD /admin/api-keys":    {access: public},
	"GET /admin/logs":         {access: public},
	"HEAD /admin/logs":        {access: public},
	"GET /favicon.ico":        {access: public},
	"HEAD /favicon.ico":       {access: public},
	"GET /ui/*":               {access: public, probe: "/ui/app.js"},
	"HEAD /ui/*":              {access: public, probe: "/ui/app.js"},
}

// The route the walk mounts without a policy, to see it refused.
const (
	walkNoPolicyMethod = "GET"
	walkNoPolicyPath   = "/walk/no-policy"
)

// walkedRoute is a route as the router reports it.
type walkedRoute struct {
	key    string // "METHOD template"
	method string // "*": any
	tpl    string // a prefix ends in *
	route  *mux.Route
}

// walkRoutes lists every route of the router, one per method.
func walkRoutes(t *testing.T, r *mux.Router) []walkedRoute {
	t.Helper()
	var out []walkedRoute
	err := r.Walk(func(rt *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if rt.GetHandler() == nil {
			return nil // a subrouter's route: its routes are walked in turn
		}
		tpl, err := rt.GetPathTemplate()
		if err != nil {
			// A route that the segment matcher alone serves has no Path
			// matcher: api names it after its template.
			tpl = rt.GetName()
		}
		if tpl == "" {
			t.Errorf("a route with a handler has neither a path template nor a name: mount it with a path (or through api's route helper)")
			return nil
		}
		if re, err := rt.GetPathRegexp(); err == nil && !strings.HasSuffix(re, "$") {
			tpl += "*"
		}
		methods, err := rt.GetMethods()
		if err != nil {
			methods = []string{"*"}
		}
		for _, m := range methods {
			out = append(out, walkedRoute{key: m + " " + tpl, method: m, tpl: tpl, route: rt})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// buildWalkModules builds the module binaries the walk loads into dir
// (the build cache makes a rebuild cheap) and returns their paths.
func buildWalkModules(t *testing.T, pkgs ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %v: %v\n%s", pkgs, err, b)
	}
	out := map[string]string{}
	for _, p := range pkgs {
		out[filepath.Base(p)] = filepath.Join(dir, filepath.Base(p))
	}
	return out
}

const walkV1Key = "v1-global-key-for-the-walk"

type walkSession struct{ cookie, csrf string }

// walkFixture is a host with modules, two orgs and their callers. Org A
// is home: the routes are called on its objects; org B is the other org.
type walkFixture struct {
	env     *coretest.Env
	org     map[string]string      // "A" → org id
	keys    map[string]string      // "A:super", "A:none", "A:revoked" → plaintext
	sess    map[string]walkSession // "A:owner", "A:admin", "A:member", "A:operator" (a member with the flag)
	objects map[string]string      // "A:project", "A:entry" (a draft), "A:published", "A:key" → id
	scoped  map[string]string      // "A|scope,scope" → plaintext of a key with exactly those
	leaving int                    // sessions made to sign out
	called  atomic.Int32           // runs of the no-policy route's handler
}

func newWalkFixture(t *testing.T, engine string, bins map[string]string) *walkFixture {
	t.Helper()
	env := coretest.New(t, engine, func(c *config.Config, _ *core.Options) {
		c.V1.APIKey = walkV1Key
		for _, name := range []string{"projects", "cms"} {
			c.Modules = append(c.Modules, config.Module{Name: name, Path: bins[name]})
		}
	})
	if err := env.Host.LoadModules(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &walkFixture{env: env, org: map[string]string{}, keys: map[string]string{}, sess: map[string]walkSession{},
		objects: map[string]string{}, scoped: map[string]string{}}
	// Session, but neither scopes nor AnyKey: still no one.
	env.Host.API.HandleV2(api.Route{Method: walkNoPolicyMethod, Path: walkNoPolicyPath, Session: true},
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			f.called.Add(1)
			w.WriteHeader(http.StatusTeapot)
		}))
	for _, o := range []string{"A", "B"} {
		org := env.Org("walk " + o)
		f.org[o] = org
		_, f.keys[o+":super"] = env.Superkey(org)
		_, f.keys[o+":none"] = env.Scoped(org)
		revoked, raw := env.Superkey(org)
		if err := env.Host.Keys.Revoke(context.Background(), org, revoked.ID, apikey.Actor{ID: "test"}); err != nil {
			t.Fatal(err)
		}
		f.keys[o+":revoked"] = raw
		low := strings.ToLower(o)
		for _, role := range []string{"owner", "admin", "member"} {
			cookie, csrf := env.Session(org, role+"-"+low+"@example.com", role, false)
			f.sess[o+":"+role] = walkSession{cookie, csrf}
		}
		cookie, csrf := env.Session(org, "operator-"+low+"@example.com", "member", true)
		f.sess[o+":operator"] = walkSession{cookie, csrf}
		k, _ := env.Scoped(org, api.ScopeKeysRead)
		f.objects[o+":key"] = k.ID
		super := coretest.Bearer(f.keys[o+":super"])
		f.objects[o+":project"] = f.create(t, "/api/v2/projects", super, `{"name":"p"}`, "project")
		f.objects[o+":entry"] = f.create(t, "/api/v2/cms/entries", super, `{"title":"draft","body":"b"}`, "entry")
		f.objects[o+":published"] = f.create(t, "/api/v2/cms/entries", super, `{"title":"pub","body":"b","published":true}`, "entry")
	}
	return f
}

func (f *walkFixture) create(t *testing.T, path, auth, body, field string) string {
	t.Helper()
	r := f.env.Do("POST", path, auth, body)
	if r.Status != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", path, r.Status, r.Body)
	}
	obj, _ := r.JSON(t)[field].(map[string]any)
	id, _ := obj["id"].(string)
	if id == "" {
		t.Fatalf("POST %s: no %s.id in %s", path, field, r.Body)
	}
	return id
}

// scopedKey is a key of org o holding exactly scopes.
func (f *walkFixture) scopedKey(o string, scopes []string) string {
	k := o + "|" + strings.Join(scopes, ",")
	if raw, ok := f.scoped[k]; ok {
		return raw
	}
	_, raw := f.env.Scoped(f.org[o], scopes...)
	f.scoped[k] = raw
	return raw
}

// allBut is every registered scope except those of the route.
func (f *walkFixture) allBut(scopes []string) []string {
	out := []string{}
	for _, s := range f.env.Host.Scopes.List() {
		if !slices.Contains(scopes, s.ID) {
			out = append(out, s.ID)
		}
	}
	return out
}

// path fills the route's template for a call: {id} is org o's object
// (a new key when fresh, for the calls that change or revoke it).
func (f *walkFixture) path(t *testing.T, w walkedRoute, p policy, o string, fresh bool) string {
	t.Helper()
	if p.probe != "" {
		return p.probe
	}
	path := w.tpl
	if !strings.Contains(path, "{") {
		return path
	}
	if p.object == "" || strings.Count(path, "{") != 1 || !strings.Contains(path, "{id}") {
		t.Fatalf("%s: the walk does not know what to put in its path: declare the object its {id} names", w.key)
	}
	id := f.objects[o+":"+p.object]
	switch {
	case p.object == "key" && fresh:
		k, _ := f.env.Scoped(f.org[o], api.ScopeKeysRead)
		id = k.ID
	case p.access == v1Key || p.access == v1ReadOnly:
		id = f.objects[o+":published"] // v1 sees published entries only
	}
	if id == "" {
		t.Fatalf("%s: no %s object in org %s", w.key, p.object, o)
	}
	return strings.Replace(path, "{id}", id, 1)
}

// caller is how a check authenticates.
type caller struct {
	name   string
	auth   string   // the Authorization header
	header []string // more headers: the session cookie and CSRF token
}

func (f *walkFixture) key(name string) caller {
	return caller{name: "key " + name, auth: coretest.Bearer(f.keys[name])}
}

func (f *walkFixture) session(name string, csrf bool) caller {
	s := f.sess[name]
	c := caller{name: "session " + name, header: []string{"Cookie", s.cookie}}
	if csrf {
		c.header = append(c.header, "X-CSRF-Token", s.csrf)
	} else {
		c.name += " without CSRF token"
	}
	return c
}

var (
	nobody  = caller{name: "no credentials"}
	garbage = caller{name: "a made-up key", auth: "Bearer indigo_sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
)

// expect calls the route as c and checks the status and, for an error,
// the code ("" for any).
func (f *walkFixture) expect(t *testing.T, method, path, body string, c caller, status int, code string) {
	t.Helper()
	var b any
	if body != "" && method != "GET" && method != "HEAD" {
		b = body
	}
	r := f.env.Do(method, path, c.auth, b, c.header...)
	if r.Status != status {
		t.Errorf("%s %s as %s: %d, want %d; body: %.300s", method, path, c.name, r.Status, status, r.Body)
		return
	}
	if code != "" && method != "HEAD" && r.ErrorCode() != code {
		t.Errorf("%s %s as %s: error.code %q, want %q; body: %.300s", method, path, c.name, r.ErrorCode(), code, r.Body)
	}
}

func (f *walkFixture) check(t *testing.T, w walkedRoute, p policy) {
	admitted := p.status
	if admitted == 0 {
		admitted = http.StatusOK
	}
	method := w.method
	// A call that may change its object gets one of its own, so that a
	// refusal that fails changes no object that later calls use.
	home := func() string { return f.path(t, w, p, "A", method != "GET" && method != "HEAD") }
	fresh := func() string { return f.path(t, w, p, "A", true) }
	switch p.access {
	case public:
		f.expect(t, method, home(), p.body, nobody, admitted, "")

	case signInLink:
		f.expect(t, method, home(), "", nobody, http.StatusUnauthorized, "")
		f.expect(t, method, home(), "", f.key("A:super"), http.StatusUnauthorized, "")
		tok, err := f.env.Host.Local.LoginLink(context.Background(), f.org["A"], "link-a@example.com", "member", false)
		if err != nil {
			t.Fatal(err)
		}
		// The redirect is the answer: not followed.
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for i, want := range []int{admitted, http.StatusUnauthorized} { // the link, then the same link used
			resp, err := client.Get(f.env.Server.URL + home() + "?token=" + tok)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET %s with a sign-in link (use %d): %d, want %d", home(), i+1, resp.StatusCode, want)
			}
		}

	case keyed, denied:
		if p.access == denied {
			// Refused before anyone is asked who they are.
			for _, c := range []caller{nobody, f.key("A:super"), f.session("A:owner", true), f.session("A:operator", true)} {
				f.expect(t, method, home(), p.body, c, http.StatusForbidden, "no_policy")
			}
			return
		}
		for _, c := range []caller{nobody, garbage, f.key("A:revoked")} {
			f.expect(t, method, home(), p.body, c, http.StatusUnauthorized, "unauthorized")
		}
		if p.anyKey {
			f.expect(t, method, fresh(), p.body, f.key("A:none"), admitted, "")
		} else {
			f.expect(t, method, home(), p.body, f.key("A:none"), http.StatusForbidden, "insufficient_scope")
			allBut := caller{name: "a key with every scope but " + strings.Join(p.scopes, ", "),
				auth: coretest.Bearer(f.scopedKey("A", f.allBut(p.scopes)))}
			f.expect(t, method, home(), p.body, allBut, http.StatusForbidden, "insufficient_scope")
		}
		exact := caller{name: "a key of org A with exactly " + strings.Join(p.scopes, ", "), auth: coretest.Bearer(f.scopedKey("A", p.scopes))}
		if p.object != "" {
			// Org A's object, called by org B.
			otherExact := caller{name: "a key of org B with exactly " + strings.Join(p.scopes, ", "), auth: coretest.Bearer(f.scopedKey("B", p.scopes))}
			for _, c := range []caller{f.key("B:super"), otherExact} {
				f.expect(t, method, home(), p.body, c, http.StatusNotFound, "not_found")
			}
			if p.session {
				f.expect(t, method, home(), p.body, f.session("B:owner", true), http.StatusNotFound, "not_found")
			}
		}
		if p.session {
			f.expect(t, method, home(), p.body, f.session("A:member", true), http.StatusForbidden, "forbidden")
			if method != "GET" && method != "HEAD" {
				f.expect(t, method, home(), p.body, f.session("A:owner", false), http.StatusForbidden, "csrf_failed")
			}
			f.expect(t, method, fresh(), p.body, f.session("A:admin", true), admitted, "")
			f.expect(t, method, fresh(), p.body, f.session("A:owner", true), admitted, "")
		} else {
			// A session is no key for a key-only route.
			f.expect(t, method, home(), p.body, f.session("A:owner", true), http.StatusUnauthorized, "unauthorized")
		}
		f.expect(t, method, fresh(), p.body, exact, admitted, "")
		f.expect(t, method, fresh(), p.body, f.key("A:super"), admitted, "")

	case operator:
		for _, c := range []caller{nobody, garbage, f.key("A:revoked")} {
			f.expect(t, method, home(), "", c, http.StatusUnauthorized, "unauthorized")
		}
		// Known callers without the right: a key (even a superkey) is
		// never an operator, nor is a signed-in owner without the flag.
		for _, c := range []caller{f.key("A:super"), f.key("A:none"), f.session("A:owner", true), f.session("A:member", true)} {
			f.expect(t, method, home(), "", c, http.StatusForbidden, "not_operator")
		}
		f.expect(t, method, home(), "", f.session("A:operator", true), admitted, "")

	case signedIn:
		for _, c := range []caller{nobody, garbage, f.key("A:super")} {
			f.expect(t, method, home(), "", c, http.StatusUnauthorized, "unauthorized")
		}
		if method != "GET" && method != "HEAD" {
			f.expect(t, method, home(), "", f.session("A:member", false), http.StatusForbidden, "csrf_failed")
			// The call that succeeds signs out: a session of its own.
			f.leaving++
			cookie, csrf := f.env.Session(f.org["A"], fmt.Sprintf("leaving-%d@example.com", f.leaving), "member", false)
			f.expect(t, method, home(), "", caller{name: "a member's session", header: []string{"Cookie", cookie, "X-CSRF-Token", csrf}}, admitted, "")
			return
		}
		f.expect(t, method, home(), "", f.session("A:member", true), admitted, "")

	case v1Key:
		for _, c := range []caller{nobody, garbage, f.key("A:super")} {
			f.expect(t, method, home(), "", c, http.StatusUnauthorized, "unauthorized")
		}
		v1 := caller{name: "the v1 key", auth: coretest.Bearer(walkV1Key)}
		f.expect(t, method, home(), "", v1, admitted, "")
		if p.object == "entry" {
			// v1 has no org: it reads published entries, not an org's draft.
			draft := strings.Replace(w.tpl, "{id}", f.objects["A:entry"], 1)
			f.expect(t, method, draft, "", v1, http.StatusNotFound, "not_found")
		}

	case v1ReadOnly:
		for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			for _, c := range []caller{nobody, {name: "the v1 key", auth: coretest.Bearer(walkV1Key)}} {
				f.expect(t, m, home(), "", c, http.StatusMethodNotAllowed, "method_not_allowed")
			}
		}

	default:
		t.Fatalf("%s: unknown access %d", w.key, p.access)
	}
}

// TestEveryRouteHasAPolicy walks the router of a host running real module
// binaries and calls each route as each kind of caller its policy names.
func TestEveryRouteHasAPolicy(t *testing.T) {
	bins := buildWalkModules(t, "./modules/projects", "./modules/cms")
	coretest.Engines(t, func(t *testing.T, engine string) {
		f := newWalkFixture(t, engine, bins)
		router := f.env.Host.API.Router()
		walked := walkRoutes(t, router)

		seen := map[string]walkedRoute{}
		for _, w := range walked {
			if _, dup := seen[w.key]; dup {
				t.Errorf("%s is mounted twice: the second is never reached", w.key)
			}
			seen[w.key] = w
			if _, ok := routePolicies[w.key]; !ok {
				t.Errorf("route %s has no declared policy: add it to routePolicies in core/api/authz_test.go, "+
					"saying who may call it (keyed with its scopes, session, operator, public, ...)", w.key)
			}
		}
		for k := range routePolicies {
			if _, ok := seen[k]; !ok {
				t.Errorf("routePolicies declares %s, which the host does not mount: remove it", k)
			}
		}
		// The declarations agree with what the v2 and v1 routes were
		// mounted with.
		for _, rt := range f.env.Host.API.Routes() {
			k := rt.Method + " " + api.V2Prefix + rt.Path
			p, ok := routePolicies[k]
			if !ok {
				continue // reported above
			}
			want := denied
			if len(rt.Scopes) > 0 || rt.AnyKey {
				want = keyed
			}
			got := slices.Clone(p.scopes)
			mounted := slices.Clone(rt.Scopes)
			sort.Strings(got)
			sort.Strings(mounted)
			if p.access != want || !slices.Equal(got, mounted) || p.anyKey != rt.AnyKey || p.session != rt.Session {
				t.Errorf("%s is mounted with scopes %v, AnyKey %v, Session %v; routePolicies declares access %d, scopes %v, anyKey %v, session %v: "+
					"a change of access must be made in both", k, rt.Scopes, rt.AnyKey, rt.Session, p.access, p.scopes, p.anyKey, p.session)
			}
		}
		for _, rt := range f.env.Host.API.V1Routes() {
			for k, want := range map[string]access{"GET " + api.V1Prefix + rt.Path: v1Key, "* " + api.V1Prefix + rt.Path: v1ReadOnly} {
				if p, ok := routePolicies[k]; ok && p.access != want {
					t.Errorf("%s is a v1 route; routePolicies declares access %d", k, p.access)
				}
			}
		}
		if t.Failed() {
			t.FailNow()
		}

		sort.Slice(walked, func(i, j int) bool { return walked[i].key < walked[j].key })
		for _, w := range walked {
			p := routePolicies[w.key]
			t.Run(w.key, func(t *testing.T) {
				// The path the walk calls is served by the walked route.
				method := w.method
				if method == "*" {
					method = "POST"
				}
				req := httptest.NewRequest(method, f.path(t, w, p, "A", false), nil)
				var m mux.RouteMatch
				if !router.Match(req, &m) || m.Route != w.route {
					t.Fatalf("%s %s is not served by the walked route %s", method, req.URL.Path, w.key)
				}
				f.check(t, w, p)
			})
		}
		if n := f.called.Load(); n != 0 {
			t.Errorf("the handler of the route without a policy ran %d times", n)
		}
		t.Logf("walked %d routes (%d method and template pairs)", countRoutes(walked), len(walked))
	})
}

func countRoutes(ws []walkedRoute) int {
	seen := map[*mux.Route]bool{}
	for _, w := range ws {
		seen[w.route] = true
	}
	return len(seen)
}
