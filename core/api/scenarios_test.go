package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/coretest"
)

// This file holds the API scenarios: table-driven requests in the
// PocketBase ApiScenario style, run against a real host on each engine.
//
// Paths, bodies and expected content may hold placeholders that the
// fixture resolves at run time:
//
//	{A}            the id of org A (B likewise)
//	{A:read}       the id of org A's key named "read" (see scnKeyNames)
//	{raw:A:read}   the plaintext of that key
//	{A:fresh}      a key created in org A just for this scenario (path only)
//
// Auth names a caller: "" for none, "A:read" for the Bearer key, "A:owner",
// "A:admin" or "A:member" for a signed-in member sending its CSRF token,
// "A:owner-nocsrf" / "A:owner-badcsrf" for an owner without or with a wrong
// token, and "header:<value>" for a literal Authorization header.

// scnKeyNames are the keys made in every org.
var scnKeyNames = map[string][]string{
	"super":  nil, // superkey
	"read":   {api.ScopeKeysRead},
	"write":  {api.ScopeKeysWrite},
	"verify": {api.ScopeKeysVerify},
	"empty":  {},
	// target is the key other scenarios act on (get, patch, put scopes,
	// and the refused attempts on the destructive routes).
	"target": {api.ScopeKeysRead},
	// revoked is revoked during setup.
	"revoked": {api.ScopeKeysRead},
}

// scnKeyFields are the fields of the public key object, exactly.
var scnKeyFields = []string{"id", "org_id", "name", "prefix", "last4", "scopes", "status", "enabled", "metadata", "rate_limit",
	"remaining", "refill", "expires_at", "last_used_at", "created_at", "created_by", "revoked_at"}

type scnKey struct{ id, raw, org string }

type scnSession struct{ cookie, csrf string }

type scnFixture struct {
	env   *coretest.Env
	org   map[string]string     // "A" → org id
	keys  map[string]scnKey     // "A:read" → key
	sess  map[string]scnSession // "A:owner" → session
	fresh scnKey                // the key the last {X:fresh} made
}

func newScnFixture(t *testing.T, engine string) *scnFixture {
	t.Helper()
	env := coretest.New(t, engine)
	f := &scnFixture{env: env, org: map[string]string{}, keys: map[string]scnKey{}, sess: map[string]scnSession{}}
	for _, o := range []string{"A", "B"} {
		org := env.Org("org " + o)
		f.org[o] = org
		for name, scopes := range scnKeyNames {
			var k apikey.Key
			var raw string
			if scopes == nil {
				k, raw = env.Superkey(org)
			} else {
				k, raw = env.Scoped(org, scopes...)
			}
			f.keys[o+":"+name] = scnKey{id: k.ID, raw: raw, org: org}
		}
		if err := env.Host.Keys.Revoke(context.Background(), org, f.keys[o+":revoked"].id, apikey.Actor{ID: "test"}); err != nil {
			t.Fatal(err)
		}
		low := strings.ToLower(o)
		for _, role := range []string{"owner", "admin", "member"} {
			cookie, csrf := env.Session(org, role+"-"+low+"@example.com", role, false)
			if csrf == "" {
				t.Fatalf("session of %s in org %s has no CSRF token", role, o)
			}
			f.sess[o+":"+role] = scnSession{cookie: cookie, csrf: csrf}
		}
	}
	return f
}

var scnPlaceholderRE = regexp.MustCompile(`\{(raw:)?([AB])(?::([a-z-]+))?\}`)

// resolve replaces the placeholders of s. fresh allows {X:fresh}.
func (f *scnFixture) resolve(t *testing.T, s string, fresh bool) string {
	t.Helper()
	return scnPlaceholderRE.ReplaceAllStringFunc(s, func(m string) string {
		p := scnPlaceholderRE.FindStringSubmatch(m)
		raw, o, name := p[1] != "", p[2], p[3]
		switch {
		case name == "" && !raw:
			return f.org[o]
		case name == "fresh" && fresh:
			k, rawKey := f.env.Scoped(f.org[o], api.ScopeKeysRead)
			f.fresh = scnKey{id: k.ID, raw: rawKey, org: f.org[o]}
			return k.ID
		}
		k, ok := f.keys[o+":"+name]
		if !ok {
			t.Fatalf("unknown placeholder %s", m)
		}
		if raw {
			return k.raw
		}
		return k.id
	})
}

// headers turns a scenario's Auth into the Authorization header and the
// other headers.
func (f *scnFixture) headers(t *testing.T, auth string) (string, []string) {
	t.Helper()
	if auth == "" {
		return "", nil
	}
	if v, ok := strings.CutPrefix(auth, "header:"); ok {
		return v, nil
	}
	if k, ok := f.keys[auth]; ok {
		return coretest.Bearer(k.raw), nil
	}
	base, variant, _ := strings.Cut(auth, "-")
	s, ok := f.sess[base]
	if !ok {
		t.Fatalf("unknown auth %q", auth)
	}
	switch variant {
	case "":
		return "", []string{"Cookie", s.cookie, "X-CSRF-Token", s.csrf}
	case "nocsrf":
		return "", []string{"Cookie", s.cookie}
	case "badcsrf":
		return "", []string{"Cookie", s.cookie, "X-CSRF-Token", s.csrf + "x"}
	}
	t.Fatalf("unknown auth %q", auth)
	return "", nil
}

// ApiScenario is one request and what must come back.
type ApiScenario struct {
	Name   string
	Method string
	Path   string // below the host, placeholders allowed
	Auth   string
	Body   string // raw JSON, placeholders allowed; "" for no body
	// Before runs before the request.
	Before func(t *testing.T, f *scnFixture)

	ExpectedStatus int
	// ExpectedCode is error.code; the body must then be exactly an error.
	ExpectedCode string
	// ExpectedContent are substrings of the body (placeholders allowed);
	// NotExpectedContent must not occur.
	ExpectedContent    []string
	NotExpectedContent []string
	// ExpectedFields are the top-level fields of the JSON object, exactly.
	ExpectedFields []string
	// Unrouted: no route matches, so the router answers (no request id).
	Unrouted bool
	// Check makes further assertions on the decoded body.
	Check func(t *testing.T, f *scnFixture, r coretest.Response, body map[string]any)
}

