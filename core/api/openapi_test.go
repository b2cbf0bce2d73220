package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/coretest"
)

// oaURL is where the served document is registered with the compiler.
const oaURL = "https://indigo.test/api/openapi.json"

// oaDoc is the document the running host serves, with a schema compiler
// that holds it as a resource.
type oaDoc struct {
	doc      map[string]any
	c        *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
}

func oaLoad(t *testing.T, env *coretest.Env) *oaDoc {
	t.Helper()
	r := env.Do("GET", "/api/openapi.json", "", nil)
	if r.Status != 200 {
		t.Fatalf("GET /api/openapi.json: %d %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("the document is not an object")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020) // OpenAPI 3.1 schemas are JSON Schema 2020-12
	c.AssertFormat()
	if err := c.AddResource(oaURL, v); err != nil {
		t.Fatalf("add the document as a schema resource: %v", err)
	}
	return &oaDoc{doc: doc, c: c, compiled: map[string]*jsonschema.Schema{}}
}

func oaObj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// operation is paths[path][method], or nil.
func (d *oaDoc) operation(path, method string) map[string]any {
	return oaObj(oaObj(oaObj(d.doc["paths"])[path])[strings.ToLower(method)])
}

// compileRef compiles the schema a $ref names.
func (d *oaDoc) compileRef(t *testing.T, ref string) *jsonschema.Schema {
	t.Helper()
	if s, ok := d.compiled[ref]; ok {
		return s
	}
	s, err := d.c.Compile(oaURL + ref)
	if err != nil {
		t.Fatalf("compile %s: %v", ref, err)
	}
	d.compiled[ref] = s
	return s
}

// schemaOf follows content → application/json → schema → $ref.
func (d *oaDoc) schemaOf(t *testing.T, where string, holder map[string]any) (*jsonschema.Schema, string) {
	t.Helper()
	sch := oaObj(oaObj(oaObj(holder["content"])["application/json"])["schema"])
	ref, _ := sch["$ref"].(string)
	if !strings.HasPrefix(ref, "#/components/schemas/") {
		t.Fatalf("%s: no application/json schema $ref into components (got %v)", where, sch)
	}
	return d.compileRef(t, ref), ref
}

// responseSchema is the schema the document names for this operation and
// status; a status the document does not declare fails the test.
func (d *oaDoc) responseSchema(t *testing.T, path, method string, status int) (*jsonschema.Schema, string) {
	t.Helper()
	op := d.operation(path, method)
	if op == nil {
		t.Fatalf("the document has no operation %s %s", method, path)
	}
	resp := oaObj(oaObj(op["responses"])[strconv.Itoa(status)])
	if resp == nil {
		t.Fatalf("%s %s: the document declares no %d response", method, path, status)
	}
	return d.schemaOf(t, fmt.Sprintf("%s %s %d", method, path, status), resp)
}

// requestSchema is the schema of the operation's request body.
func (d *oaDoc) requestSchema(t *testing.T, path, method string) (*jsonschema.Schema, string) {
	t.Helper()
	rb := oaObj(d.operation(path, method)["requestBody"])
	if rb == nil {
		t.Fatalf("%s %s: the document declares no request body", method, path)
	}
	return d.schemaOf(t, method+" "+path+" request", rb)
}

func oaParse(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return v
}

// oaCaller makes requests and validates them against the document.
type oaCaller struct {
	env *coretest.Env
	doc *oaDoc
	// seen records operation+status pairs validated, for the coverage check.
	seen map[string]bool
}

// call sends the request to path (a concrete path of the template tmpl),
// expects status, and validates the response body against the schema the
// document names for tmpl, method and status. A successful request body is
// also validated against the documented request schema.
func (c *oaCaller) call(t *testing.T, method, tmpl, path, auth string, body any, status int, header ...string) (coretest.Response, any) {
	t.Helper()
	r := c.env.Do(method, path, auth, body, header...)
	if r.Status != status {
		t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Body, status)
	}
	sch, ref := c.doc.responseSchema(t, tmpl, method, r.Status)
	v := oaParse(t, r.Body)
	if err := sch.Validate(v); err != nil {
		t.Errorf("%s %s %d does not match %s:\n%v\nbody: %s", method, path, r.Status, ref, err, r.Body)
	}
	if body != nil && r.Status < 300 {
		var raw []byte
		if s, ok := body.(string); ok {
			raw = []byte(s)
		} else {
			raw, _ = json.Marshal(body)
		}
		rs, rref := c.doc.requestSchema(t, tmpl, method)
		if err := rs.Validate(oaParse(t, raw)); err != nil {
			t.Errorf("the accepted request body of %s %s does not match %s:\n%v\nbody: %s", method, tmpl, rref, err, raw)
		}
	}
	c.seen[method+" "+tmpl+" "+strconv.Itoa(r.Status)] = true
	return r, v
}

// oaMutate returns a deep copy of v with fn applied at the object that
// path leads to ("0" steps into an array).
func oaMutate(t *testing.T, v any, fn func(m map[string]any), path ...string) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	cp := oaParse(t, b)
	cur := cp
	for _, p := range path {
		switch x := cur.(type) {
		case map[string]any:
			cur = x[p]
		case []any:
			i, _ := strconv.Atoi(p)
			if i >= len(x) {
				t.Fatalf("mutate: no element %s in %v", p, path)
			}
			cur = x[i]
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		t.Fatalf("mutate: %v is not an object", path)
	}
	fn(m)
	return cp
}

var oaPathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

func TestOpenAPI(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		env := coretest.New(t, engine)
		d := oaLoad(t, env)
		t.Run("document", func(t *testing.T) { oaCheckDocument(t, env, d) })
		t.Run("schemas", func(t *testing.T) { oaCheckSchemas(t, d) })
		t.Run("responses", func(t *testing.T) { oaCheckResponses(t, env, d) })
	})
}

