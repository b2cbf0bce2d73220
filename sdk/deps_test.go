package sdk_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The SDK is what module authors import: it must never pull in the host.
func TestSDKImportsNoHostPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/indigo-hq/indigo/"
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"core", "db", "cmd", "modules"} {
			if dep == mod+banned || strings.HasPrefix(dep, mod+banned+"/") {
				t.Errorf("sdk depends on %s", dep)
			}
		}
	}
}
