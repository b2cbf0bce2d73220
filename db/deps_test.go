package db_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The engines' generated packages are db's business: every other package
// uses db's aliases and one Querier for both engines, so that no SQL dialect
// leaks into the core.
func TestNoPackageOutsideDBImportsAnEngine(t *testing.T) {
	const mod = "github.com/indigo-hq/indigo/"
	out, err := exec.Command("go", "list", "-test", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// A test variant reads "pkg [pkg.test] imports…": the first field is the package.
		fields := strings.Fields(line)
		pkg := fields[0]
		if pkg == mod+"db" || strings.HasPrefix(pkg, mod+"db/") || pkg == mod+"db_test" || pkg == mod+"db.test" {
			continue
		}
		checked++
		for _, imp := range fields[1:] {
			if imp == mod+"db/sqlitedb" || imp == mod+"db/pgdb" {
				t.Errorf("%s imports %s: use the aliases in package db", pkg, imp)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d packages: is go list reading the module?", checked)
	}
}