func (sc ApiScenario) run(t *testing.T, f *scnFixture) {
	t.Helper()
	if sc.Before != nil {
		sc.Before(t, f)
	}
	path := f.resolve(t, sc.Path, true)
	var body any
	if sc.Body != "" {
		body = f.resolve(t, sc.Body, false)
	}
	auth, hdr := f.headers(t, sc.Auth)
	r := f.env.Do(sc.Method, path, auth, body, hdr...)
	if r.Status != sc.ExpectedStatus {
		t.Fatalf("%s %s as %q: status %d, want %d; body: %s", sc.Method, path, sc.Auth, r.Status, sc.ExpectedStatus, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if strings.HasPrefix(path, api.V2Prefix) && !sc.Unrouted && r.Header.Get("X-Request-Id") == "" {
		t.Errorf("no X-Request-Id header on a v2 response")
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	if r.Status >= 400 {
		scnAssertError(t, r, m)
	}
	if sc.ExpectedCode != "" {
		if got := r.ErrorCode(); got != sc.ExpectedCode {
			t.Errorf("error.code %q, want %q; body: %s", got, sc.ExpectedCode, r.Body)
		}
	}
	for _, c := range sc.ExpectedContent {
		if c = f.resolve(t, c, false); !strings.Contains(string(r.Body), c) {
			t.Errorf("body lacks %q: %s", c, r.Body)
		}
	}
	for _, c := range sc.NotExpectedContent {
		if c = f.resolve(t, c, false); strings.Contains(string(r.Body), c) {
			t.Errorf("body holds %q: %s", c, r.Body)
		}
	}
	if sc.ExpectedFields != nil {
		scnAssertFields(t, "response", m, sc.ExpectedFields)
	}
	if sc.Check != nil {
		sc.Check(t, f, r, m)
	}
}

// scnAssertError checks {"error":{"code","message"}} and nothing else.
func scnAssertError(t *testing.T, r coretest.Response, m map[string]any) {
	t.Helper()
	scnAssertFields(t, "error body", m, []string{"error"})
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("error is not an object: %s", r.Body)
	}
	scnAssertFields(t, "error", e, []string{"code", "message"})
	if c, _ := e["code"].(string); c == "" {
		t.Errorf("error.code is empty: %s", r.Body)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Errorf("error.message is empty: %s", r.Body)
	}
}

func scnAssertFields(t *testing.T, what string, m map[string]any, want []string) {
	t.Helper()
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	w := slices.Clone(want)
	sort.Strings(w)
	if !slices.Equal(got, w) {
		t.Errorf("%s fields %v, want exactly %v", what, got, w)
	}
}

// scnAssertKey checks a key object's shape and org.
func scnAssertKey(t *testing.T, v any, org string) map[string]any {
	t.Helper()
	k, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("key is not an object: %#v", v)
	}
	scnAssertFields(t, "key", k, scnKeyFields)
	if k["org_id"] != org {
		t.Errorf("key %v has org_id %v, want %s", k["id"], k["org_id"], org)
	}
	if id, _ := k["id"].(string); !strings.HasPrefix(id, "key_") {
		t.Errorf("key id %q", id)
	}
	if l4, _ := k["last4"].(string); len(l4) != 4 {
		t.Errorf("last4 %q", l4)
	}
	return k
}

func scnKeyList(t *testing.T, body map[string]any) []map[string]any {
	t.Helper()
	arr, ok := body["keys"].([]any)
	if !ok {
		t.Fatalf("keys is not an array: %#v", body["keys"])
	}
	out := make([]map[string]any, len(arr))
	for i, v := range arr {
		out[i], _ = v.(map[string]any)
	}
	return out
}

// scnRoute describes a v2 route for the access scnMatrix.
type scnRoute struct {
	Method string
	Path   string // {id} stands for the home org's key
	Scope  string // the scope needed, "" for any key
	Body   string // a body that succeeds
	Status int
	Fields []string
	// Fresh: success needs its own key ({id} becomes {H:fresh}).
	Fresh bool
	// ID is the key {id} stands for, "target" unless set.
	ID    string
	Check func(t *testing.T, f *scnFixture, home, auth string, r coretest.Response, body map[string]any)
}

var scnScopeKey = map[string]string{api.ScopeKeysRead: "read", api.ScopeKeysWrite: "write", api.ScopeKeysVerify: "verify"}

var scnRoutes = []scnRoute{
	{Method: "GET", Path: "/me", Status: 200, Fields: []string{"org_id", "key_id", "name", "scopes", "status", "expires_at"},
		Check: func(t *testing.T, f *scnFixture, home, auth string, _ coretest.Response, body map[string]any) {
			k := f.keys[auth]
			if body["org_id"] != f.org[home] || body["key_id"] != k.id || body["status"] != "active" || body["expires_at"] != nil {
				t.Errorf("me: %v, want org %s key %s active without expiry", body, f.org[home], k.id)
			}
			switch {
			case strings.HasSuffix(auth, ":super"):
				if body["scopes"] != nil {
					t.Errorf("a superkey's scopes are %v, want null", body["scopes"])
				}
			case strings.HasSuffix(auth, ":empty"):
				if s, ok := body["scopes"].([]any); !ok || len(s) != 0 {
					t.Errorf("an empty key's scopes are %#v, want []", body["scopes"])
				}
			default:
				want := scnKeyNames[strings.TrimPrefix(auth, home+":")]
				if s, ok := body["scopes"].([]any); !ok || len(s) != len(want) || (len(want) > 0 && s[0] != want[0]) {
					t.Errorf("scopes %#v, want %v", body["scopes"], want)
				}
			}
		}},
	{Method: "GET", Path: "/scopes", Scope: api.ScopeKeysRead, Status: 200, Fields: []string{"scopes", "groups"},
		Check: func(t *testing.T, _ *scnFixture, _, _ string, _ coretest.Response, body map[string]any) {
			var ids []string
			for _, s := range body["scopes"].([]any) {
				ids = append(ids, s.(map[string]any)["id"].(string))
			}
			for _, want := range []string{api.ScopeKeysRead, api.ScopeKeysWrite, api.ScopeKeysVerify} {
				if !slices.Contains(ids, want) {
					t.Errorf("scopes %v lack %s", ids, want)
				}
			}
		}},
	{Method: "GET", Path: "/keys", Scope: api.ScopeKeysRead, Status: 200, Fields: []string{"keys", "next_cursor"},
		Check: func(t *testing.T, f *scnFixture, home, _ string, _ coretest.Response, body map[string]any) {
			keys := scnKeyList(t, body)
			seen := map[string]bool{}
			for _, k := range keys {
				scnAssertKey(t, k, f.org[home])
				seen[k["id"].(string)] = true
			}
			for name := range scnKeyNames {
				if !seen[f.keys[home+":"+name].id] {
					t.Errorf("list lacks the org's key %s", name)
				}
			}
			other := map[string]string{"A": "B", "B": "A"}[home]
			if seen[f.keys[other+":read"].id] {
				t.Errorf("list shows another org's key")
			}
		}},
	{Method: "POST", Path: "/keys", Scope: api.ScopeKeysWrite, Body: `{"name":"made","scopes":["api-keys:read"]}`, Status: 201,
		Fields: []string{"key", "raw_key", "warning"},
		Check: func(t *testing.T, f *scnFixture, home, _ string, r coretest.Response, body map[string]any) {
			k := scnAssertKey(t, body["key"], f.org[home])
			raw, _ := body["raw_key"].(string)
			if !strings.HasSuffix(raw, k["last4"].(string)) || !strings.HasPrefix(raw, k["prefix"].(string)+"_") {
				t.Errorf("raw_key %q does not match prefix %v / last4 %v", raw, k["prefix"], k["last4"])
			}
			if body["warning"] != api.RawKeyWarning {
				t.Errorf("warning %v", body["warning"])
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", r.Header.Get("Cache-Control"))
			}
			me := f.env.Do("GET", "/api/v2/me", coretest.Bearer(raw), nil)
			if me.Status != 200 || me.JSON(t)["key_id"] != k["id"] {
				t.Errorf("the created key does not authenticate as itself: %d %s", me.Status, me.Body)
			}
		}},
	{Method: "GET", Path: "/keys/{id}", Scope: api.ScopeKeysRead, Status: 200, Fields: []string{"key"},
		Check: func(t *testing.T, f *scnFixture, home, _ string, _ coretest.Response, body map[string]any) {
			if k := scnAssertKey(t, body["key"], f.org[home]); k["id"] != f.keys[home+":target"].id {
				t.Errorf("got key %v, want the target", k["id"])
			}
		}},
	{Method: "PATCH", Path: "/keys/{id}", Scope: api.ScopeKeysWrite, Body: `{"name":"renamed","metadata":{"team":"x"}}`, Status: 200,
		Fields: []string{"key"},
		Check: func(t *testing.T, f *scnFixture, home, _ string, _ coretest.Response, body map[string]any) {
			k := scnAssertKey(t, body["key"], f.org[home])
			if k["name"] != "renamed" || k["metadata"].(map[string]any)["team"] != "x" {
				t.Errorf("patch not applied: %v", k)
			}
		}},
	{Method: "PUT", Path: "/keys/{id}/scopes", Scope: api.ScopeKeysWrite, Body: `{"scopes":["api-keys:verify","api-keys:read"]}`, Status: 200,
		Fields: []string{"key"},
		Check: func(t *testing.T, f *scnFixture, home, _ string, _ coretest.Response, body map[string]any) {
			k := scnAssertKey(t, body["key"], f.org[home])
			if fmt.Sprint(k["scopes"]) != "[api-keys:read api-keys:verify]" {
				t.Errorf("scopes %v, want [api-keys:read api-keys:verify]", k["scopes"])
			}
		}},
	{Method: "POST", Path: "/keys/{id}/roll", Scope: api.ScopeKeysWrite, Body: `{"grace_seconds":60}`, Status: 201, Fresh: true,
		Fields: []string{"key", "raw_key", "warning", "previous"},
		Check: func(t *testing.T, f *scnFixture, home, _ string, _ coretest.Response, body map[string]any) {
			k := scnAssertKey(t, body["key"], f.org[home])
			prev, _ := body["previous"].(map[string]any)
			scnAssertFields(t, "previous", prev, []string{"id", "status", "expires_at"})
			wantExp := f.env.Clock.Now().Add(60 * time.Second).UTC().Format("2006-01-02T15:04:05.000Z")
			if prev["id"] != f.fresh.id || prev["status"] != "expiring" || prev["expires_at"] != wantExp {
				t.Errorf("previous %v, want id %s expiring at %s", prev, f.fresh.id, wantExp)
			}
			if k["id"] == f.fresh.id || fmt.Sprint(k["scopes"]) != "[api-keys:read]" {
				t.Errorf("successor %v should be a new key with the old scopes", k)
			}
			// Both keys work during the grace.
			old := f.env.Do("GET", "/api/v2/me", coretest.Bearer(f.fresh.raw), nil)
			if old.Status != 200 || old.JSON(t)["status"] != "expiring" {
				t.Errorf("the rolled key during its grace: %d %s", old.Status, old.Body)
			}
			if r := f.env.Do("GET", "/api/v2/me", coretest.Bearer(body["raw_key"].(string)), nil); r.Status != 200 {
				t.Errorf("the successor does not authenticate: %d %s", r.Status, r.Body)
			}
		}},
	{Method: "DELETE", Path: "/keys/{id}", Scope: api.ScopeKeysWrite, Status: 200, Fresh: true, Fields: []string{"revoked"},
		Check: func(t *testing.T, f *scnFixture, home, _ string, _ coretest.Response, body map[string]any) {
			if body["revoked"] != true {
				t.Errorf("revoked %v", body["revoked"])
			}
			if r := f.env.Do("GET", "/api/v2/me", coretest.Bearer(f.fresh.raw), nil); r.Status != 401 {
				t.Errorf("a revoked key still authenticates: %d %s", r.Status, r.Body)
			}
			g := f.env.Do("GET", "/api/v2/keys/"+f.fresh.id, coretest.Bearer(f.keys[home+":super"].raw), nil)
			if k := scnAssertKey(t, g.JSON(t)["key"], f.org[home]); k["status"] != "revoked" || k["revoked_at"] == nil {
				t.Errorf("after revoke: %v", k)
			}
		}},
	{Method: "GET", Path: "/keys/{id}/stats", Scope: api.ScopeKeysRead, Status: 200, ID: "read",
		Fields: []string{"key_id", "total", "last_used_at", "by_day", "by_route"},
		Check: func(t *testing.T, f *scnFixture, home, _ string, _ coretest.Response, body map[string]any) {
			if body["key_id"] != f.keys[home+":read"].id {
				t.Errorf("key_id %v", body["key_id"])
			}
			total, _ := body["total"].(float64)
			if total < 1 {
				t.Errorf("total %v: the read key made calls before", body["total"])
			}
			var sum float64
			for _, d := range body["by_day"].([]any) {
				d := d.(map[string]any)
				scnAssertFields(t, "by_day item", d, []string{"day", "count", "success", "client_error", "server_error"})
				sum += d["count"].(float64)
				if classes := d["success"].(float64) + d["client_error"].(float64) + d["server_error"].(float64); classes != d["count"].(float64) {
					t.Errorf("by_day %v: the status classes sum to %v", d["day"], classes)
				}
			}
			if sum != total {
				t.Errorf("by_day sums to %v, total is %v", sum, total)
			}
			found := false
			for _, r := range body["by_route"].([]any) {
				r := r.(map[string]any)
				scnAssertFields(t, "by_route item", r, []string{"route", "status", "count"})
				if r["route"] == "/api/v2/me" && r["status"] == 200.0 {
					found = true
				}
			}
			if !found {
				t.Errorf("by_route lacks /api/v2/me 200: %v", body["by_route"])
			}
			if body["last_used_at"] == nil {
				t.Errorf("last_used_at is null for a used key")
			}
		}},
	{Method: "POST", Path: "/keys/verify", Scope: api.ScopeKeysVerify, Body: `{"key":"{raw:H:read}"}`, Status: 200,
		Fields: []string{"valid", "code", "key_id", "org_id", "scopes", "remaining", "rate_limit"},
		Check: func(t *testing.T, f *scnFixture, home, _ string, _ coretest.Response, body map[string]any) {
			if body["valid"] != true || body["code"] != "valid" || body["key_id"] != f.keys[home+":read"].id || body["org_id"] != f.org[home] {
				t.Errorf("verify: %v", body)
			}
		}},
}

// scnMatrix expands a route into the access scenarios for home org H, with O
// the other org.
func scnMatrix(rt scnRoute, home, other string) []ApiScenario {
	id := rt.ID
	if id == "" {
		id = "target"
	}
	path := strings.ReplaceAll(api.V2Prefix+rt.Path, "{id}", "{"+home+":"+id+"}")
	okPath := path
	if rt.Fresh {
		okPath = strings.ReplaceAll(api.V2Prefix+rt.Path, "{id}", "{"+home+":fresh}")
	}
	body := strings.ReplaceAll(rt.Body, "{raw:H:", "{raw:"+home+":")
	name := func(what string) string { return fmt.Sprintf("%s %s org %s %s", rt.Method, rt.Path, home, what) }
	ok := func(auth string) ApiScenario {
		return ApiScenario{
			Name: name("as " + auth + " succeeds"), Method: rt.Method, Path: okPath, Auth: auth, Body: body,
			ExpectedStatus: rt.Status, ExpectedFields: rt.Fields,
			Check: func(t *testing.T, f *scnFixture, r coretest.Response, m map[string]any) {
				if rt.Check != nil {
					rt.Check(t, f, home, auth, r, m)
				}
			},
		}
	}
	var out []ApiScenario
	out = append(out, ApiScenario{Name: name("without credentials"), Method: rt.Method, Path: path, Body: body,
		ExpectedStatus: 401, ExpectedCode: "unauthorized"})
	if rt.Scope == "" {
		for _, k := range []string{"read", "empty", "super"} {
			out = append(out, ok(home+":"+k))
		}
		return out
	}
	out = append(out, ok(home+":"+scnScopeKey[rt.Scope]), ok(home+":super"))
	for _, k := range []string{"read", "write", "verify", "empty"} {
		if k == scnScopeKey[rt.Scope] {
			continue
		}
		out = append(out, ApiScenario{Name: name("as " + home + ":" + k + " lacks the scope"), Method: rt.Method, Path: path,
			Auth: home + ":" + k, Body: body, ExpectedStatus: 403, ExpectedCode: "insufficient_scope",
			ExpectedContent: []string{rt.Scope}})
	}
	if strings.Contains(rt.Path, "{id}") {
		for _, k := range []string{scnScopeKey[rt.Scope], "super"} {
			out = append(out, ApiScenario{Name: name("as " + other + ":" + k + " is not found"), Method: rt.Method, Path: path,
				Auth: other + ":" + k, Body: body, ExpectedStatus: 404, ExpectedCode: "not_found"})
		}
	}
	return out
}

func TestScenarios(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		f := newScnFixture(t, engine)
		// The stats scenarios need calls logged against the read keys.
		for _, o := range []string{"A", "B"} {
			for range 3 {
				if r := f.env.Do("GET", "/api/v2/me", coretest.Bearer(f.keys[o+":read"].raw), nil); r.Status != 200 {
					t.Fatalf("warm-up call: %d %s", r.Status, r.Body)
				}
			}
		}
		f.env.FlushLogs()

		var scenarios []ApiScenario
		for _, pair := range [][2]string{{"A", "B"}, {"B", "A"}} {
			for _, rt := range scnRoutes {
				scenarios = append(scenarios, scnMatrix(rt, pair[0], pair[1])...)
			}
		}
		scenarios = append(scenarios, scnExtraScenarios()...)
		for _, sc := range scenarios {
			t.Run(sc.Name, func(t *testing.T) { sc.run(t, f) })
		}
		// The self-action refusals must not have touched the keys.
		for _, k := range []string{"A:write", "A:super"} {
			r := f.env.Do("GET", "/api/v2/me", coretest.Bearer(f.keys[k].raw), nil)
			if r.Status != 200 || r.JSON(t)["status"] != "active" {
				t.Errorf("%s after refused self-actions: %d %s", k, r.Status, r.Body)
			}
		}
	})
}