func oaCheckDocument(t *testing.T, env *coretest.Env, d *oaDoc) {
	if d.doc["openapi"] != "3.1.0" {
		t.Errorf("openapi is %v, want 3.1.0", d.doc["openapi"])
	}
	info := oaObj(d.doc["info"])
	if info["title"] == nil || info["version"] == nil {
		t.Errorf("info lacks title or version: %v", info)
	}
	routes := env.Host.API.Routes()
	if len(routes) == 0 {
		t.Fatal("no mounted routes")
	}
	mounted := map[string]bool{}
	opIDs := map[string]string{}
	for _, rt := range routes {
		path := api.V2Prefix + rt.Path
		key := strings.ToLower(rt.Method) + " " + path
		mounted[key] = true
		op := d.operation(path, rt.Method)
		if op == nil {
			t.Errorf("the mounted route %s %s is not in the document", rt.Method, path)
			continue
		}
		if op["operationId"] != rt.Doc.OperationID || rt.Doc.OperationID == "" {
			t.Errorf("%s: operationId %v, want %q", key, op["operationId"], rt.Doc.OperationID)
		}
		status := rt.Doc.Status
		if status == 0 {
			status = 200
		}
		resps := oaObj(op["responses"])
		okRef, _ := oaObj(oaObj(oaObj(oaObj(resps[strconv.Itoa(status)])["content"])["application/json"])["schema"])["$ref"].(string)
		if okRef != "#/components/schemas/"+rt.Doc.Response {
			t.Errorf("%s: the %d response is %q, want the %s schema", key, status, okRef, rt.Doc.Response)
		}
		for _, code := range []string{"401", "403"} {
			if resps[code] == nil {
				t.Errorf("%s: no %s response declared", key, code)
			}
		}
		var params []string
		ps, _ := op["parameters"].([]any)
		for _, p := range ps {
			p := oaObj(p)
			params = append(params, p["in"].(string)+":"+p["name"].(string))
		}
		for _, m := range oaPathParam.FindAllStringSubmatch(rt.Path, -1) {
			if !slices.Contains(params, "path:"+m[1]) {
				t.Errorf("%s: path parameter %s is not declared (%v)", key, m[1], params)
			}
			if resps["404"] == nil {
				t.Errorf("%s: a route by id declares no 404", key)
			}
		}
		if (rt.Doc.Request != "") != (op["requestBody"] != nil) {
			t.Errorf("%s: requestBody %v, want schema %q", key, op["requestBody"], rt.Doc.Request)
		}
		if len(rt.Scopes) > 0 {
			got, _ := op["x-indigo-scopes"].([]any)
			if fmt.Sprint(got) != fmt.Sprint(rt.Scopes) {
				t.Errorf("%s: x-indigo-scopes %v, want %v", key, got, rt.Scopes)
			}
		}
		var schemes []string
		sec, _ := op["security"].([]any)
		for _, s := range sec {
			for name := range oaObj(s) {
				schemes = append(schemes, name)
			}
		}
		if !slices.Contains(schemes, "bearerKey") || slices.Contains(schemes, "session") != rt.Session {
			t.Errorf("%s: security %v (session route: %v)", key, schemes, rt.Session)
		}
		if prev, dup := opIDs[rt.Doc.OperationID]; dup {
			t.Errorf("operationId %s is used by %s and %s", rt.Doc.OperationID, prev, key)
		}
		opIDs[rt.Doc.OperationID] = key
	}
	// Nothing under /api/v2 in the document that is not mounted.
	for path, item := range oaObj(d.doc["paths"]) {
		for method := range oaObj(item) {
			if strings.HasPrefix(path, api.V2Prefix+"/") && !mounted[method+" "+path] {
				t.Errorf("the document lists %s %s, which is not mounted", method, path)
			}
			// Parameters are unique by name and location.
			seen := map[string]bool{}
			ps, _ := oaObj(oaObj(item)[method])["parameters"].([]any)
			for _, p := range ps {
				k := oaObj(p)["in"].(string) + ":" + oaObj(p)["name"].(string)
				if seen[k] {
					t.Errorf("%s %s declares the parameter %s twice", method, path, k)
				}
				seen[k] = true
			}
		}
	}
	// The core routes are all there (Routes() could lose one as well).
	for _, want := range []string{"get /api/v2/me", "get /api/v2/scopes", "get /api/v2/keys", "post /api/v2/keys",
		"get /api/v2/keys/{id}", "patch /api/v2/keys/{id}", "put /api/v2/keys/{id}/scopes", "post /api/v2/keys/{id}/roll",
		"delete /api/v2/keys/{id}", "get /api/v2/keys/{id}/stats", "post /api/v2/keys/verify"} {
		if !mounted[want] {
			t.Errorf("%s is not mounted", want)
		}
	}
	// The admin views, with their filters.
	admin := map[string][]string{
		"/api/admin/keys":  {"org_id", "key_id", "status", "since", "until", "limit", "cursor"},
		"/api/admin/logs":  {"org_id", "key_id", "route", "status", "caller", "since", "until", "limit", "cursor"},
		"/api/admin/audit": {"org_id", "key_id", "action", "since", "until", "limit", "cursor"},
	}
	for path, want := range admin {
		op := d.operation(path, "GET")
		if op == nil {
			t.Errorf("the admin route GET %s is not in the document", path)
			continue
		}
		resps := oaObj(op["responses"])
		for _, code := range []string{"200", "400", "401", "403"} {
			if resps[code] == nil {
				t.Errorf("GET %s declares no %s response", path, code)
			}
		}
		var names []string
		ps, _ := op["parameters"].([]any)
		for _, p := range ps {
			names = append(names, oaObj(p)["name"].(string))
		}
		sort.Strings(names)
		w := slices.Clone(want)
		sort.Strings(w)
		if !slices.Equal(names, w) {
			t.Errorf("GET %s declares the query parameters %v, want exactly %v (its own filters are missing or another view's leaked in)", path, names, w)
		}
	}
	if d.operation("/api/session", "GET") == nil {
		t.Errorf("GET /api/session is not in the document")
	}
}

