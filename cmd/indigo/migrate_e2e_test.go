package main_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
)

// A migration that fails leaves the schema dirty, and the real binary
// recovers from it as the messages say: up fails and names the error,
// status says dirty, up refuses to run on top of it, `force` to the version
// before the failed one (whose file ran in one transaction and was rolled
// back whole) clears it, and once the file is fixed up applies it.
func TestFailedMigrationRecoversWithForce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildIndigo(t)
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			dir := t.TempDir()
			url := "data/indigo.db"
			if engine == db.Postgres {
				url = dbtest.URL(t, engine)
			}
			toml := "[server]\naddr = \"127.0.0.1:0\"\n[database]\ndriver = \"" + engine + "\"\nurl = \"" + url + "\"\n"
			if err := os.WriteFile(filepath.Join(dir, "indigo.toml"), []byte(toml), 0o600); err != nil {
				t.Fatal(err)
			}
			// The project's own migrations folder: core-api's, then one of
			// its own that fails half-way (its table is created, then an
			// insert into a table that does not exist fails).
			migDir := db.ProjectMigrationsDir(dir, engine)
			if err := os.MkdirAll(migDir, 0o700); err != nil {
				t.Fatal(err)
			}
			src, err := db.Migrations(engine)
			if err != nil {
				t.Fatal(err)
			}
			if err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := fs.ReadFile(src, p)
				if err == nil {
					err = os.WriteFile(filepath.Join(migDir, p), b, 0o600)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			latest := 0
			entries, _ := os.ReadDir(migDir)
			for _, e := range entries {
				var v int
				if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil && v > latest {
					latest = v
				}
			}
			next := fmt.Sprintf("%06d_reports", latest+1)
			write := func(name, body string) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(migDir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(next+".up.sql", "CREATE TABLE saas_reports (id TEXT PRIMARY KEY);\nINSERT INTO saas_no_such_table (id) VALUES ('x');\n")
			write(next+".down.sql", "DROP TABLE saas_reports;\n")

			env := cleanEnv()
			run := func(wantCode int, args ...string) (string, string) {
				t.Helper()
				code, stdout, stderr := runIn(t, bin, dir, env, args...)
				if (wantCode == 0) != (code == 0) {
					t.Fatalf("indigo %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, stdout, stderr)
				}
				return stdout, stderr
			}
			from := "(db/migrations/" + engine + ")"
			status := func(want string) {
				t.Helper()
				out, _ := run(0, "db", "migrate", "status")
				if line := strings.SplitN(out, "\n", 2)[0]; line != engine+" schema version "+want+" "+from {
					t.Fatalf("status: %q, want version %s", line, want)
				}
			}
			of := fmt.Sprintf(" of %d", latest+1)

			_, stderr := run(1, "db", "migrate", "up")
			if !strings.Contains(stderr, "saas_no_such_table") {
				t.Fatalf("a failed migration does not say why: %s", stderr)
			}
			status(fmt.Sprint(latest+1) + of + " (dirty)")
			if _, stderr := run(1, "db", "migrate", "up"); !strings.Contains(stderr, "dirty") || !strings.Contains(stderr, "indigo db migrate force") {
				t.Fatalf("up on a dirty schema: %s", stderr)
			}
			// The failed file ran in one transaction: nothing of it stayed.
			if n := countTable(t, engine, dir, url, "saas_reports"); n != 0 {
				t.Fatalf("the failed migration left its table behind")
			}

			run(0, "db", "migrate", "force", fmt.Sprint(latest))
			status(fmt.Sprint(latest) + of)
			write(next+".up.sql", "CREATE TABLE saas_reports (id TEXT PRIMARY KEY);\n")
			run(0, "db", "migrate", "up")
			status(fmt.Sprint(latest+1) + of)
			if n := countTable(t, engine, dir, url, "saas_reports"); n != 1 {
				t.Fatalf("the fixed migration did not create its table")
			}
			run(0, "db", "migrate", "down", "--steps", "1")
			status(fmt.Sprint(latest) + of)
			run(0, "db", "migrate", "up")
			status(fmt.Sprint(latest+1) + of)
		})
	}
}

// countTable says whether the project's database has the table (1 or 0).
func countTable(t *testing.T, engine, dir, url, table string) int {
	t.Helper()
	if engine == db.SQLite {
		url = filepath.Join(dir, url)
	}
	s, err := db.Open(context.Background(), engine, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '" + table + "'"
	if engine == db.Postgres {
		q = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '" + table + "'"
	}
	var n int
	if err := s.DB.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
