package sdk

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func validModule() Module {
	return Module{
		Name:    "projects",
		Version: "1.0.0",
		Scopes: []Scope{
			{ID: "projects:read", Label: "Read projects"},
			{ID: "projects:write", Label: "Write projects"},
		},
		Routes: []Route{
			{Method: "GET", Path: "/projects", Scopes: []string{"projects:read"}, Cost: 1},
			{Method: "GET", Path: "/projects/{id}", Scopes: []string{"projects:read"}},
			{Method: "PUT", Path: "/projects/{id}", Scopes: []string{"projects:write", "keys:read"}},
			{Method: "GET", Path: "/projects/{id}/files/{name:[a-z]+}.json", Scopes: []string{"projects:read"}},
			{Method: "GET", Path: "/status", V1: true},
		},
		Handler: http.NotFoundHandler(),
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Module)
		want   string // a fragment of the error; "" when valid
	}{
		{"valid", func(*Module) {}, ""},
		{"two-letter name", func(m *Module) { m.Name = "pr"; m.Scopes = nil; m.Routes = nil }, ""},
		{"one-letter name", func(m *Module) { m.Name = "p" }, "module name"},
		{"upper-case name", func(m *Module) { m.Name = "Projects" }, "module name"},
		{"name too long", func(m *Module) { m.Name = "p" + strings.Repeat("x", 32) }, "module name"},
		{"name starts with digit", func(m *Module) { m.Name = "1projects" }, "module name"},
		{"name of the core's routes", func(m *Module) { m.Name = "keys"; m.Scopes = nil; m.Routes = nil }, "is the host's own"},
		{"scope without prefix", func(m *Module) { m.Scopes[0].ID = "read" }, `scope "read" must be "projects:"`},
		{"scope of another module", func(m *Module) { m.Scopes[0].ID = "cms:read" }, `must be "projects:"`},
		{"scope with prefix only", func(m *Module) { m.Scopes[0].ID = "projects:" }, "followed by a name"},
		{"duplicate scope", func(m *Module) { m.Scopes[1].ID = "projects:read" }, "declared twice"},
		{"scope name the host refuses", func(m *Module) { m.Scopes[0].ID = "projects:0" }, `scope "projects:0" must match`},
		{"scope name with a colon", func(m *Module) { m.Scopes[0].ID = "projects:a:b" }, `scope "projects:a:b" must match`},
		{"no method", func(m *Module) { m.Routes[0].Method = "" }, "method"},
		{"lower-case method", func(m *Module) { m.Routes[0].Method = "get" }, "method"},
		{"relative path", func(m *Module) { m.Routes[0].Path = "projects" }, "must start with /"},
		{"empty path", func(m *Module) { m.Routes[0].Path = "" }, "must start with /"},
		{"api prefix", func(m *Module) { m.Routes[0].Path = "/api/v2/projects" }, "drop the prefix"},
		{"query in path", func(m *Module) { m.Routes[0].Path = "/projects?x=1" }, "query"},
		{"unbalanced brace", func(m *Module) { m.Routes[1].Path = "/projects/{id" }, "unbalanced"},
		{"unnamed variable", func(m *Module) { m.Routes[1].Path = "/projects/{}" }, "no name"},
		{"bad pattern", func(m *Module) { m.Routes[1].Path = "/projects/{id:[}" }, "variable"},
		{"repeated variable", func(m *Module) { m.Routes[1].Path = "/p/{id}/{id}" }, "twice"},
		{"no scopes", func(m *Module) { m.Routes[0].Scopes = nil }, "needs at least one scope"},
		{"v1 write without scopes", func(m *Module) { m.Routes[4].Method = "POST" }, "needs at least one scope"},
		{"v2 GET without scopes", func(m *Module) { m.Routes[4].V1 = false }, "needs at least one scope"},
		{"undeclared own scope", func(m *Module) { m.Routes[0].Scopes = []string{"projects:admin"} }, "not declared"},
		{"empty scope", func(m *Module) { m.Routes[0].Scopes = []string{""} }, "not declared"},
		{"route scope that is no scope id", func(m *Module) { m.Routes[0].Scopes = []string{"0"} }, `scope "0" is not a scope id`},
		{"capturing group in a pattern", func(m *Module) { m.Routes[0].Path = "/projects/{id:(a|b)}" }, "capturing group"},
		{"path with a dot segment", func(m *Module) { m.Routes[0].Path = "/projects/." }, "clean path"},
		{"negative cost", func(m *Module) { m.Routes[0].Cost = -1 }, "cost"},
		{"duplicate route", func(m *Module) { m.Routes = append(m.Routes, m.Routes[0]) }, "duplicates route GET /projects"},
		{"duplicate route, renamed variable", func(m *Module) {
			m.Routes = append(m.Routes, Route{Method: "GET", Path: "/projects/{pid}", Scopes: []string{"projects:read"}})
		}, "duplicates route GET /projects/{id}"},
		{"same path, other method", func(m *Module) {
			m.Routes = append(m.Routes, Route{Method: "DELETE", Path: "/projects/{id}", Scopes: []string{"projects:write"}})
		}, ""},
		{"no handler", func(m *Module) { m.Handler = nil }, "no Handler"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := validModule()
			tc.change(&m)
			err := m.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// Every problem is reported at once, so an author fixes them in one pass.
func TestValidateReportsEverything(t *testing.T) {
	m := validModule()
	m.Name = "X"
	m.Routes[0].Cost = -1
	err := m.validate()
	if err == nil || !strings.Contains(err.Error(), "module name") || !strings.Contains(err.Error(), "cost") {
		t.Fatalf("err = %v", err)
	}
}

// A manifest from the wire may list any string as a hook; only the hooks
// the host knows pass.
func TestValidateManifestHooks(t *testing.T) {
	m := Module{Name: "billing", DeductAPICallToken: func(context.Context, MeterCall) error { return nil }}.Manifest()
	if err := ValidateManifest(m); err != nil {
		t.Fatalf("a module with a known hook: %v", err)
	}
	m.Hooks = append(m.Hooks, "charge_everyone")
	if err := ValidateManifest(m); err == nil || !strings.Contains(err.Error(), `hook "charge_everyone"`) {
		t.Fatalf("an unknown hook: %v", err)
	}
}