// oaCheckSchemas compiles every component and checks that every schema
// with properties refuses undeclared ones.
func oaCheckSchemas(t *testing.T, d *oaDoc) {
	schemas := oaObj(oaObj(d.doc["components"])["schemas"])
	if len(schemas) == 0 {
		t.Fatal("no components.schemas")
	}
	for name, s := range schemas {
		d.compileRef(t, "#/components/schemas/"+name)
		var walk func(at string, v any)
		walk = func(at string, v any) {
			switch x := v.(type) {
			case map[string]any:
				if _, ok := x["properties"]; ok && x["additionalProperties"] != false {
					t.Errorf("%s has properties but allows undeclared ones", at)
				}
				for k, sub := range x {
					walk(at+"/"+k, sub)
				}
			case []any:
				for i, sub := range x {
					walk(at+"/"+strconv.Itoa(i), sub)
				}
			}
		}
		walk(name, s)
	}
}

func oaCheckResponses(t *testing.T, env *coretest.Env, d *oaDoc) {
	c := &oaCaller{env: env, doc: d, seen: map[string]bool{}}
	orgA, orgB := env.Org("alpha"), env.Org("beta")
	superA, superRaw := env.Superkey(orgA)
	readA, readRaw := env.Scoped(orgA, api.ScopeKeysRead)
	_, writeRaw := env.Scoped(orgA, api.ScopeKeysWrite)
	writeA := func() string { return coretest.Bearer(writeRaw) }
	_, verifyRaw := env.Scoped(orgA, api.ScopeKeysVerify)
	_, emptyRaw := env.Scoped(orgA)
	superB, superBRaw := env.Superkey(orgB)
	super, read := coretest.Bearer(superRaw), coretest.Bearer(readRaw)

	const (
		me      = "/api/v2/me"
		keys    = "/api/v2/keys"
		byID    = "/api/v2/keys/{id}"
		scopes  = "/api/v2/keys/{id}/scopes"
		roll    = "/api/v2/keys/{id}/roll"
		stats   = "/api/v2/keys/{id}/stats"
		verify  = "/api/v2/keys/verify"
		aKeys   = "/api/admin/keys"
		aLogs   = "/api/admin/logs"
		aAudit  = "/api/admin/audit"
		session = "/api/session"
	)
	bodies := map[string]any{}

	// GET /me: a scoped key, a superkey (scopes null), a key with expiry.
	_, bodies["me"] = c.call(t, "GET", me, me, read, nil, 200)
	c.call(t, "GET", me, me, super, nil, 200)
	c.call(t, "GET", me, me, coretest.Bearer(emptyRaw), nil, 200)

	// POST /keys: plain, full, superkey, relative expiry.
	full := `{"name":"full","scopes":["api-keys:read","api-keys:verify"],"expires_at":"2027-01-01T00:00:00Z",` +
		`"rate_limit":{"limit":100,"window_seconds":60},"remaining":1000,"refill":{"amount":1000,"interval_seconds":86400},` +
		`"metadata":{"team":"billing","n":1},"prefix":"acme_live"}`
	r, v := c.call(t, "POST", keys, keys, writeA(), full, 201)
	bodies["create"] = v
	fullKey := r.JSON(t)["key"].(map[string]any)
	fullID, fullRaw := fullKey["id"].(string), r.JSON(t)["raw_key"].(string)
	c.call(t, "POST", keys, keys, writeA(), `{"name":"plain"}`, 201)
	c.call(t, "POST", keys, keys, writeA(), `{"name":"sk","scopes":null,"rate_limit":null,"metadata":null}`, 201)
	r, _ = c.call(t, "POST", keys, keys, writeA(), `{"name":"soon","scopes":[],"expires_in_seconds":600}`, 201)
	soonRaw := r.JSON(t)["raw_key"].(string)
	c.call(t, "GET", me, me, coretest.Bearer(soonRaw), nil, 200) // expires_at set, no scopes

	// GET /scopes, GET /keys (a page with and without a next cursor).
	_, bodies["scopes"] = c.call(t, "GET", "/api/v2/scopes", "/api/v2/scopes", read, nil, 200)
	_, bodies["list"] = c.call(t, "GET", keys, keys, read, nil, 200)
	r, _ = c.call(t, "GET", keys, keys+"?limit=1", read, nil, 200)
	if _, ok := r.JSON(t)["next_cursor"].(string); !ok {
		t.Errorf("limit=1 gave no next_cursor: %s", r.Body)
	}

	// GET, PATCH, PUT scopes.
	_, bodies["get"] = c.call(t, "GET", byID, keys+"/"+fullID, read, nil, 200)
	c.call(t, "PATCH", byID, keys+"/"+fullID, writeA(),
		`{"name":"renamed","enabled":true,"metadata":{"x":"y"},"rate_limit":{"limit":5,"window_seconds":1},"remaining":7,`+
			`"refill":{"amount":7,"interval_seconds":3600},"expires_at":"2028-01-01T00:00:00Z"}`, 200)
	c.call(t, "PATCH", byID, keys+"/"+fullID, writeA(), `{"rate_limit":null,"refill":null,"remaining":null,"expires_at":null,"metadata":null}`, 200)
	c.call(t, "PUT", scopes, keys+"/"+fullID+"/scopes", writeA(), `{"scopes":["api-keys:read"]}`, 200)
	plainID, _ := env.Scoped(orgA, api.ScopeKeysRead)
	c.call(t, "PUT", scopes, keys+"/"+plainID.ID+"/scopes", writeA(), `{"scopes":null}`, 200)

	// A key with limits, for the verify response's rate_limit and remaining.
	_, limitedRaw := env.Key(orgA, apikey.CreateInput{Scopes: []string{api.ScopeKeysRead},
		RateLimit: &apikey.RateLimit{Limit: 100, WindowSeconds: 60}, RateLimitSet: true, Remaining: oaPtrInt64(50)})

	// POST /keys/verify: valid (plain and limited), invalid in several ways.
	vfy := coretest.Bearer(verifyRaw)
	_, bodies["verify"] = c.call(t, "POST", verify, verify, vfy, map[string]any{"key": readRaw}, 200)
	r, _ = c.call(t, "POST", verify, verify, vfy, map[string]any{"key": limitedRaw, "scopes": []string{api.ScopeKeysRead}}, 200)
	if m := r.JSON(t); m["valid"] != true || m["rate_limit"] == nil || m["remaining"] == nil {
		t.Errorf("verify of a limited key: %s", r.Body)
	}
	c.call(t, "POST", verify, verify, vfy, map[string]any{"key": superRaw}, 200)
	r, bodies["verify-invalid"] = c.call(t, "POST", verify, verify, vfy, map[string]any{"key": superBRaw}, 200)
	if m := r.JSON(t); m["valid"] != false || m["code"] != "not_found" {
		t.Errorf("verify of another org's key: %s", r.Body)
	}
	c.call(t, "POST", verify, verify, vfy, map[string]any{"key": readRaw, "scopes": []string{api.ScopeKeysWrite}}, 200)
	c.call(t, "POST", verify, verify, vfy, map[string]any{"key": "not a key"}, 200)

	// Roll, then revoke, then verify the revoked and the rolled keys.
	_, bodies["roll"] = c.call(t, "POST", roll, keys+"/"+fullID+"/roll", writeA(), `{"grace_seconds":30}`, 201)
	c.call(t, "POST", verify, verify, vfy, map[string]any{"key": fullRaw}, 200)
	_, bodies["revoke"] = c.call(t, "DELETE", byID, keys+"/"+fullID, writeA(), nil, 200)
	c.call(t, "POST", verify, verify, vfy, map[string]any{"key": fullRaw}, 200)
	c.call(t, "GET", byID, keys+"/"+fullID, read, nil, 200) // a revoked key

	// Stats after traffic.
	env.FlushLogs()
	r, bodies["stats"] = c.call(t, "GET", stats, keys+"/"+readA.ID+"/stats", read, nil, 200)
	if byDay, _ := r.JSON(t)["by_day"].([]any); len(byDay) == 0 {
		t.Errorf("stats of a used key have no by_day rows: %s", r.Body)
	}
	c.call(t, "GET", stats, keys+"/"+plainID.ID+"/stats", super, nil, 200) // an unused key

	// Sessions and the admin views.
	opCookie, _ := env.Session(orgA, "op@example.com", "owner", true)
	plainCookie, _ := env.Session(orgA, "owner@example.com", "owner", false)
	op := []string{"Cookie", opCookie}
	_, bodies["session"] = c.call(t, "GET", session, session, "", nil, 200, op...)
	_, bodies["admin-keys"] = c.call(t, "GET", aKeys, aKeys, "", nil, 200, op...)
	c.call(t, "GET", aKeys, aKeys+"?limit=1&status=revoked&org_id="+url.QueryEscape(orgA), "", nil, 200, op...)
	_, bodies["logs"] = c.call(t, "GET", aLogs, aLogs, "", nil, 200, op...)
	c.call(t, "GET", aLogs, aLogs+"?limit=1&status=200", "", nil, 200, op...)
	_, bodies["audit"] = c.call(t, "GET", aAudit, aAudit, "", nil, 200, op...)
	c.call(t, "GET", aAudit, aAudit+"?limit=1&action=org.create", "", nil, 200, op...) // key_id null

	// Error bodies, each against the schema its operation names for the status.
	_, bodies["error"] = c.call(t, "GET", me, me, "", nil, 401)
	c.call(t, "GET", keys, keys, coretest.Bearer(emptyRaw), nil, 403)
	c.call(t, "GET", byID, keys+"/"+superB.ID, read, nil, 404)
	c.call(t, "POST", keys, keys, writeA(), `{"name":"x","bogus":1}`, 400)
	c.call(t, "POST", keys, keys, writeA(), `{"name":"x","scopes":["nope:nope"]}`, 422)
	c.call(t, "DELETE", byID, keys+"/"+superA.ID, super, nil, 409)
	c.call(t, "POST", roll, keys+"/"+fullID+"/roll", writeA(), nil, 409)
	c.call(t, "POST", verify, verify, read, map[string]any{"key": readRaw}, 403)
	c.call(t, "POST", verify, verify, vfy, `{}`, 400)
	c.call(t, "POST", keys, keys, "", `{"name":"x"}`, 403, "Cookie", plainCookie) // no CSRF token
	c.call(t, "GET", stats, keys+"/"+superB.ID+"/stats", super, nil, 404)
	c.call(t, "GET", keys, keys+"?limit=-1", read, nil, 400)
	c.call(t, "GET", aKeys, aKeys, "", nil, 401)
	c.call(t, "GET", aKeys, aKeys, "", nil, 403, "Cookie", plainCookie)
	c.call(t, "GET", aLogs, aLogs+"?status=1000", "", nil, 400, op...)
	c.call(t, "GET", aAudit, aAudit, "", nil, 403, "Cookie", plainCookie)
	c.call(t, "GET", session, session, "", nil, 401)

	// Every mounted v2 operation was validated with its success status.
	for _, rt := range env.Host.API.Routes() {
		status := rt.Doc.Status
		if status == 0 {
			status = 200
		}
		if k := rt.Method + " " + api.V2Prefix + rt.Path + " " + strconv.Itoa(status); !c.seen[k] {
			t.Errorf("no real response validated for %s", k)
		}
	}

	// The schemas refuse what the responses must not gain: an undeclared
	// field anywhere, or a missing required one.
	extra := func(m map[string]any) { m["undeclared"] = true }
	for _, m := range []struct {
		name, tmpl, method string
		status             int
		body               string
		fn                 func(map[string]any)
		path               []string
	}{
		{"me + field", me, "GET", 200, "me", extra, nil},
		{"me - key_id", me, "GET", 200, "me", func(m map[string]any) { delete(m, "key_id") }, nil},
		{"scopes item + field", "/api/v2/scopes", "GET", 200, "scopes", extra, []string{"scopes", "0"}},
		{"list + field", keys, "GET", 200, "list", extra, nil},
		{"list item + field", keys, "GET", 200, "list", extra, []string{"keys", "0"}},
		{"list item - revoked_at", keys, "GET", 200, "list", func(m map[string]any) { delete(m, "revoked_at") }, []string{"keys", "0"}},
		{"key + field", byID, "GET", 200, "get", extra, []string{"key"}},
		{"key rate_limit + field", byID, "GET", 200, "get", extra, []string{"key", "rate_limit"}},
		{"key envelope + field", byID, "GET", 200, "get", extra, nil},
		{"create + field", keys, "POST", 201, "create", extra, nil},
		{"create key + field", keys, "POST", 201, "create", extra, []string{"key"}},
		{"create - raw_key", keys, "POST", 201, "create", func(m map[string]any) { delete(m, "raw_key") }, nil},
		{"roll previous + field", roll, "POST", 201, "roll", extra, []string{"previous"}},
		{"revoke + field", byID, "DELETE", 200, "revoke", extra, nil},
		{"stats + field", stats, "GET", 200, "stats", extra, nil},
		{"stats by_day + field", stats, "GET", 200, "stats", extra, []string{"by_day", "0"}},
		{"stats by_route + field", stats, "GET", 200, "stats", extra, []string{"by_route", "0"}},
		{"verify + field", verify, "POST", 200, "verify", extra, nil},
		{"verify invalid + field", verify, "POST", 200, "verify-invalid", extra, nil},
		{"admin keys item + field", aKeys, "GET", 200, "admin-keys", extra, []string{"keys", "0"}},
		{"log + field", aLogs, "GET", 200, "logs", extra, []string{"logs", "0"}},
		{"audit + field", aAudit, "GET", 200, "audit", extra, []string{"audit", "0"}},
		{"audit + field at top", aAudit, "GET", 200, "audit", extra, nil},
		{"session + field", session, "GET", 200, "session", extra, nil},
		{"error + field", me, "GET", 401, "error", extra, nil},
		{"error inner + field", me, "GET", 401, "error", extra, []string{"error"}},
	} {
		v, ok := bodies[m.body]
		if !ok || v == nil {
			t.Errorf("%s: no real %s body", m.name, m.body)
			continue
		}
		sch, ref := d.responseSchema(t, m.tmpl, m.method, m.status)
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s: the unchanged body does not match %s: %v", m.name, ref, err)
		}
		if err := sch.Validate(oaMutate(t, v, m.fn, m.path...)); err == nil {
			t.Errorf("%s: %s accepts the changed body; undeclared or missing fields must fail", m.name, ref)
		}
	}
}

func oaPtrInt64(v int64) *int64 { return &v }
