package scope

import (
	"strings"
	"testing"
)

func TestCoreScopesRegistered(t *testing.T) {
	r := NewWithCore()
	for _, id := range []string{"api-keys:read", "api-keys:write", "api-keys:verify"} {
		if !r.Has(id) {
			t.Errorf("core scope %s missing", id)
		}
	}
	g := r.Groups()
	if len(g) != 1 || g[0].Module != "core" || len(g[0].Scopes) != 3 {
		t.Fatalf("groups = %+v", g)
	}
}

func TestRegisterRules(t *testing.T) {
	r := NewWithCore()
	if err := r.Register("projects", "projects", Scope{ID: "projects:read"}, Scope{ID: "projects:write"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, module, prefix string
		scopes               []Scope
		want                 string
	}{
		{"duplicate id", "projects2", "projects2", []Scope{{ID: "projects2:read"}, {ID: "projects2:read"}}, "already registered"},
		{"another module's prefix", "evil", "projects", []Scope{{ID: "projects:admin"}}, "belongs to module"},
		{"outside own prefix", "cms", "cms", []Scope{{ID: "cms:read"}, {ID: "billing:read"}}, "outside its prefix"},
		{"core's prefix", "evil", "api-keys", []Scope{{ID: "api-keys:admin"}}, "belongs to module"},
		{"bad id", "x", "x", []Scope{{ID: "X:Read"}}, "must look like"},
	}
	for _, c := range cases {
		err := r.Register(c.module, c.prefix, c.scopes...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	// A failed registration registers nothing.
	if r.Has("cms:read") || len(r.List()) != 5 {
		t.Fatalf("partial registration left %v", r.List())
	}
	if got := r.Unknown([]string{"projects:read", "nope:read", "api-keys:write"}); len(got) != 1 || got[0] != "nope:read" {
		t.Fatalf("Unknown = %v", got)
	}
	g := r.Groups()
	if len(g) != 2 || g[0].Module != "core" || g[1].Module != "projects" || g[1].Scopes[0].Module != "projects" {
		t.Fatalf("groups = %+v", g)
	}
}

func TestGrants(t *testing.T) {
	cases := []struct {
		name     string
		have     []string
		superkey bool
		need     []string
		want     bool
	}{
		{"superkey", nil, true, []string{"a:b", "c:d"}, true},
		{"empty list grants nothing", []string{}, false, []string{"a:b"}, false},
		{"holds all", []string{"a:b", "c:d"}, false, []string{"c:d", "a:b"}, true},
		{"holds some", []string{"a:b"}, false, []string{"a:b", "c:d"}, false},
		{"no requirement", []string{}, false, nil, true},
	}
	for _, c := range cases {
		if got := Grants(c.have, c.superkey, c.need); got != c.want {
			t.Errorf("%s: Grants = %v", c.name, got)
		}
	}
}
