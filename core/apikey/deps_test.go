package apikey_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Keys are a domain: they refuse with *apikey.Error, and core/api turns
// those into statuses. The package imports nothing of HTTP.
func TestNoHTTPInTheDomain(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".", "./keycache").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		if imp == "net/http" || strings.HasSuffix(imp, "/core/httpapi") || strings.HasSuffix(imp, "/core/api") {
			t.Errorf("core/apikey imports %s", imp)
		}
	}
}