// scnExtraScenarios are the sessions, self-actions, validation and
// verification cases beyond the access scnMatrix.
func scnExtraScenarios() []ApiScenario {
	errFields := []string{"error"}
	return []ApiScenario{
		// Credentials that are not a valid key.
		{Name: "malformed Authorization is 401", Method: "GET", Path: "/api/v2/me", Auth: "header:Basic dXNlcjpwYXNz",
			ExpectedStatus: 401, ExpectedCode: "unauthorized"},
		{Name: "an unknown key is 401", Method: "GET", Path: "/api/v2/keys", Auth: "header:Bearer indigo_sk_0000000000000000000000000000",
			ExpectedStatus: 401, ExpectedCode: "unauthorized"},
		{Name: "a revoked key is 401", Method: "GET", Path: "/api/v2/keys", Auth: "A:revoked",
			ExpectedStatus: 401, ExpectedCode: "unauthorized"},
		{Name: "GET /me is for keys, not sessions", Method: "GET", Path: "/api/v2/me", Auth: "A:owner",
			ExpectedStatus: 401, ExpectedCode: "unauthorized"},

		// Sessions on a state-changing route.
		{Name: "session owner with CSRF creates a key", Method: "POST", Path: "/api/v2/keys", Auth: "A:owner",
			Body: `{"name":"by owner","scopes":[]}`, ExpectedStatus: 201, ExpectedFields: []string{"key", "raw_key", "warning"},
			Check: func(t *testing.T, f *scnFixture, _ coretest.Response, m map[string]any) {
				k := scnAssertKey(t, m["key"], f.org["A"])
				if cb, _ := k["created_by"].(string); !strings.HasPrefix(cb, "user:") {
					t.Errorf("created_by %q, want user:…", cb)
				}
			}},
		{Name: "session admin with CSRF creates a key", Method: "POST", Path: "/api/v2/keys", Auth: "A:admin",
			Body: `{"name":"by admin"}`, ExpectedStatus: 201, ExpectedContent: []string{`"org_id":"{A}"`}},
		{Name: "session owner without CSRF is refused", Method: "POST", Path: "/api/v2/keys", Auth: "A:owner-nocsrf",
			Body: `{"name":"no csrf"}`, ExpectedStatus: 403, ExpectedCode: "csrf_failed", ExpectedFields: errFields},
		{Name: "session owner with a wrong CSRF token is refused", Method: "POST", Path: "/api/v2/keys", Auth: "A:owner-badcsrf",
			Body: `{"name":"bad csrf"}`, ExpectedStatus: 403, ExpectedCode: "csrf_failed"},
		{Name: "session member is refused a state change", Method: "POST", Path: "/api/v2/keys", Auth: "A:member",
			Body: `{"name":"member"}`, ExpectedStatus: 403, ExpectedCode: "forbidden"},
		{Name: "session owner with CSRF revokes", Method: "DELETE", Path: "/api/v2/keys/{A:fresh}", Auth: "A:owner",
			ExpectedStatus: 200, ExpectedContent: []string{`"revoked":true`}},
		{Name: "session owner without CSRF cannot revoke", Method: "DELETE", Path: "/api/v2/keys/{A:target}", Auth: "A:owner-nocsrf",
			ExpectedStatus: 403, ExpectedCode: "csrf_failed"},
		{Name: "session owner with CSRF patches", Method: "PATCH", Path: "/api/v2/keys/{A:target}", Auth: "A:owner",
			Body: `{"name":"patched by owner"}`, ExpectedStatus: 200, ExpectedContent: []string{`"name":"patched by owner"`}},
		{Name: "session owner without CSRF cannot patch", Method: "PATCH", Path: "/api/v2/keys/{A:target}", Auth: "A:owner-nocsrf",
			Body: `{"name":"nope"}`, ExpectedStatus: 403, ExpectedCode: "csrf_failed"},
		{Name: "session member cannot revoke", Method: "DELETE", Path: "/api/v2/keys/{A:target}", Auth: "A:member",
			ExpectedStatus: 403, ExpectedCode: "forbidden"},
		{Name: "session owner cannot act on another org's key", Method: "PATCH", Path: "/api/v2/keys/{B:target}", Auth: "A:owner",
			Body: `{"name":"cross"}`, ExpectedStatus: 404, ExpectedCode: "not_found"},

		// Sessions on read routes: no CSRF needed, members refused.
		{Name: "session owner lists keys (no CSRF needed)", Method: "GET", Path: "/api/v2/keys", Auth: "A:owner-nocsrf",
			ExpectedStatus: 200, ExpectedFields: []string{"keys", "next_cursor"},
			Check: func(t *testing.T, f *scnFixture, _ coretest.Response, m map[string]any) {
				for _, k := range scnKeyList(t, m) {
					scnAssertKey(t, k, f.org["A"])
				}
			}},
		{Name: "session owner reads a key", Method: "GET", Path: "/api/v2/keys/{A:target}", Auth: "A:owner-nocsrf",
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{A:target}"`}},
		{Name: "session member cannot list keys", Method: "GET", Path: "/api/v2/keys", Auth: "A:member",
			ExpectedStatus: 403, ExpectedCode: "forbidden"},
		{Name: "session member cannot read stats", Method: "GET", Path: "/api/v2/keys/{A:read}/stats", Auth: "A:member",
			ExpectedStatus: 403, ExpectedCode: "forbidden"},
		{Name: "session owner reads another org's key: not found", Method: "GET", Path: "/api/v2/keys/{B:target}", Auth: "A:owner",
			ExpectedStatus: 404, ExpectedCode: "not_found"},
		{Name: "session owner verifies a key of the org", Method: "POST", Path: "/api/v2/keys/verify", Auth: "A:owner",
			Body: `{"key":"{raw:A:read}"}`, ExpectedStatus: 200, ExpectedContent: []string{`"valid":true`, `"org_id":"{A}"`}},

		// A key cannot revoke, roll or disable itself.
		{Name: "a key cannot revoke itself", Method: "DELETE", Path: "/api/v2/keys/{A:write}", Auth: "A:write",
			ExpectedStatus: 409, ExpectedCode: "self_action"},
		{Name: "a key cannot roll itself", Method: "POST", Path: "/api/v2/keys/{A:write}/roll", Auth: "A:write",
			Body: `{"grace_seconds":0}`, ExpectedStatus: 409, ExpectedCode: "self_action"},
		{Name: "a key cannot disable itself", Method: "PATCH", Path: "/api/v2/keys/{A:write}", Auth: "A:write",
			Body: `{"enabled":false}`, ExpectedStatus: 409, ExpectedCode: "self_action"},
		{Name: "a superkey cannot revoke itself", Method: "DELETE", Path: "/api/v2/keys/{A:super}", Auth: "A:super",
			ExpectedStatus: 409, ExpectedCode: "self_action"},
		{Name: "a superkey cannot roll itself", Method: "POST", Path: "/api/v2/keys/{A:super}/roll", Auth: "A:super",
			ExpectedStatus: 409, ExpectedCode: "self_action"},
		{Name: "a superkey cannot disable itself", Method: "PATCH", Path: "/api/v2/keys/{A:super}", Auth: "A:super",
			Body: `{"enabled":false}`, ExpectedStatus: 409, ExpectedCode: "self_action"},
		{Name: "a key may rename itself", Method: "PATCH", Path: "/api/v2/keys/{A:write}", Auth: "A:write",
			Body: `{"name":"self renamed"}`, ExpectedStatus: 200, ExpectedContent: []string{`"name":"self renamed"`}},
		{Name: "a key may disable another key", Method: "PATCH", Path: "/api/v2/keys/{A:fresh}", Auth: "A:write",
			Body: `{"enabled":false}`, ExpectedStatus: 200, ExpectedContent: []string{`"enabled":false`},
			Check: func(t *testing.T, f *scnFixture, _ coretest.Response, _ map[string]any) {
				if r := f.env.Do("GET", "/api/v2/me", coretest.Bearer(f.fresh.raw), nil); r.Status != 401 {
					t.Errorf("a disabled key still authenticates: %d %s", r.Status, r.Body)
				}
			}},

		// Create validation.
		{Name: "create with an unknown field is 400", Method: "POST", Path: "/api/v2/keys", Auth: "A:write",
			Body: `{"name":"x","colour":"blue"}`, ExpectedStatus: 400, ExpectedCode: "bad_request", ExpectedContent: []string{"colour"}},
		{Name: "create with both expiries is 400", Method: "POST", Path: "/api/v2/keys", Auth: "A:write",
			Body: `{"name":"x","expires_at":"2030-01-01T00:00:00Z","expires_in_seconds":60}`, ExpectedStatus: 400, ExpectedCode: "bad_request"},
		{Name: "create with an unknown scope is 422", Method: "POST", Path: "/api/v2/keys", Auth: "A:write",
			Body: `{"name":"x","scopes":["api-keys:read","nope:nope"]}`, ExpectedStatus: 422, ExpectedCode: "unknown_scope",
			ExpectedContent: []string{"nope:nope"}},
		{Name: "create with malformed JSON is 400", Method: "POST", Path: "/api/v2/keys", Auth: "A:write",
			Body: `{"name":`, ExpectedStatus: 400, ExpectedCode: "bad_request"},
		{Name: "create without a body is 400", Method: "POST", Path: "/api/v2/keys", Auth: "A:write",
			ExpectedStatus: 400, ExpectedCode: "bad_request"},
		{Name: "create without a name is 422", Method: "POST", Path: "/api/v2/keys", Auth: "A:write",
			Body: `{"scopes":[]}`, ExpectedStatus: 422, ExpectedCode: "invalid_name"},
		{Name: "create a superkey (scopes null)", Method: "POST", Path: "/api/v2/keys", Auth: "A:write",
			Body: `{"name":"super","scopes":null}`, ExpectedStatus: 201, ExpectedContent: []string{`"scopes":null`}},
		{Name: "create with expires_in_seconds", Method: "POST", Path: "/api/v2/keys", Auth: "A:write",
			Body:           `{"name":"soon","expires_in_seconds":3600,"rate_limit":{"limit":10,"window_seconds":60},"remaining":5,"metadata":{"a":1}}`,
			ExpectedStatus: 201,
			ExpectedContent: []string{`"expires_at":"2026-03-01T13:00:00.000Z"`, `"rate_limit":{"limit":10,"window_seconds":60}`,
				`"remaining":5`, `"metadata":{"a":1}`}},
		{Name: "B's key creates in org B", Method: "POST", Path: "/api/v2/keys", Auth: "B:write",
			Body: `{"name":"b"}`, ExpectedStatus: 201, ExpectedContent: []string{`"org_id":"{B}"`}, NotExpectedContent: []string{"{A}"}},

		// Other validation.
		{Name: "get an unknown key id is 404", Method: "GET", Path: "/api/v2/keys/key_00000000000000000000000000", Auth: "A:read",
			ExpectedStatus: 404, ExpectedCode: "not_found"},
		{Name: "patch with an unknown field is 400", Method: "PATCH", Path: "/api/v2/keys/{A:target}", Auth: "A:write",
			Body: `{"colour":"blue"}`, ExpectedStatus: 400, ExpectedCode: "bad_request"},
		{Name: "patch a revoked key is 409", Method: "PATCH", Path: "/api/v2/keys/{A:revoked}", Auth: "A:write",
			Body: `{"name":"again"}`, ExpectedStatus: 409, ExpectedCode: "key_revoked"},
		{Name: "put scopes without scopes is 400", Method: "PUT", Path: "/api/v2/keys/{A:target}/scopes", Auth: "A:write",
			Body: `{}`, ExpectedStatus: 400, ExpectedCode: "bad_request"},
		{Name: "put an unknown scope is 422", Method: "PUT", Path: "/api/v2/keys/{A:target}/scopes", Auth: "A:write",
			Body: `{"scopes":["nope:nope"]}`, ExpectedStatus: 422, ExpectedCode: "unknown_scope"},
		{Name: "put scopes null makes a superkey", Method: "PUT", Path: "/api/v2/keys/{A:fresh}/scopes", Auth: "A:write",
			Body: `{"scopes":null}`, ExpectedStatus: 200, ExpectedContent: []string{`"scopes":null`}},
		{Name: "roll with a negative grace is 422", Method: "POST", Path: "/api/v2/keys/{A:fresh}/roll", Auth: "A:write",
			Body: `{"grace_seconds":-1}`, ExpectedStatus: 422, ExpectedCode: "invalid_grace"},
		{Name: "roll without a body uses the default grace", Method: "POST", Path: "/api/v2/keys/{A:fresh}/roll", Auth: "A:write",
			ExpectedStatus: 201, ExpectedContent: []string{`"previous":{`, `"expires_at":"2026-03-02T12:00:00.000Z"`}},
		{Name: "roll a revoked key is 409", Method: "POST", Path: "/api/v2/keys/{A:revoked}/roll", Auth: "A:write",
			ExpectedStatus: 409, ExpectedCode: "key_revoked"},
		{Name: "list with limit=0 is 400", Method: "GET", Path: "/api/v2/keys?limit=0", Auth: "A:read",
			ExpectedStatus: 400, ExpectedCode: "bad_request"},
		{Name: "list with a bad cursor is 400", Method: "GET", Path: "/api/v2/keys?cursor=%21%21", Auth: "A:read",
			ExpectedStatus: 400, ExpectedCode: "invalid_cursor"},
		{Name: "list pages with limit=1", Method: "GET", Path: "/api/v2/keys?limit=1", Auth: "A:read",
			ExpectedStatus: 200, ExpectedFields: []string{"keys", "next_cursor"},
			Check: func(t *testing.T, f *scnFixture, _ coretest.Response, m map[string]any) {
				first := scnKeyList(t, m)
				cur, _ := m["next_cursor"].(string)
				if len(first) != 1 || cur == "" {
					t.Fatalf("limit=1: %d keys, next_cursor %v", len(first), m["next_cursor"])
				}
				r := f.env.Do("GET", "/api/v2/keys?limit=1&cursor="+url.QueryEscape(cur), coretest.Bearer(f.keys["A:read"].raw), nil)
				if r.Status != 200 {
					t.Fatalf("page 2: %d %s", r.Status, r.Body)
				}
				second := scnKeyList(t, r.JSON(t))
				if len(second) != 1 || second[0]["id"] == first[0]["id"] {
					t.Errorf("page 2 %v repeats page 1 %v", second, first)
				}
				scnAssertKey(t, second[0], f.org["A"])
			}},
		{Name: "unknown route is a 404 error", Method: "GET", Path: "/api/v2/nope", Auth: "A:super",
			ExpectedStatus: 404, ExpectedCode: "not_found", Unrouted: true},
		{Name: "wrong method is a 405 error", Method: "PUT", Path: "/api/v2/keys", Auth: "A:super",
			ExpectedStatus: 405, ExpectedCode: "method_not_allowed", Unrouted: true},

		// Verification.
		{Name: "verify another org's key is not_found", Method: "POST", Path: "/api/v2/keys/verify", Auth: "A:verify",
			Body: `{"key":"{raw:B:read}"}`, ExpectedStatus: 200,
			ExpectedFields:     []string{"valid", "code", "key_id", "org_id", "scopes", "remaining", "rate_limit"},
			ExpectedContent:    []string{`"valid":false`, `"code":"not_found"`, `"key_id":null`, `"org_id":null`},
			NotExpectedContent: []string{"{B}", "{B:read}"}},
		{Name: "verify another org's superkey with a superkey is not_found", Method: "POST", Path: "/api/v2/keys/verify", Auth: "B:super",
			Body: `{"key":"{raw:A:super}"}`, ExpectedStatus: 200,
			ExpectedContent: []string{`"valid":false`, `"code":"not_found"`}, NotExpectedContent: []string{"{A}"}},
		{Name: "verify an unknown key is not_found", Method: "POST", Path: "/api/v2/keys/verify", Auth: "A:verify",
			Body: `{"key":"indigo_sk_garbage"}`, ExpectedStatus: 200, ExpectedContent: []string{`"valid":false`, `"code":"not_found"`}},
		{Name: "verify a revoked key", Method: "POST", Path: "/api/v2/keys/verify", Auth: "A:verify",
			Body: `{"key":"{raw:A:revoked}"}`, ExpectedStatus: 200,
			ExpectedContent: []string{`"valid":false`, `"code":"revoked"`, `"key_id":"{A:revoked}"`}},
		{Name: "verify with scopes the key lacks", Method: "POST", Path: "/api/v2/keys/verify", Auth: "A:verify",
			Body: `{"key":"{raw:A:read}","scopes":["api-keys:write"]}`, ExpectedStatus: 200,
			ExpectedContent: []string{`"valid":false`, `"code":"insufficient_scope"`}},
		{Name: "verify with scopes the key holds", Method: "POST", Path: "/api/v2/keys/verify", Auth: "A:verify",
			Body: `{"key":"{raw:A:read}","scopes":["api-keys:read"]}`, ExpectedStatus: 200,
			ExpectedContent: []string{`"valid":true`, `"code":"valid"`, `"scopes":["api-keys:read"]`}},
		{Name: "verify a superkey reports null scopes", Method: "POST", Path: "/api/v2/keys/verify", Auth: "A:verify",
			Body: `{"key":"{raw:A:super}","scopes":["api-keys:write"]}`, ExpectedStatus: 200,
			ExpectedContent: []string{`"valid":true`, `"scopes":null`}},
		{Name: "verify without a key is 400", Method: "POST", Path: "/api/v2/keys/verify", Auth: "A:verify",
			Body: `{}`, ExpectedStatus: 400, ExpectedCode: "bad_request"},
		{Name: "verify with an unknown field is 400", Method: "POST", Path: "/api/v2/keys/verify", Auth: "A:verify",
			Body: `{"key":"x","extra":1}`, ExpectedStatus: 400, ExpectedCode: "bad_request"},
	}
}

// TestNoPolicyRouteIsDenied mounts a route with neither scopes nor AnyKey:
// every caller, a superkey included, is refused and the handler never runs.
func TestNoPolicyRouteIsDenied(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		env := coretest.New(t, engine)
		org := env.Org("acme")
		_, super := env.Superkey(org)
		var called atomic.Int32
		env.Host.API.HandleV2(api.Route{Method: "GET", Path: "/test/nopolicy", Session: true}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			called.Add(1)
			w.WriteHeader(http.StatusTeapot)
		}))
		cookie, csrf := env.Session(org, "owner@example.com", "owner", true)
		for _, c := range []struct {
			name   string
			auth   string
			header []string
		}{
			{"superkey", coretest.Bearer(super), nil},
			{"owner session", "", []string{"Cookie", cookie, "X-CSRF-Token", csrf}},
			{"nobody", "", nil},
		} {
			r := env.Do("GET", "/api/v2/test/nopolicy", c.auth, nil, c.header...)
			if r.Status != http.StatusForbidden || r.ErrorCode() != "no_policy" {
				t.Errorf("%s: %d %s, want 403 no_policy", c.name, r.Status, r.Body)
			}
			if r.Status >= 400 {
				scnAssertError(t, r, r.JSON(t))
			}
		}
		if n := called.Load(); n != 0 {
			t.Errorf("the handler of a route without a policy ran %d times", n)
		}
		// The route is mounted (it is listed), and only its policy refuses.
		found := false
		for _, rt := range env.Host.API.Routes() {
			found = found || rt.Path == "/test/nopolicy"
		}
		if !found {
			t.Errorf("Routes() does not list the mounted route")
		}
	})
}

