package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cleanEnv is the test's environment without any INDIGO_ setting, so that
// only what a case sets reaches the binary.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INDIGO_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runIn runs the binary in dir and returns its exit code and both outputs.
func runIn(t *testing.T, bin, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// Each message a newcomer meets names what is really wrong and where the
// value came from, and a command that only reads creates nothing.
func TestMessagesTellTheTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildIndigo(t)
	noLicenseToml := "[server]\naddr = \"127.0.0.1:0\"\n[api]\nenabled = true\n"
	cases := []struct {
		name      string
		toml      string // indigo.toml in the folder; "" for none
		env       []string
		args      []string
		wantCode  int
		want      []string // in stderr
		notWanted []string
	}{
		{name: "orgs list without a config or a database", args: []string{"orgs", "list"}, wantCode: 1,
			want: []string{"no indigo.toml in ", "using the built-in defaults", "no database at ", "indigo serve"}},
		{name: "keys list without a config or a database", args: []string{"keys", "list", "--org", "org_x"}, wantCode: 1,
			want: []string{"no indigo.toml in ", "no database at "}},
		{name: "db migrate status without a database", args: []string{"db", "migrate", "status"}, wantCode: 1,
			want: []string{"no database at "}},
		{name: "serve without a license", toml: noLicenseToml, args: []string{"serve"}, wantCode: 1,
			want:      []string{"dev = true under [api]", "INDIGO_API_DEV=true", "indigo add core-api --dev"},
			notWanted: []string{"use --dev"}},
		{name: "a driver from the environment", toml: noLicenseToml, env: []string{"INDIGO_DATABASE_DRIVER=mysql"}, args: []string{"orgs", "list"}, wantCode: 1,
			want: []string{"INDIGO_DATABASE_DRIVER: database.driver:", `got "mysql"`}, notWanted: []string{"indigo.toml"}},
		{name: "a rate limit from the environment", toml: noLicenseToml, env: []string{"INDIGO_API_DEFAULT_RATE_LIMIT=lots"}, args: []string{"serve"}, wantCode: 1,
			want: []string{"INDIGO_API_DEFAULT_RATE_LIMIT: api.default_rate_limit:"}, notWanted: []string{"indigo.toml", "license"}},
		{name: "a duration from the environment", toml: noLicenseToml, env: []string{"INDIGO_API_ROLL_GRACE=-1h"}, args: []string{"serve"}, wantCode: 1,
			want: []string{"INDIGO_API_ROLL_GRACE: api.roll_grace: must not be negative"}},
		{name: "a bad value in the file", toml: "[database]\ndriver = \"mysql\"\n", args: []string{"orgs", "list"}, wantCode: 1,
			want: []string{"indigo.toml: database.driver:"}, notWanted: []string{"INDIGO_"}},
		{name: "an address that is not host:port", toml: noLicenseToml, env: []string{"INDIGO_SERVER_ADDR=nonsense"}, args: []string{"serve"}, wantCode: 1,
			want: []string{"INDIGO_SERVER_ADDR: server.addr: must be host:port", `"nonsense"`}, notWanted: []string{"license"}},
		{name: "a port out of range", toml: "[server]\naddr = \"127.0.0.1:99999\"\n", args: []string{"serve"}, wantCode: 1,
			want: []string{"server.addr: the port must be a number from 0 to 65535"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.toml != "" {
				if err := os.WriteFile(filepath.Join(dir, "indigo.toml"), []byte(c.toml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			code, stdout, stderr := runIn(t, bin, dir, cleanEnv(c.env...), c.args...)
			if code != c.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.wantCode, stdout, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, w := range c.notWanted {
				if strings.Contains(stderr, w) {
					t.Errorf("stderr has %q:\n%s", w, stderr)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
				t.Errorf("the command created %s", filepath.Join(dir, "data"))
			}
		})
	}
}

// Naming an organization that is not there says so, whether the command
// creates a key, lists keys or makes a sign-in link.
func TestUnknownOrganizationIsNamed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildIndigo(t)
	dir := t.TempDir()
	env := cleanEnv()
	code, org, stderr := runIn(t, bin, dir, env, "orgs", "create", "Acme")
	if code != 0 || !strings.HasPrefix(org, "org_") || !strings.Contains(stderr, "using the built-in defaults") {
		t.Fatalf("orgs create: %d %q %q", code, org, stderr)
	}
	for _, args := range [][]string{
		{"keys", "list", "--org", "org_nope"},
		{"keys", "create", "--org", "org_nope", "--name", "a"},
		{"login-link", "--org", "org_nope"},
	} {
		code, stdout, stderr := runIn(t, bin, dir, env, args...)
		if code == 0 || !strings.Contains(stderr, `organization "org_nope" does not exist`) || stdout != "" {
			t.Errorf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
		}
	}
	// The org that exists still lists (an empty table).
	code, stdout, _ := runIn(t, bin, dir, env, "keys", "list", "--org", strings.TrimSpace(org))
	if code != 0 || !strings.HasPrefix(stdout, "ID") {
		t.Fatalf("keys list of a real org: %d %q", code, stdout)
	}
}

// `indigo db migrate` lists each module's schema beside the core's, and
// moves one module's with --module.
func TestMigrateModules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildIndigo(t)
	dir := t.TempDir()
	projects := filepath.Join(dir, "projects")
	if out, err := exec.Command("go", "build", "-o", projects, "../../modules/projects").CombinedOutput(); err != nil {
		t.Fatalf("build projects: %v\n%s", err, out)
	}
	toml := "[server]\naddr = \"127.0.0.1:0\"\n[[modules]]\nname = \"projects\"\npath = \"projects\"\n"
	if err := os.WriteFile(filepath.Join(dir, "indigo.toml"), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := cleanEnv()
	step := func(want string, args ...string) {
		t.Helper()
		code, stdout, stderr := runIn(t, bin, dir, env, args...)
		if code != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("indigo %s: exit %d, want %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout, stderr)
		}
	}
	step("sqlite schema version", "db", "migrate", "up")
	step("module projects: no database yet", "db", "migrate", "status")
	step("module projects: sqlite schema version 1 of 1", "db", "migrate", "up", "--module", "projects")
	step("module projects: sqlite schema version 1 of 1", "db", "migrate", "status")
	step("module projects: sqlite schema version 0 of 1", "db", "migrate", "down", "--module", "projects")
	step("module projects: sqlite schema version 1 of 1", "db", "migrate", "force", "1", "--module", "projects")
	if code, _, stderr := runIn(t, bin, dir, env, "db", "migrate", "up", "--module", "nope"); code == 0 || !strings.Contains(stderr, `no module "nope"`) {
		t.Fatalf("an unknown module: %d %s", code, stderr)
	}
}
