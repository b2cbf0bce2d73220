package module_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
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

// A header value is not text the host judges: HTTP allows any byte above
// 0x7f in one (obs-text, such as a Latin-1 file name), and it must reach
// the module and come back unchanged. It used to fail to encode on the
// wire, and on the shared call stream that took the module down: a 503 for
// the call and a restart for everyone. A raw query whose undecodable pair
// hid such a byte did the same, and is now refused at the host.
func TestModuleHeadersCarryAnyByte(t *testing.T) {
	e := start(t, withModules(t, 5*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", ""}))
	_, raw := e.Scoped(e.Org("A"), "testmod:read")
	ping := func(header ...string) (coretest.Response, float64) {
		t.Helper()
		r := e.Do("GET", "/api/v2/testmod/ping", bearer(raw), nil, header...)
		if r.Status != 200 {
			t.Fatalf("ping %q: %d %s", header, r.Status, r.Body)
		}
		return r, r.JSON(t)["pid"].(float64)
	}
	_, pid := ping()
	for _, v := range []string{"caf\xe9.txt", "\xff\xfe", "attachment; filename=\"r\xe9sum\xe9.pdf\""} {
		r, p := ping("X-Testmod-Echo", v)
		if got := r.Header["X-Testmod-Echo"]; len(got) != 1 || got[0] != v || p != pid {
			t.Errorf("header %q: came back %q from pid %v (module pid %v)", v, got, p, pid)
		}
	}

	addr := strings.TrimPrefix(e.Server.URL, "http://")
	for _, q := range []string{"a=%zz\xff", "\xc3(=1"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /api/v2/testmod/ping?%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", q, raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = c.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), "invalid_text") {
			t.Errorf("raw query %q: %d %s, want 400 invalid_text", q, resp.StatusCode, body)
		}
	}
	if _, p := ping(); p != pid {
		t.Errorf("the module was restarted: pid %v, then %v", pid, p)
	}
}
