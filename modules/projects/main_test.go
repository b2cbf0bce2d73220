package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/indigo-hq/indigo/sdk"
	"github.com/indigo-hq/indigo/sdk/sdktest"
)

func TestProjectsInMemory(t *testing.T) {
	h := sdktest.New(t, newModule())
	a := sdk.Caller{OrgID: "org_a", KeyID: "key_a", Scopes: []string{"projects:read", "projects:write"}}
	b := sdk.Caller{OrgID: "org_b", KeyID: "key_b", Scopes: []string{"projects:read"}}

	r := h.Do("POST", "/projects", a, []byte(`{"name":"Apollo"}`), "Content-Type", "application/json")
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	var created struct{ Project project }
	if err := json.Unmarshal(r.Body, &created); err != nil || created.Project.OrgID != "org_a" || created.Project.Name != "Apollo" {
		t.Fatalf("created %s (%v)", r.Body, err)
	}
	if r := h.Do("GET", "/projects/"+created.Project.ID, a, nil); r.Status != 200 {
		t.Fatalf("get: %d", r.Status)
	}
	if r := h.Do("GET", "/projects/"+created.Project.ID, b, nil); r.Status != 404 {
		t.Fatalf("another org's project: %d", r.Status)
	}
	var list struct{ Projects []project }
	r = h.Do("GET", "/projects", b, nil)
	if err := json.Unmarshal(r.Body, &list); err != nil || r.Status != 200 || len(list.Projects) != 0 {
		t.Fatalf("org b's list: %d %s", r.Status, r.Body)
	}
	for _, bad := range []string{`{"name":""}`, `{"name":"x","extra":1}`, `nope`} {
		if r := h.Do("POST", "/projects", a, []byte(bad)); r.Status != 422 && r.Status != 400 {
			t.Fatalf("bad body %s: %d", bad, r.Status)
		}
	}
	if r := h.Do("GET", "/projects", sdk.Caller{V1: true}, nil); r.Status != 403 {
		t.Fatalf("a caller without an org: %d", r.Status)
	}
	if r.Header.Get("X-Projects-Calls") == "" {
		t.Fatal("the call counter header is missing")
	}
}

// BenchmarkListThroughSDK is the module side of GET /projects: the SDK's
// request rebuild, the handler and its SQLite query, over the in-memory
// gRPC connection of sdktest.
func BenchmarkListThroughSDK(b *testing.B) {
	h := sdktest.New(b, newModule())
	c := sdk.Caller{OrgID: "org_a", Scopes: []string{"projects:read", "projects:write"}}
	for _, n := range []string{"Apollo", "Gemini"} {
		h.Do("POST", "/projects", c, []byte(`{"name":"`+n+`"}`))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := h.Do("GET", "/projects", c, nil); r.Status != 200 {
			b.Fatal(r.Status)
		}
	}
}

// engines runs fn on SQLite, and on PostgreSQL when
// INDIGO_TEST_POSTGRES_URL is set (required under CI=true).
func engines(t *testing.T, fn func(t *testing.T, opts ...sdktest.Option)) {
	t.Run("sqlite", func(t *testing.T) { fn(t) })
	t.Run("postgres", func(t *testing.T) {
		url := os.Getenv("INDIGO_TEST_POSTGRES_URL")
		if url == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("INDIGO_TEST_POSTGRES_URL is not set under CI=true")
			}
			t.Skip("INDIGO_TEST_POSTGRES_URL is not set")
		}
		fn(t, sdktest.WithPostgres(url))
	})
}

// The module's API as a table, over the real wire, on its real database.
func TestProjectsScenarios(t *testing.T) {
	engines(t, func(t *testing.T, opts ...sdktest.Option) {
		h := sdktest.New(t, newModule(), opts...)
		rw := []string{"projects:read", "projects:write"}
		var id string
		h.Run(t, []sdktest.Scenario{
			{Name: "empty list", Method: "GET", Path: "/projects", Org: "org_a", Scopes: rw, ExpectedStatus: 200, ExpectedJSON: `{"projects":[]}`},
			{Name: "create", Method: "POST", Path: "/projects", Org: "org_a", Scopes: rw, Body: map[string]string{"name": "Apollo"},
				ExpectedStatus: 201, ExpectedJSON: `{"project":{"org_id":"org_a","name":"Apollo"}}`,
				Check: func(t *testing.T, r sdktest.Response) {
					var c struct{ Project project }
					if err := r.Decode(&c); err != nil || !strings.HasPrefix(c.Project.ID, "prj_") {
						t.Fatalf("%s", r.Body)
					}
					id = c.Project.ID
				}},
			{Name: "create without the write scope", Method: "POST", Path: "/projects", Org: "org_a", Scopes: []string{"projects:read"},
				Body: map[string]string{"name": "x"}, ExpectedStatus: 403, ExpectedJSON: `{"error":{"code":"insufficient_scope"}}`},
			{Name: "an empty name", Method: "POST", Path: "/projects", Org: "org_a", Scopes: rw, Body: map[string]string{"name": " "},
				ExpectedStatus: 422, ExpectedJSON: `{"error":{"code":"invalid_name"}}`},
			{Name: "an unknown field", Method: "POST", Path: "/projects", Org: "org_a", Scopes: rw, Body: map[string]any{"name": "x", "extra": 1},
				ExpectedStatus: 400, ExpectedJSON: `{"error":{"code":"bad_request"}}`},
			{Name: "the org's list", Method: "GET", Path: "/projects", Org: "org_a", Scopes: rw, ExpectedStatus: 200,
				Check: func(t *testing.T, r sdktest.Response) {
					if !strings.Contains(string(r.Body), `"name":"Apollo"`) {
						t.Fatalf("%s", r.Body)
					}
				}},
			{Name: "another org's list is empty", Method: "GET", Path: "/projects", Org: "org_b", Scopes: rw, ExpectedStatus: 200, ExpectedJSON: `{"projects":[]}`},
			{Name: "another org's project is not found", Method: "GET", Path: "/projects/" + "prj_0000000000000000", Org: "org_b", Scopes: rw,
				ExpectedStatus: 404, ExpectedJSON: `{"error":{"code":"not_found"}}`},
		})
		if r := h.Do("GET", "/projects/"+id, sdk.Caller{OrgID: "org_b", Scopes: []string{"projects:read"}}, nil); r.Status != 404 {
			t.Fatalf("org b reads org a's project: %d", r.Status)
		}
		if r := h.Do("GET", "/projects/"+id, sdk.Caller{OrgID: "org_a", Scopes: []string{"projects:read"}}, nil); r.Status != 200 {
			t.Fatalf("org a reads its project: %d", r.Status)
		}
	})
}
