package module_test

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/indigo-hq/indigo/core/coretest"
)

// A module route gets the host's text check too: a body, path id or query
// that is not valid UTF-8 or holds a NUL is refused at the host (400
// invalid_text) and never reaches the module, whose own database would
// refuse it on PostgreSQL (a 500) or store it on SQLite.
func TestModuleRoutesRefuseInvalidText(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := startOn(t, engine, withModules(t, 5*time.Second,
			modSpec{"projects", "./modules/projects", ""}, modSpec{"cms", "./modules/cms", ""}))
		org := e.Org("A")
		_, raw := e.Superkey(org)
		auth := bearer(raw)
		v1 := bearer("v1-global-key-for-tests")
		for _, c := range []struct {
			method, path, auth, body string
			header                   []string
		}{
			{"POST", "/api/v2/projects", auth, `{"name":"a\u0000b"}`, nil},
			{"POST", "/api/v2/projects", auth, "{\"name\":\"a\xffb\"}", nil},
			{"POST", "/api/v2/projects", auth, `{"name":"\udfff"}`, nil},
			// JSON sent under another type (fetch's text/plain, curl -d's form).
			{"POST", "/api/v2/projects", auth, `{"name":"a\u0000b"}`, []string{"Content-Type", "text/plain;charset=UTF-8"}},
			{"POST", "/api/v2/projects", auth, `{"name":"a\u0000b"}`, []string{"Content-Type", "application/x-www-form-urlencoded"}},
			{"POST", "/api/v2/projects", auth, `name=a%00b`, []string{"Content-Type", "application/x-www-form-urlencoded"}},
			{"POST", "/api/v2/cms/entries", auth, `{"title":"t","body":{"x":"\u0000"}}`, []string{"Content-Type", "application/vnd.api+json"}},
			{"GET", "/api/v2/projects/%00", auth, "", nil},
			{"GET", "/api/v2/projects/%ff", auth, "", nil},
			{"GET", "/api/v2/projects/%c3%28", auth, "", nil},
			{"GET", "/api/v2/projects?q=%ff", auth, "", nil},
			{"GET", "/api/v1/cms/entries/%ff", v1, "", nil},
			{"GET", "/api/v1/cms/entries?q=%00", v1, "", nil},
		} {
			var body any
			if c.body != "" {
				body = c.body
			}
			r := e.Do(c.method, c.path, c.auth, body, c.header...)
			if r.Status != 400 || r.ErrorCode() != "invalid_text" || !utf8.Valid(r.Body) || r.Header.Get("X-Projects-Calls") != "" {
				t.Errorf("%s %s %q %v: %d %s (module calls %q); want 400 invalid_text from the host",
					c.method, c.path, c.body, c.header, r.Status, r.Body, r.Header.Get("X-Projects-Calls"))
			}
		}
		// A binary body is the module's to judge; valid text goes through.
		if r := e.Do("POST", "/api/v2/projects", auth, "\xff\x00\x01", "Content-Type", "application/octet-stream"); r.ErrorCode() == "invalid_text" || r.Header.Get("X-Projects-Calls") == "" {
			t.Errorf("a binary body: %d %s; want it passed to the module", r.Status, r.Body)
		}
		r := e.Do("POST", "/api/v2/projects", auth, `{"name":"café \ud83d\ude00"}`)
		if r.Status != 201 {
			t.Fatalf("valid text: %d %s", r.Status, r.Body)
		}
		if got := r.JSON(t)["project"].(map[string]any)["name"]; got != "café 😀" {
			t.Errorf("name = %q", got)
		}
	})
}
