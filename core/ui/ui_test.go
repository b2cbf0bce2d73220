package ui_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/indigo-hq/indigo/core/ui"
)

func TestPagesAndAssets(t *testing.T) {
	r := mux.NewRouter()
	ui.Mount(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	get := func(path string) *http.Response {
		t.Helper()
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, p := range ui.Pages {
		res := get(p)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", p, res.StatusCode, res.Header.Get("Content-Type"))
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", p, res.Header)
		}
	}
	for path, ctype := range map[string]string{
		"/ui/app.js":              "text/javascript",
		"/ui/api-key-manager.js":  "text/javascript",
		"/ui/api-key-manager.css": "text/css",
	} {
		res := get(path)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), ctype) || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %q", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/ui/missing.js", "/settings/other", "/ui/../go.mod"} {
		if res := get(path); res.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", path, res.StatusCode)
		}
	}
}

// The shell loads its code from files only: an inline script or style
// would be blocked by the CSP.
func TestShellHasNoInlineCode(t *testing.T) {
	b, err := fsRead("index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, bad := range []string{"<script>", "<style", " style=", " onclick=", " onload=", "javascript:"} {
		if strings.Contains(html, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	if !strings.Contains(html, `<script type="module" src="/ui/app.js">`) {
		t.Error("index.html does not load /ui/app.js")
	}
}

func fsRead(name string) ([]byte, error) {
	return fs.ReadFile(ui.Static(), name)
}
