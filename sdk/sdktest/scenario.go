package sdktest

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/indigo-hq/indigo/sdk"
)

// Scenario is one row of a module's API table, run as the host would run
// the request: a key of Org holding Scopes (nil Scopes: a superkey) calls
// Method Path with Body (any value, sent as JSON). The route's scopes are
// checked first, as the host checks them (403 insufficient_scope without
// reaching the module). ExpectedJSON, when set, must be contained in the
// answer: every field it has, recursively, with the same value (arrays
// compare whole).
type Scenario struct {
	Name           string
	Method, Path   string
	Org            string
	Scopes         []string
	Body           any
	ExpectedStatus int
	ExpectedJSON   string
	// Check, when set, looks at the answer further.
	Check func(t *testing.T, r Response)
}

// Run runs the scenarios in order, each as a subtest.
func (h *Harness) Run(t *testing.T, scenarios []Scenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			r := h.scenario(t, sc)
			if r.Status != sc.ExpectedStatus {
				t.Fatalf("%s %s: status %d, want %d\n%s", sc.Method, sc.Path, r.Status, sc.ExpectedStatus, r.Body)
			}
			if sc.ExpectedJSON != "" {
				var want, got any
				if err := json.Unmarshal([]byte(sc.ExpectedJSON), &want); err != nil {
					t.Fatalf("ExpectedJSON: %v", err)
				}
				if err := json.Unmarshal(r.Body, &got); err != nil {
					t.Fatalf("the answer is not JSON: %v\n%s", err, r.Body)
				}
				if !contains(got, want) {
					t.Fatalf("%s %s: the answer does not contain %s\n%s", sc.Method, sc.Path, sc.ExpectedJSON, r.Body)
				}
			}
			if sc.Check != nil {
				sc.Check(t, r)
			}
		})
	}
}

func (h *Harness) scenario(t *testing.T, sc Scenario) Response {
	t.Helper()
	caller := sdk.Caller{OrgID: sc.Org, KeyID: "key_test", Scopes: sc.Scopes, Superkey: sc.Scopes == nil, RequestID: "req_" + sc.Name}
	path, _, _ := cutQuery(sc.Path)
	for _, r := range h.routes {
		if r.route.Method != sc.Method {
			continue
		}
		if _, ok := r.tpl.Match(path); !ok {
			continue
		}
		for _, need := range r.route.Scopes {
			if !caller.Superkey && !slices.Contains(caller.Scopes, need) {
				return Response{Status: http.StatusForbidden, Header: http.Header{"Content-Type": {"application/json"}},
					Body: []byte(`{"error":{"code":"insufficient_scope","message":"this key lacks the scope ` + need + `"}}`)}
			}
		}
		break
	}
	var body []byte
	if sc.Body != nil {
		var err error
		if body, err = json.Marshal(sc.Body); err != nil {
			t.Fatalf("Body: %v", err)
		}
	}
	return h.Do(sc.Method, sc.Path, caller, body, "Content-Type", "application/json")
}

func cutQuery(p string) (string, string, bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			return p[:i], p[i+1:], true
		}
	}
	return p, "", false
}

// contains reports whether got has everything want has.
func contains(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !contains(gv, wv) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(got, want)
	}
}

// RunTask runs one of the module's tasks as the host's scheduler would.
func (h *Harness) RunTask(name string) error {
	h.t.Helper()
	payload, _ := json.Marshal(map[string]string{"task": name})
	_, err := h.module.CallHook(h.t.Context(), sdk.HookRunTask, payload)
	return err
}

// DB opens the module's own database, for tests that look at what it
// stored (nil when the module asked for none).
func (h *Harness) DB() *Database { return h.db }