// TestListKeysLimits checks ?limit=: 50 by default, at most 200, and that
// paging visits every key once.
func TestListKeysLimits(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		env := coretest.New(t, engine)
		org := env.Org("many")
		_, raw := env.Scoped(org, api.ScopeKeysRead)
		for range 210 {
			env.Scoped(org)
		}
		const total = 211
		auth := coretest.Bearer(raw)
		get := func(q string) ([]map[string]any, any) {
			t.Helper()
			r := env.Do("GET", "/api/v2/keys"+q, auth, nil)
			if r.Status != 200 {
				t.Fatalf("GET /keys%s: %d %s", q, r.Status, r.Body)
			}
			m := r.JSON(t)
			return scnKeyList(t, m), m["next_cursor"]
		}
		if keys, next := get(""); len(keys) != 50 || next == nil {
			t.Errorf("default page: %d keys, next_cursor %v; want 50 and a cursor", len(keys), next)
		}
		if keys, next := get("?limit=200"); len(keys) != 200 || next == nil {
			t.Errorf("limit=200: %d keys, next_cursor %v", len(keys), next)
		}
		if keys, _ := get("?limit=500"); len(keys) != 200 {
			t.Errorf("limit=500: %d keys, want the maximum 200", len(keys))
		}
		seen := map[string]bool{}
		q := "?limit=70"
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			keys, next := get(q)
			for _, k := range keys {
				id := k["id"].(string)
				if seen[id] {
					t.Errorf("key %s on two pages", id)
				}
				seen[id] = true
			}
			if next == nil {
				break
			}
			q = "?limit=70&cursor=" + url.QueryEscape(next.(string))
		}
		if len(seen) != total {
			t.Errorf("paging visited %d keys, want %d", len(seen), total)
		}
	})
}

