package sdk

import (
	"strings"
	"testing"

	"github.com/indigo-hq/indigo/sdk/rpc"
)

// The one manifest check the SDK, the host and the CLI share.
func TestCheckManifest(t *testing.T) {
	good := Manifest{Name: "reports", Version: "1", Protocol: rpc.ProtocolVersion,
		Scopes: []Scope{{ID: "reports:read"}}, Routes: []Route{{Method: "GET", Path: "/reports/{id}", Scopes: []string{"reports:read"}}}}
	if err := CheckManifest("reports", good); err != nil {
		t.Fatalf("a good manifest: %v", err)
	}
	cases := map[string]struct {
		edit func(m *Manifest)
		name string
		want string
	}{
		"another name":          {func(*Manifest) {}, "other", `the binary says it is module "reports", not "other"`},
		"another protocol":      {func(m *Manifest) { m.Protocol++ }, "reports", "speaks protocol"},
		"a route outside":       {func(m *Manifest) { m.Routes[0].Path = "/keys" }, "reports", "is outside /reports"},
		"a route with no scope": {func(m *Manifest) { m.Routes[0].Scopes = nil }, "reports", "needs at least one scope"},
		"a foreign scope":       {func(m *Manifest) { m.Scopes[0].ID = "billing:read" }, "reports", `must be "reports:"`},
		"a task every 0 s":      {func(m *Manifest) { m.Tasks = []TaskInfo{{Name: "t", IntervalSeconds: 0}} }, "reports", "at least one second"},
	}
	for name, c := range cases {
		m := good
		m.Scopes = append([]Scope(nil), good.Scopes...)
		m.Routes = append([]Route(nil), good.Routes...)
		c.edit(&m)
		if err := CheckManifest(c.name, m); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
