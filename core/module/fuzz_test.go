package module

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/scope"
	"github.com/indigo-hq/indigo/sdk"
)

// plainVar is a template variable with the default pattern, which any one
// path segment matches.
var plainVar = regexp.MustCompile(`\{[^{}:]+\}`)

// FuzzManifest feeds `describe` output to the host's manifest check. What
// the check accepts, the host must be able to load: its scopes register
// beside core's, every route template mounts, and a route mounted with no
// custom pattern is reachable at its own path (a request without a key
// gets the route's 401, not a 404 or 405). An accepted manifest also
// survives a JSON round trip unchanged.
func FuzzManifest(f *testing.F) {
	for _, s := range []string{
		`{"name":"projects","version":"1.1.0","scopes":[{"id":"projects:read","label":"Read projects"},{"id":"projects:write","label":"Create projects"}],"routes":[{"method":"GET","path":"/projects","scopes":["projects:read"],"cost":1,"v1":false},{"method":"POST","path":"/projects","scopes":["projects:write"],"cost":1,"v1":false},{"method":"GET","path":"/projects/{id}","scopes":["projects:read"],"cost":1,"v1":false}],"protocol":1,"hooks":[],"stream_calls":true,"database":true}`,
		`{"name":"cms","version":"1.0.0","scopes":[{"id":"cms:read","label":"Read content entries"},{"id":"cms:write","label":"Create content entries"}],"routes":[{"method":"GET","path":"/cms/entries","scopes":["cms:read"],"cost":1,"v1":true},{"method":"POST","path":"/cms/entries","scopes":["cms:write"],"cost":1,"v1":false},{"method":"GET","path":"/cms/entries/{id}","scopes":["cms:read"],"cost":1,"v1":true}],"protocol":1,"hooks":[],"stream_calls":true,"database":true}`,
		`{"name":"subscriptions","version":"1.0.0","scopes":[{"id":"subscriptions:read","label":"Read the plan, balance and usage"}],"routes":[{"method":"GET","path":"/subscriptions/balance","scopes":["subscriptions:read"],"cost":0,"v1":false},{"method":"GET","path":"/subscriptions/usage","scopes":["subscriptions:read"],"cost":0,"v1":false}],"protocol":1,"hooks":["deduct_api_call_token","key_limit","run_task"],"stream_calls":true,"database":true,"tasks":[{"name":"roll-over","interval_seconds":3600}]}`,
		`{"name":"files","protocol":1,"scopes":[{"id":"files:read"}],"routes":[{"method":"GET","path":"/files/{name:[a-z]+}.json","scopes":["files:read"]},{"method":"GET","path":"/files/{a}/{b}/","scopes":["files:read","api-keys:read"]}]}`,
		`{"name":"alt","protocol":1,"scopes":[{"id":"alt:read"}],"routes":[{"method":"GET","path":"/alt/{a:(x|y)}","scopes":["alt:read"]},{"method":"GET","path":"/alt/{a:(?:x|y)}/b","scopes":["alt:read"]}]}`,
		`{"name":"keys","protocol":1,"scopes":[{"id":"keys:read"}],"routes":[{"method":"GET","path":"/keys/{id}","scopes":["keys:read"]}]}`,
		`{"name":"open","protocol":1,"routes":[{"method":"GET","path":"/open","v1":true}]}`,
		`{"name":"x","protocol":1}`,
		`{"name":"projects","protocol":2}`,
		`{"name":"projects","protocol":1,"routes":[{"method":"GET","path":"/keys","scopes":["api-keys:read"]}]}`,
		`null`, `[]`, `{`,
	} {
		var m struct{ Name string }
		_ = json.Unmarshal([]byte(s), &m)
		f.Add(m.Name, []byte(s))
	}
	f.Fuzz(func(t *testing.T, name string, out []byte) {
		m, err := decodeManifest(name, "bin", out)
		if err != nil {
			return
		}
		if err := scope.NewWithCore().Register(name, name, scopesOf(m)...); err != nil {
			t.Fatalf("accepted manifest %s: the host refuses its scopes: %v", out, err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("accepted manifest %s does not encode: %v", out, err)
		}
		again, err := decodeManifest(name, "bin", b)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("accepted manifest %s: after a JSON round trip %+v, %v", out, again, err)
		}
		// No key is ever looked up: a request without one is refused first.
		s := &api.Server{Keys: apikey.New(nil, scope.NewWithCore(), apikey.Settings{}, nil, nil), V1Key: "v1"}
		for _, rt := range m.Routes {
			var viaMux mux.Route
			if err := viaMux.Path(api.V2Prefix + rt.Path).GetError(); err != nil {
				t.Fatalf("accepted manifest %s: route %s %s does not mount: %v", out, rt.Method, rt.Path, err)
			}
		}
		mount(s, name, m.Routes, func(sdk.Route) http.Handler { return http.NotFoundHandler() })
		h := s.Router()
		reach := func(method, path string, alone bool) {
			req := httptest.NewRequest(method, "/", nil)
			req.URL.Path = path
			// One v2 route answers the path: a module never shares one
			// with the core or another of its own routes. (A v1 path has
			// a second route, for the methods that v1 refuses.)
			n := 0
			_ = h.Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
				var rm mux.RouteMatch
				if r.GetHandler() != nil && r.Match(req, &rm) && rm.MatchErr == nil {
					n++
				}
				return nil
			})
			if alone && n != 1 {
				t.Fatalf("accepted manifest %s: %d routes answer %s %s", out, n, method, path)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("accepted manifest %s: %s %s answers %d, want the route's 401: %s", out, method, path, w.Code, w.Body)
			}
		}
		for _, rt := range m.Routes {
			path := plainVar.ReplaceAllString(rt.Path, "v")
			if strings.ContainsAny(path, "{}") {
				continue // a custom pattern: no sample path to hand
			}
			if len(rt.Scopes) > 0 {
				reach(rt.Method, api.V2Prefix+path, true)
			}
			if rt.V1 && rt.Method == http.MethodGet {
				reach(rt.Method, api.V1Prefix+path, false)
			}
		}
	})
}
