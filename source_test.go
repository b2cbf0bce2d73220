package indigo

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteSource(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".indigo", "src")
	changed, n, err := WriteSource(dir, "v1.0.0")
	if err != nil || !changed || n == 0 {
		t.Fatalf("first write: %v %d %v", changed, n, err)
	}
	for _, p := range []string{"go.mod", "go.sum", "sdk/sdk.go", "sdk/sdktest/sdktest.go", "core/host.go", "core/ui/static/index.html",
		"db/migrate.go", "db/migrations/sqlite/000001_core_api.up.sql", "db/queries/sqlite/keys.sql", "db/sqlc.yaml", StampFile} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
	count := 0
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, "_test.go") || d.Name() == "testdata" || d.Name() == "node_modules" {
			t.Errorf("written: %s", p)
		}
		if !d.IsDir() && d.Name() != StampFile {
			count++
		}
		return nil
	})
	if count != n {
		t.Errorf("%d files on disk, WriteSource says %d", count, n)
	}

	// The same build leaves the tree alone, even a file changed by hand.
	edited := filepath.Join(dir, "sdk", "sdk.go")
	if err := os.WriteFile(edited, []byte("package sdk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, _, err := WriteSource(dir, "v1.0.0"); err != nil || changed {
		t.Fatalf("same version: %v %v", changed, err)
	}
	// Another build replaces the whole tree.
	if changed, _, err := WriteSource(dir, "v1.0.1"); err != nil || !changed {
		t.Fatalf("new version: %v %v", changed, err)
	}
	if b, _ := os.ReadFile(edited); string(b) == "package sdk\n" {
		t.Fatal("the tree was not rewritten")
	}
	if stamp, _ := os.ReadFile(filepath.Join(dir, StampFile)); !strings.HasPrefix(string(stamp), "indigo v1.0.1\n") {
		t.Fatalf("stamp %q", stamp)
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Fatalf("left over next to the tree: %v", entries)
	}
}

// Every Go file a project build may need (core, sdk, db and the embedded
// first-party module, tests and testdata aside) is in the embedded source:
// a new package outside the embed patterns breaks every scaffolded project.
func TestSourceHasEveryPackageFile(t *testing.T) {
	for _, root := range []string{"core", "sdk", "db", "modules/subscriptions"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			if _, err := fs.Stat(source, filepath.ToSlash(p)); err != nil {
				t.Errorf("%s is not in the embedded source (see the go:embed lines in source.go)", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// The TypeScript client (an npm package, with node_modules and dist once
// built) is no part of a Go build: none of it is embedded in the binary.
func TestSourceLeavesOutTheTypeScriptClient(t *testing.T) {
	if _, err := fs.Stat(source, "sdk/typescript"); err == nil {
		t.Error("sdk/typescript is in the embedded source (see the go:embed lines in source.go)")
	}
	err := fs.WalkDir(source, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "node_modules" {
			t.Errorf("%s is in the embedded source", p)
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
