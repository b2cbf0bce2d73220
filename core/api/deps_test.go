package api_test

import (
	"net/http"
	"testing"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/core/identity"
	"github.com/indigo-hq/indigo/db"
)

// A host embedding Indigo supplies its own resolveOrgId: the management
// API then acts for whatever org its resolver answers, with no local
// session and no CSRF token of Indigo's own.
func TestCustomOrgResolver(t *testing.T) {
	var orgA, orgB string
	e := coretest.New(t, db.SQLite, func(_ *config.Config, o *core.Options) {
		o.Resolver = identity.ResolverFunc(func(r *http.Request) (*identity.Identity, error) {
			switch r.Header.Get("X-Host-User") {
			case "alice":
				return &identity.Identity{UserID: "alice", OrgID: orgA, Role: identity.RoleOwner}, nil
			case "bob":
				return &identity.Identity{UserID: "bob", OrgID: orgB, Role: identity.RoleMember}, nil
			}
			return nil, nil
		})
	})
	orgA, orgB = e.Org("A"), e.Org("B")
	keyB, _ := e.Superkey(orgB)

	r := e.Do("POST", "/api/v2/keys", "", map[string]any{"name": "from host", "scopes": []string{}}, "X-Host-User", "alice")
	if r.Status != 201 || r.JSON(t)["key"].(map[string]any)["org_id"] != orgA || r.JSON(t)["key"].(map[string]any)["created_by"] != "user:alice" {
		t.Fatalf("create through the host's resolver: %d %s", r.Status, r.Body)
	}
	if r := e.Do("GET", "/api/v2/keys/"+keyB.ID, "", nil, "X-Host-User", "alice"); r.Status != 404 {
		t.Fatalf("another org's key through the resolver: %d", r.Status)
	}
	if r := e.Do("GET", "/api/v2/keys", "", nil, "X-Host-User", "bob"); r.Status != 403 {
		t.Fatalf("a member: %d", r.Status)
	}
	if r := e.Do("GET", "/api/v2/keys", "", nil); r.Status != 401 {
		t.Fatalf("nobody: %d", r.Status)
	}
	// The local sign-in route is off when the host resolves identities.
	if r := e.Do("GET", "/auth/login?token=x", "", nil); r.Status != 404 {
		t.Fatalf("local sign-in with a host resolver: %d", r.Status)
	}
}
