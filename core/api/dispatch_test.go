package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/mux"
)

// The segment matcher stands in front of mux's Path, so it must agree with
// it on every path: a match where mux has none would clear a pending 405.
func TestSegmentMatcherAgreesWithMux(t *testing.T) {
	templates := []string{
		"/", "/api/v2/me", "/api/v2/keys", "/api/v2/keys/{id}", "/api/v2/keys/{id}/roll",
		"/api/v2/{a}/{b}", "/x/{id}/", "/api/v2/projects/{id}",
	}
	paths := []string{
		"/", "", "/api", "/api/v2/me", "/api/v2/me/", "/api/v2/mex", "/api/v2/keys", "/api/v2/keys/",
		"/api/v2/keys/k1", "/api/v2/keys/k1/", "/api/v2/keys//roll", "/api/v2/keys/k1/roll",
		"/api/v2/keys/k1/roll/x", "/api/v2/keys/k%2F1", "/x/1/", "/x/1", "/x//", "/api/v2/projects/p 1",
		"/api/v2/projects/ü", "//api/v2/me", "/api/v2/a/b", "/api/v2/a/b/c",
	}
	for _, tpl := range templates {
		m, ok := segmentMatcher(tpl)
		if !ok {
			t.Fatalf("%s: no segment matcher", tpl)
		}
		var viaMux mux.Route
		viaMux.Path(tpl)
		for _, p := range paths {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.URL.Path = p
			want := viaMux.Match(req, &mux.RouteMatch{})
			if got := m(req, nil); got != want {
				t.Errorf("template %q, path %q: segment matcher %v, mux %v", tpl, p, got, want)
			}
		}
	}
	for _, tpl := range []string{"/files/{name:[a-z]+}", "/files/{name}.json", "/a/{b}{c}", "relative"} {
		if _, ok := segmentMatcher(tpl); ok {
			t.Errorf("%q: segment matcher offered for a template only mux can read", tpl)
		}
	}
}

// A module route with a pattern is still routed (by mux alone), and its
// variables reach the handler through Vars.
func TestDispatchVarsAndPatterns(t *testing.T) {
	s := &Server{}
	r := mux.NewRouter()
	r.NotFoundHandler = http.NotFoundHandler()
	var got map[string]string
	for _, tpl := range []string{"/files/{name:[a-z]+}.json", "/keys/{id}/roll"} {
		route(r, tpl).Methods("GET").HandlerFunc(func(w http.ResponseWriter, req *http.Request) { got = Vars(req) })
	}
	h := s.dispatch(r)
	for path, want := range map[string]map[string]string{
		"/files/abc.json": {"name": "abc"},
		"/keys/k1/roll":   {"id": "k1"},
	} {
		got = nil
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || len(got) != len(want) || got[firstKey(want)] != want[firstKey(want)] {
			t.Errorf("%s: status %d, vars %v; want 200, %v", path, rec.Code, got, want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/files/ABC.json", nil))
	if rec.Code != 404 {
		t.Errorf("a path outside the pattern: %d, want 404", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/keys/k1/../k2/roll?x=1", nil))
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/keys/k2/roll?x=1" {
		t.Errorf("unclean path: %d to %q, want 301 to /keys/k2/roll?x=1", rec.Code, rec.Header().Get("Location"))
	}
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

// FuzzSegmentMatcher looks for a template and a path on which the segment
// matcher and mux's Path disagree. Its seeds run with plain go test.
func FuzzSegmentMatcher(f *testing.F) {
	f.Add("/api/v2/keys/{id}/roll", "/api/v2/keys/k1/roll")
	f.Add("/api/v2/keys/{id}", "/api/v2/keys/k1/")
	f.Add("/x/{a}/{b}/", "/x/1/2/")
	f.Add("/api/v2/me", "/api/v2/me")
	f.Add("/a/{b}", "/a/%2F")
	f.Fuzz(func(t *testing.T, tpl, p string) {
		m, ok := segmentMatcher(tpl)
		if !ok {
			return
		}
		var viaMux mux.Route
		if viaMux.Path(tpl).GetError() != nil {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = p
		if got, want := m(req, nil), viaMux.Match(req, &mux.RouteMatch{}); got != want {
			t.Fatalf("template %q, path %q: segment matcher %v, mux %v", tpl, p, got, want)
		}
	})
}
