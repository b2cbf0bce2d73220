package api_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/db"
)

// undocumentedRoutes are the routes a host mounts that are not part of
// the API the OpenAPI document describes, each with the reason. Any other
// route must be in the document.
var undocumentedRoutes = map[string]string{
	"GET /healthz":          "operations: a liveness probe, not an API",
	"GET /readyz":           "operations: a readiness probe, not an API",
	"GET /metrics":          "operations: Prometheus text format",
	"GET /api/openapi.json": "the document itself",
	"GET /auth/login":       "the browser's sign-in link (a redirect, not JSON)",
	"POST /auth/logout":     "the browser's sign-out, part of the UI's session flow",
	// A v1 path answers 405 for every method but GET: the document lists
	// the GET.
	"* /api/v1/cms/entries":      "v1 is read-only: the other methods answer 405",
	"* /api/v1/cms/entries/{id}": "v1 is read-only: the other methods answer 405",
}

// uiRoute reports the embedded UI's pages and assets: a browser shell.
func uiRoute(key string) bool {
	method, path, _ := strings.Cut(key, " ")
	if method != "GET" && method != "HEAD" {
		return false
	}
	switch path {
	case "/", "/settings/api-keys", "/account/api", "/admin/api-keys", "/admin/logs", "/favicon.ico", "/ui/*":
		return true
	}
	return false
}

// TestEveryRouteIsDocumented walks the router of a host running the
// first-party module binaries and holds it to the document that host
// serves: every API route is in the document, every operation in the
// document is a mounted route; and the core's part of that document is
// api/openapi.json, so loading modules changes no core entry.
func TestEveryRouteIsDocumented(t *testing.T) {
	bins := buildWalkModules(t, "./modules/projects", "./modules/cms", "./modules/subscriptions")
	env := coretest.New(t, db.SQLite, func(c *config.Config, _ *core.Options) {
		c.V1.APIKey = walkV1Key
		for _, name := range []string{"projects", "cms", "subscriptions"} {
			c.Modules = append(c.Modules, config.Module{Name: name, Path: bins[name]})
		}
	})
	if err := env.Host.LoadModules(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := env.Do("GET", "/api/openapi.json", "", nil)
	if r.Status != 200 {
		t.Fatalf("GET /api/openapi.json: %d %s", r.Status, r.Body)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}

	mounted := map[string]bool{}
	modules := 0
	for _, w := range walkRoutes(t, env.Host.API.Router()) {
		mounted[w.key] = true
		if uiRoute(w.key) {
			continue
		}
		if _, ok := undocumentedRoutes[w.key]; ok {
			continue
		}
		if !documented[w.key] {
			t.Errorf("the host mounts %s, which its OpenAPI document does not list: document it "+
				"(core/api/openapi.go, then make generate), or add it to undocumentedRoutes with the reason", w.key)
		}
		if strings.Contains(w.key, "/projects") || strings.Contains(w.key, "/cms/") || strings.Contains(w.key, "/subscriptions/") {
			modules++
		}
	}
	for k := range undocumentedRoutes {
		if !mounted[k] {
			t.Errorf("undocumentedRoutes names %s, which the host does not mount: remove it", k)
		}
	}
	var listed []string
	for k := range documented {
		listed = append(listed, k)
	}
	sort.Strings(listed)
	for _, k := range listed {
		if !mounted[k] {
			t.Errorf("the OpenAPI document lists %s, which the host does not mount", k)
		}
	}
	if modules < 8 {
		t.Errorf("the walk saw %d module routes: the module binaries did not load their routes", modules)
	}

	// The core's entries are the committed contract, modules or not.
	b, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatalf("%v: run make generate", err)
	}
	var file struct {
		Paths      map[string]map[string]any `json:"paths"`
		Components map[string]any            `json:"components"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	var served struct {
		Components map[string]any `json:"components"`
	}
	_ = json.Unmarshal(r.Body, &served)
	for path, item := range file.Paths {
		switch got, ok := doc.Paths[path]; {
		case !ok:
			t.Errorf("api/openapi.json lists %s, which a host with modules does not serve", path)
		case !reflect.DeepEqual(item, got):
			t.Errorf("%s: a host with modules serves another entry than api/openapi.json", path)
		}
	}
	if !reflect.DeepEqual(file.Components, served.Components) {
		t.Errorf("a host with modules serves other components than api/openapi.json")
	}
	t.Logf("%d mounted routes, %d documented operations, %d of them module routes", len(mounted), len(documented), modules)
}