// TestAdminScenarios covers the operator views: who may read them, that
// each filter filters, and that they page.
func TestAdminScenarios(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		f := newScnFixture(t, engine)
		opCookie, _ := f.env.Session(f.org["A"], "operator@example.com", "owner", true)
		plainCookie, _ := f.env.Session(f.org["A"], "plain@example.com", "owner", false)
		// Traffic: successes, refusals, a revocation by key.
		revokedByKey := map[string]string{}
		for _, o := range []string{"A", "B"} {
			for _, c := range []struct {
				method, path, key string
				status            int
			}{
				{"GET", "/api/v2/me", "read", 200},
				{"GET", "/api/v2/keys", "read", 200},
				{"GET", "/api/v2/keys", "empty", 403},
				{"DELETE", "/api/v2/keys/" + f.resolve(t, "{"+o+":fresh}", true), "write", 200},
			} {
				if r := f.env.Do(c.method, c.path, coretest.Bearer(f.keys[o+":"+c.key].raw), nil); r.Status != c.status {
					t.Fatalf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
				}
			}
			revokedByKey[o] = f.fresh.id
		}
		// A key whose expiry passes on the clock, before the maintenance
		// task (hourly) has marked it: its status is already "expired".
		// The task runs once at start; wait for that run so that it cannot
		// mark the key in the middle of the scenarios.
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(f.env.Logs.String(), "task=expire-keys") && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		exp := f.env.Clock.Now().Add(time.Second)
		lapsed, _ := f.env.Key(f.org["B"], apikey.CreateInput{Name: "lapsed", Scopes: []string{}, ExpiresAt: &exp})
		f.env.Clock.Advance(2 * time.Second)
		// A call the dashboard makes: a signed-in owner, no key.
		if r := f.env.Do("GET", "/api/v2/keys", "", nil, "Cookie", f.sess["B:owner"].cookie); r.Status != 200 {
			t.Fatalf("a session call: %d %s", r.Status, r.Body)
		}
		f.env.FlushLogs()

		op := []string{"Cookie", opCookie}
		type adminScenario struct {
			Name           string
			Path           string
			Header         []string
			Auth           string
			ExpectedStatus int
			ExpectedCode   string
			Field          string // the list field
			Check          func(t *testing.T, items []map[string]any, next any)
		}
		all := func(field string, want any) func(t *testing.T, items []map[string]any, _ any) {
			return func(t *testing.T, items []map[string]any, _ any) {
				t.Helper()
				if len(items) == 0 {
					t.Fatalf("filter %s=%v matched nothing", field, want)
				}
				for _, it := range items {
					if it[field] != want {
						t.Errorf("filter %s=%v returned item %v with %s=%v", field, want, it["id"], field, it[field])
					}
				}
			}
		}
		none := func(t *testing.T, items []map[string]any, _ any) {
			t.Helper()
			if len(items) != 0 {
				t.Errorf("want no items, got %d", len(items))
			}
		}
		some := func(t *testing.T, items []map[string]any, _ any) {
			t.Helper()
			if len(items) == 0 {
				t.Errorf("want items, got none")
			}
		}
		orgA, orgB := f.org["A"], f.org["B"]
		readA := f.keys["A:read"].id
		past, future := "2026-03-01T11:00:00Z", "2026-03-01T13:00:00Z"
		scenarios := []adminScenario{}
		for _, p := range []struct{ path, field, keyField string }{
			{"/api/admin/keys", "keys", "id"}, {"/api/admin/logs", "logs", "key_id"}, {"/api/admin/audit", "audit", "key_id"},
		} {
			scenarios = append(scenarios,
				adminScenario{Name: p.path + " without a session", Path: p.path, ExpectedStatus: 401, ExpectedCode: "unauthorized"},
				// A key is never an operator: one that verifies is known
				// and refused (403), one that does not is a 401.
				adminScenario{Name: p.path + " with a superkey", Path: p.path, Auth: coretest.Bearer(f.keys["A:super"].raw), ExpectedStatus: 403, ExpectedCode: "not_operator"},
				adminScenario{Name: p.path + " with a revoked key", Path: p.path, Auth: coretest.Bearer(f.keys["A:revoked"].raw), ExpectedStatus: 401, ExpectedCode: "unauthorized"},
				adminScenario{Name: p.path + " with a superkey and an operator's session", Path: p.path, Auth: coretest.Bearer(f.keys["A:super"].raw), Header: op, ExpectedStatus: 403, ExpectedCode: "not_operator"},
				adminScenario{Name: p.path + " as a non-operator owner", Path: p.path, Header: []string{"Cookie", plainCookie}, ExpectedStatus: 403, ExpectedCode: "not_operator"},
				adminScenario{Name: p.path + " as a member", Path: p.path, Header: []string{"Cookie", f.sess["B:member"].cookie}, ExpectedStatus: 403, ExpectedCode: "not_operator"},
				adminScenario{Name: p.path + " as operator", Path: p.path, Header: op, ExpectedStatus: 200, Field: p.field, Check: func(t *testing.T, items []map[string]any, _ any) {
					orgs := map[any]bool{}
					for _, it := range items {
						orgs[it["org_id"]] = true
					}
					if !orgs[orgA] || !orgs[orgB] {
						t.Errorf("the operator should see both orgs, saw %v", orgs)
					}
				}},
				adminScenario{Name: p.path + " org_id filter", Path: p.path + "?org_id=" + orgB, Header: op, ExpectedStatus: 200, Field: p.field, Check: all("org_id", orgB)},
				adminScenario{Name: p.path + " key_id filter", Path: p.path + "?key_id=" + readA, Header: op, ExpectedStatus: 200, Field: p.field, Check: all(p.keyField, readA)},
				adminScenario{Name: p.path + " bad limit", Path: p.path + "?limit=x", Header: op, ExpectedStatus: 400, ExpectedCode: "bad_request"},
				adminScenario{Name: p.path + " bad since", Path: p.path + "?since=yesterday", Header: op, ExpectedStatus: 400, ExpectedCode: "bad_request"},
				adminScenario{Name: p.path + " pages with limit=1", Path: p.path + "?limit=1", Header: op, ExpectedStatus: 200, Field: p.field,
					Check: func(t *testing.T, items []map[string]any, next any) {
						cur, _ := next.(string)
						if len(items) != 1 || cur == "" {
							t.Fatalf("limit=1: %d items, next_cursor %v", len(items), next)
						}
						r := f.env.Do("GET", p.path+"?limit=1&cursor="+url.QueryEscape(cur), "", nil, op...)
						if r.Status != 200 {
							t.Fatalf("page 2: %d %s", r.Status, r.Body)
						}
						arr, _ := r.JSON(t)[p.field].([]any)
						if len(arr) != 1 || arr[0].(map[string]any)["id"] == items[0]["id"] {
							t.Errorf("page 2 %v repeats page 1 %v", arr, items)
						}
					}},
			)
		}
		scenarios = append(scenarios,
			// keys
			adminScenario{Name: "keys key_id filter finds exactly one", Path: "/api/admin/keys?key_id=" + readA, Header: op, ExpectedStatus: 200, Field: "keys",
				Check: func(t *testing.T, items []map[string]any, _ any) {
					if len(items) != 1 {
						t.Errorf("%d keys", len(items))
					}
				}},
			adminScenario{Name: "keys status=revoked", Path: "/api/admin/keys?status=revoked", Header: op, ExpectedStatus: 200, Field: "keys", Check: all("status", "revoked")},
			adminScenario{Name: "keys status=active", Path: "/api/admin/keys?status=active", Header: op, ExpectedStatus: 200, Field: "keys",
				Check: func(t *testing.T, items []map[string]any, next any) {
					all("status", "active")(t, items, next)
					for _, it := range items {
						if it["id"] == lapsed.ID {
							t.Errorf("status=active lists key %s, whose expires_at has passed (its status field says %v): the filter must use the effective status", lapsed.ID, it["status"])
						}
					}
				}},
			adminScenario{Name: "keys org_id and status", Path: "/api/admin/keys?status=revoked&org_id=" + orgA, Header: op, ExpectedStatus: 200, Field: "keys",
				Check: func(t *testing.T, items []map[string]any, next any) {
					all("status", "revoked")(t, items, next)
					all("org_id", orgA)(t, items, next)
				}},
			// The document declares since and until for the key view too
			// (created_at, as for logs and audit rows): a window that holds
			// no key creation must list no key.
			adminScenario{Name: "keys since the future", Path: "/api/admin/keys?since=" + future, Header: op, ExpectedStatus: 200, Field: "keys",
				Check: func(t *testing.T, items []map[string]any, _ any) {
					if len(items) != 0 {
						t.Errorf("since=%s listed %d keys, all created at %s: the since filter is ignored by GET /api/admin/keys", future, len(items), items[0]["created_at"])
					}
				}},
			adminScenario{Name: "keys until the past", Path: "/api/admin/keys?until=" + past, Header: op, ExpectedStatus: 200, Field: "keys",
				Check: func(t *testing.T, items []map[string]any, _ any) {
					if len(items) != 0 {
						t.Errorf("until=%s listed %d keys, all created at %s: the until filter is ignored by GET /api/admin/keys", past, len(items), items[0]["created_at"])
					}
				}},
			adminScenario{Name: "keys status=expired lists a key past its expiry", Path: "/api/admin/keys?status=expired", Header: op, ExpectedStatus: 200, Field: "keys",
				Check: func(t *testing.T, items []map[string]any, next any) {
					found := false
					for _, it := range items {
						found = found || it["id"] == lapsed.ID
					}
					if !found {
						t.Errorf("status=expired does not list key %s, whose status is expired (its expires_at has passed; only the maintenance task has not run)", lapsed.ID)
					}
					if len(items) > 0 {
						all("status", "expired")(t, items, next)
					}
				}},
			adminScenario{Name: "keys bad status", Path: "/api/admin/keys?status=sleeping", Header: op, ExpectedStatus: 400, ExpectedCode: "bad_request"},
			// logs
			adminScenario{Name: "logs route filter", Path: "/api/admin/logs?route=/api/v2/me", Header: op, ExpectedStatus: 200, Field: "logs", Check: all("route", "/api/v2/me")},
			adminScenario{Name: "logs status filter", Path: "/api/admin/logs?status=403", Header: op, ExpectedStatus: 200, Field: "logs", Check: all("status", 403.0)},
			adminScenario{Name: "logs route and key", Path: "/api/admin/logs?route=/api/v2/keys&key_id=" + readA, Header: op, ExpectedStatus: 200, Field: "logs",
				Check: func(t *testing.T, items []map[string]any, next any) {
					all("route", "/api/v2/keys")(t, items, next)
					all("key_id", readA)(t, items, next)
					all("status", 200.0)(t, items, next)
				}},
			adminScenario{Name: "logs since the future", Path: "/api/admin/logs?since=" + future, Header: op, ExpectedStatus: 200, Field: "logs", Check: none},
			adminScenario{Name: "logs until the past", Path: "/api/admin/logs?until=" + past, Header: op, ExpectedStatus: 200, Field: "logs", Check: none},
			adminScenario{Name: "logs between", Path: "/api/admin/logs?since=" + past + "&until=" + future, Header: op, ExpectedStatus: 200, Field: "logs", Check: some},
			adminScenario{Name: "logs bad status", Path: "/api/admin/logs?status=abc", Header: op, ExpectedStatus: 400, ExpectedCode: "bad_request"},
			// The dashboard's own calls are signed-in sessions, without a key.
			adminScenario{Name: "logs of API keys only", Path: "/api/admin/logs?caller=key&limit=200", Header: op, ExpectedStatus: 200, Field: "logs",
				Check: func(t *testing.T, items []map[string]any, next any) {
					all("caller", "key")(t, items, next)
					for _, it := range items {
						if it["key_id"] == "" {
							t.Errorf("caller=key listed %v without a key", it["id"])
						}
					}
				}},
			adminScenario{Name: "logs of sessions only", Path: "/api/admin/logs?caller=session&limit=200", Header: op, ExpectedStatus: 200, Field: "logs",
				Check: func(t *testing.T, items []map[string]any, next any) {
					all("caller", "session")(t, items, next)
					all("key_id", "")(t, items, next)
				}},
			adminScenario{Name: "logs bad caller", Path: "/api/admin/logs?caller=robot", Header: op, ExpectedStatus: 400, ExpectedCode: "bad_request"},
			// audit
			adminScenario{Name: "audit action filter", Path: "/api/admin/audit?action=key.revoke", Header: op, ExpectedStatus: 200, Field: "audit",
				Check: func(t *testing.T, items []map[string]any, next any) {
					all("action", "key.revoke")(t, items, next)
					orgs := map[any]bool{}
					for _, it := range items {
						orgs[it["org_id"]] = true
					}
					if !orgs[orgA] || !orgs[orgB] {
						t.Errorf("revocations of both orgs expected, saw %v", orgs)
					}
				}},
			adminScenario{Name: "audit action and org", Path: "/api/admin/audit?action=key.create&org_id=" + orgA, Header: op, ExpectedStatus: 200, Field: "audit",
				Check: func(t *testing.T, items []map[string]any, next any) {
					all("action", "key.create")(t, items, next)
					all("org_id", orgA)(t, items, next)
				}},
			adminScenario{Name: "audit names the key that revoked", Path: "/api/admin/audit?action=key.revoke&key_id=" + revokedByKey["B"], Header: op, ExpectedStatus: 200, Field: "audit",
				Check: func(t *testing.T, items []map[string]any, next any) {
					if len(items) != 1 {
						t.Errorf("%d audit rows for one revocation", len(items))
					}
					all("actor", "key:"+f.keys["B:write"].id)(t, items, next)
					all("org_id", orgB)(t, items, next)
					all("source_ip", "127.0.0.1")(t, items, next)
				}},
			adminScenario{Name: "audit since the future", Path: "/api/admin/audit?since=" + future, Header: op, ExpectedStatus: 200, Field: "audit", Check: none},
			adminScenario{Name: "audit until the past", Path: "/api/admin/audit?until=" + past, Header: op, ExpectedStatus: 200, Field: "audit", Check: none},
			adminScenario{Name: "admin views are read-only", Path: "/api/admin/keys", Header: op, ExpectedStatus: 405, ExpectedCode: "method_not_allowed"},
		)
		fields := map[string][]string{
			"logs":  {"id", "request_id", "org_id", "key_id", "caller", "method", "route", "status", "latency_ms", "time"},
			"audit": {"id", "org_id", "actor", "key_id", "action", "source_ip", "details", "time"},
		}
		for _, sc := range scenarios {
			t.Run(sc.Name, func(t *testing.T) {
				method := "GET"
				if sc.ExpectedStatus == 405 {
					method = "DELETE"
				}
				r := f.env.Do(method, sc.Path, sc.Auth, nil, sc.Header...)
				if r.Status != sc.ExpectedStatus {
					t.Fatalf("%s %s: %d %s, want %d", method, sc.Path, r.Status, r.Body, sc.ExpectedStatus)
				}
				m := r.JSON(t)
				if r.Status >= 400 {
					scnAssertError(t, r, m)
					if r.ErrorCode() != sc.ExpectedCode {
						t.Errorf("error.code %q, want %q", r.ErrorCode(), sc.ExpectedCode)
					}
					return
				}
				scnAssertFields(t, "response", m, []string{sc.Field, "next_cursor"})
				arr, ok := m[sc.Field].([]any)
				if !ok {
					t.Fatalf("%s is not an array: %s", sc.Field, r.Body)
				}
				items := make([]map[string]any, len(arr))
				for i, v := range arr {
					items[i] = v.(map[string]any)
					if sc.Field == "keys" {
						scnAssertKey(t, items[i], items[i]["org_id"].(string))
					} else {
						scnAssertFields(t, sc.Field+" item", items[i], fields[sc.Field])
					}
				}
				if sc.Check != nil {
					sc.Check(t, items, m["next_cursor"])
				}
			})
		}
	})
}
