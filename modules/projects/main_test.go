package main

import (
	"encoding/json"
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

// The per-org list cache never serves a list older than the last create.
func TestListCacheFollowsCreates(t *testing.T) {
	h := sdktest.New(t, newModule())
	a := sdk.Caller{OrgID: "org_a", Scopes: []string{"projects:read", "projects:write"}}
	b := sdk.Caller{OrgID: "org_b", Scopes: []string{"projects:read", "projects:write"}}
	count := func(c sdk.Caller) int {
		t.Helper()
		var list struct{ Projects []project }
		r := h.Do("GET", "/projects", c, nil)
		if err := json.Unmarshal(r.Body, &list); err != nil || r.Status != 200 {
			t.Fatalf("list: %d %s", r.Status, r.Body)
		}
		return len(list.Projects)
	}
	for i := 1; i <= 3; i++ {
		count(a) // fills the cache
		count(a) // served from it
		if r := h.Do("POST", "/projects", a, []byte(`{"name":"p"}`)); r.Status != 201 {
			t.Fatalf("create: %d", r.Status)
		}
		if n := count(a); n != i {
			t.Fatalf("after %d creates the list has %d", i, n)
		}
		if n := count(b); n != 0 {
			t.Fatalf("org b sees %d projects", n)
		}
	}
}
