package main_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/db/dbtest"
)

// project runs the real indigo binary in a project folder, as a user would.
type project struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

// newProject runs `indigo init acme` in a temporary folder. The
// environment has no INDIGO_* variables, so no license or config leaks in.
func newProject(t *testing.T) *project {
	t.Helper()
	bin := buildIndigo(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INDIGO_") {
			env = append(env, kv)
		}
	}
	root := t.TempDir()
	p := &project{t: t, bin: bin, dir: root, env: env}
	out := p.run("init", "acme")
	p.dir = filepath.Join(root, "acme")
	for _, want := range []string{"indigo.toml: created", "Makefile: created", "db/migrations/sqlite/: created", "plugins/.gitignore: created"} {
		if !strings.Contains(out, want) {
			t.Fatalf("init output lacks %q:\n%s", want, out)
		}
	}
	return p
}

func (p *project) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(p.bin, args...)
	cmd.Dir, cmd.Env = p.dir, p.env
	return cmd
}

func (p *project) run(args ...string) string {
	p.t.Helper()
	out, err := p.cmd(args...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("indigo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (p *project) fails(args ...string) string {
	p.t.Helper()
	out, err := p.cmd(args...).CombinedOutput()
	if err == nil {
		p.t.Fatalf("indigo %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

func (p *project) read(rel string) []byte {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, rel))
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

func (p *project) write(rel, data string) {
	p.t.Helper()
	path := filepath.Join(p.dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// plugins lists plugins/, temporary files included.
func (p *project) plugins() []string {
	p.t.Helper()
	entries, err := os.ReadDir(filepath.Join(p.dir, "plugins"))
	if err != nil {
		p.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != "README.md" && e.Name() != ".gitignore" {
			names = append(names, e.Name())
		}
	}
	return names
}

// refused runs a command that must fail, leave indigo.toml byte-identical
// and plugins/ as it was, and say each of want.
func (p *project) refused(args []string, want ...string) {
	p.t.Helper()
	cfg, plugins := p.read("indigo.toml"), strings.Join(p.plugins(), ",")
	out := p.fails(args...)
	for _, w := range want {
		if !strings.Contains(out, w) {
			p.t.Errorf("indigo %s: output lacks %q:\n%s", strings.Join(args, " "), w, out)
		}
	}
	if !bytes.Equal(p.read("indigo.toml"), cfg) {
		p.t.Errorf("indigo %s changed indigo.toml", strings.Join(args, " "))
	}
	if got := strings.Join(p.plugins(), ","); got != plugins {
		p.t.Errorf("indigo %s changed plugins/: %q, was %q", strings.Join(args, " "), got, plugins)
	}
}

// TestProjectWorkflow is the whole path of a new project: init, core-api in
// development mode, a scaffolded module built and listed, then serve, and a
// key with the module's scope reaches its route while one without is 403.
func TestProjectWorkflow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and a module")
	}
	p := newProject(t)

	out := p.run("add", "core-api", "--dev")
	for _, want := range []string{"[1/7] license: development mode", "api.enabled = true", "api.dev = true",
		"migrations: installed", "files into db/migrations/sqlite", "nothing to generate (no db/sqlc.yaml)", "[7/7] db migrate up: sqlite schema version"} {
		if !strings.Contains(out, want) {
			t.Errorf("add core-api --dev lacks %q:\n%s", want, out)
		}
	}
	cfg := p.read("indigo.toml")
	if !bytes.Contains(cfg, []byte("enabled = true\ndev = true\n")) || !bytes.Contains(cfg, []byte("[api.deps]\nresolve_org_id = \"local\"\n# deduct_api_call_token = \"subscriptions\"\n")) {
		t.Fatalf("indigo.toml after add core-api:\n%s", cfg)
	}
	for _, f := range []string{"go.mod", "go.sum", "cmd/acme-host/main.go", ".indigo/src/sdk/sdk.go", "db/migrations/sqlite/000001_core_api.up.sql"} {
		if _, err := os.Stat(filepath.Join(p.dir, f)); err != nil {
			t.Errorf("add core-api wrote no %s", f)
		}
	}
	out = p.run("add", "core-api", "--dev")
	for _, want := range []string{"indigo.toml unchanged", ".indigo/src unchanged", "wiring: unchanged", "migrations: unchanged", ", unchanged"} {
		if !strings.Contains(out, want) {
			t.Errorf("second add core-api --dev lacks %q:\n%s", want, out)
		}
	}
	if !bytes.Equal(p.read("indigo.toml"), cfg) {
		t.Fatal("the second add core-api changed indigo.toml")
	}

	out = p.run("module", "new", "reports", "--scope", "reports:read")
	if !strings.Contains(out, "modules/reports/main.go: created") || !strings.Contains(out, "modules/reports/store: generated by sqlc") ||
		!strings.Contains(out, "go mod tidy: done") {
		t.Fatalf("module new:\n%s", out)
	}
	// The scaffold's own tests pass as written (on PostgreSQL too when the
	// URL is set), and make generate reproduces its sqlc code.
	moduleDir := filepath.Join(p.dir, "modules", "reports")
	gotest := exec.Command("go", "test", "./...")
	gotest.Dir, gotest.Env = moduleDir, os.Environ()
	if b, err := gotest.CombinedOutput(); err != nil {
		t.Fatalf("go test in the scaffold: %v\n%s", err, b)
	}
	generated := p.read("modules/reports/store/queries.sql.go")
	regen := exec.Command("make", "generate")
	regen.Dir = moduleDir
	if b, err := regen.CombinedOutput(); err != nil || !bytes.Equal(p.read("modules/reports/store/queries.sql.go"), generated) {
		t.Fatalf("make generate in the scaffold: %v (same output: %v)\n%s", err, bytes.Equal(p.read("modules/reports/store/queries.sql.go"), generated), b)
	}
	p.fails("module", "new", "reports", "--scope", "reports:read")
	if out := p.fails("module", "new", "other", "--scope", "reports:read"); !strings.Contains(out, `"other:"`) {
		t.Fatalf("a scope outside the module's prefix: %s", out)
	}

	// No host listens on the address add checks (a developer's make run may
	// be on the default one).
	firstAdd := p.cmd("add", "./modules/reports")
	firstAdd.Env = append(firstAdd.Env, "INDIGO_SERVER_ADDR="+freeAddr(t))
	b, err := firstAdd.CombinedOutput()
	if err != nil {
		t.Fatalf("add ./modules/reports: %v\n%s", err, b)
	}
	out = string(b)
	if !strings.Contains(out, "installed plugins/reports") || !strings.Contains(out, "added [[modules]] reports") ||
		!strings.Contains(out, "a host that is already running needs a restart") {
		t.Fatalf("add ./modules/reports:\n%s", out)
	}
	cfg = p.read("indigo.toml")
	bin := p.read("plugins/reports")
	if !bytes.Contains(cfg, []byte("[[modules]]\nname = \"reports\"\npath = \"plugins/reports\"\nsha256 = \"")) {
		t.Fatalf("indigo.toml:\n%s", cfg)
	}
	out = p.run("add", "./modules/reports")
	if !strings.Contains(out, "record: reports: unchanged") {
		t.Fatalf("second add:\n%s", out)
	}
	if !bytes.Equal(p.read("indigo.toml"), cfg) || !bytes.Equal(p.read("plugins/reports"), bin) {
		t.Fatal("the second add changed indigo.toml or the binary")
	}
	if out := p.run("modules", "list"); !strings.Contains(out, "reports") || !strings.Contains(out, "ok") || !strings.Contains(out, "GET /reports") {
		t.Fatalf("modules list:\n%s", out)
	}

	// The project's own migration, beside core-api's: serve applies both.
	p.write("db/migrations/sqlite/100000_reports.up.sql", "CREATE TABLE reports_cache (id TEXT PRIMARY KEY);\n")
	p.write("db/migrations/sqlite/100000_reports.down.sql", "DROP TABLE reports_cache;\n")

	// serve, on a free port, as `make run` would.
	addr := serveProject(t, p)

	if st := p.run("db", "migrate", "status"); !strings.Contains(st, "schema version 100000 of 100000 (db/migrations/sqlite)") {
		t.Fatalf("the project's migration was not applied: %s", st)
	}
	callScaffolded(t, p, addr)

	// A module added while the host runs is not served until a restart,
	// and add says so.
	p.run("module", "new", "notes", "--scope", "notes:read")
	add := p.cmd("add", "./modules/notes")
	add.Env = append(add.Env, "INDIGO_SERVER_ADDR="+addr)
	added, err := add.CombinedOutput()
	if err != nil || !strings.Contains(string(added), "restart needed: the host running at http://"+addr) {
		t.Fatalf("add while the host runs: %v\n%s", err, added)
	}

	// The same project on PostgreSQL: reports gets a schema of its own
	// there, made by its migrations, and serves the same calls.
	pg := *p
	pg.env = append(append([]string{}, p.env...), "INDIGO_DATABASE_DRIVER=postgres", "INDIGO_DATABASE_URL="+dbtest.URL(t, "postgres"))
	callScaffolded(t, &pg, serveProject(t, &pg))
}

// serveProject runs `indigo serve` in the project on a free port until the
// test ends, and returns the address once it listens.
func serveProject(t *testing.T, p *project) string {
	t.Helper()
	addr := freeAddr(t)
	serve := p.cmd("serve")
	serve.Env = append(serve.Env, "INDIGO_SERVER_ADDR="+addr)
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	serve.Stderr = &stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = serve.Process.Kill()
		}
	})
	listening := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Indigo is listening on ") && !ok {
				ok = true
				listening <- true
			}
		}
		if !ok {
			listening <- false
		}
		exited <- serve.Wait()
	}()
	select {
	case ok := <-listening:
		if !ok {
			t.Fatalf("serve exited: %s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start: %s", stderr.String())
	}
	return addr
}

// callScaffolded creates an item through the scaffolded reports module and
// lists it back, with a key of a new org; a key without the scope gets 403.
func callScaffolded(t *testing.T, p *project, addr string) {
	t.Helper()
	org := strings.TrimSpace(p.run("orgs", "create", "Acme"))
	key := func(scopes string) string {
		var created struct {
			RawKey string `json:"raw_key"`
		}
		out, err := p.cmd("keys", "create", "--org", org, "--name", "k-"+scopes, "--scopes", scopes, "--json").Output()
		if err != nil || json.Unmarshal(out, &created) != nil || created.RawKey == "" {
			t.Fatalf("keys create --scopes %s: %v %s", scopes, err, out)
		}
		return created.RawKey
	}
	withScope, without := key("reports:read"), key("api-keys:read")
	url := "http://" + addr + "/api/v2/reports"
	call := func(method, body string) (int, []byte) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+withScope)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, body := call("POST", `{"name":"first report"}`); code != 201 || !strings.Contains(string(body), `"org_id":"`+org+`"`) {
		t.Fatalf("POST /api/v2/reports: %d %s", code, body)
	}
	if code, body := call("GET", ""); code != 200 || !strings.Contains(string(body), `"name":"first report"`) {
		t.Fatalf("GET /api/v2/reports: %d %s", code, body)
	}
	if code := get(t, url, without); code != 403 {
		t.Fatalf("GET /api/v2/reports without reports:read: %d", code)
	}
}

// add core-api without a license (and without --dev) changes nothing.
func TestAddCoreAPINeedsLicense(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	p := newProject(t)
	p.refused([]string{"add", "core-api"}, "license", "no license", "--dev", "nothing was changed")
	for _, f := range []string{"go.mod", ".indigo", "cmd", "db/migrations/sqlite/000001_core_api.up.sql", "data"} {
		if _, err := os.Stat(filepath.Join(p.dir, f)); err == nil {
			t.Errorf("a refused add core-api wrote %s", f)
		}
	}
}

// A module that does not build, collides with core's scopes, declares a
// scope outside its prefix, or a config that does not load: add refuses,
// and indigo.toml and plugins/ stay as they were.
func TestAddRefusesBadModules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and modules")
	}
	p := newProject(t)
	p.run("module", "new", "broken", "--scope", "broken:read")
	p.write("modules/broken/main.go", "package main\n\nfunc main() { undefined() }\n")
	p.refused([]string{"add", "./modules/broken"}, "build modules/broken", "undefined")

	// A module named after core's api-keys scopes: module new refuses the
	// name, so make one by hand from a scaffold.
	if out := p.fails("module", "new", "api-keys", "--scope", "api-keys:read"); !strings.Contains(out, "core owns") {
		t.Fatalf("module new api-keys: %s", out)
	}
	p.run("module", "new", "dup", "--scope", "dup:read")
	err := filepath.WalkDir(filepath.Join(p.dir, "modules", "dup"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(p.dir, "modules", "dup"), path)
		p.write("modules/api-keys/"+filepath.ToSlash(rel), strings.ReplaceAll(string(p.read("modules/dup/"+filepath.ToSlash(rel))), "dup", "api-keys"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p.refused([]string{"add", "./modules/api-keys"}, `module name "api-keys" is the host's own`)
	if out := p.fails("module", "new", "keys", "--scope", "keys:read"); !strings.Contains(out, "is the host's own") {
		t.Fatalf("module new keys: %s", out)
	}

	// A binary whose manifest claims another module's scope (the SDK would
	// refuse to serve it, so it prints its manifest by hand).
	p.write("modules/rogue/go.mod", "module example.com/rogue\n\ngo 1.26\n")
	p.write("modules/rogue/main.go", `package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "describe" {
		fmt.Println(`+"`"+`{"name":"rogue","version":"1.0.0","protocol":1,"scopes":[{"id":"reports:read","label":"x"}],"routes":[{"method":"GET","path":"/rogue","scopes":["reports:read"],"cost":1}]}`+"`"+`)
	}
}
`)
	p.refused([]string{"add", "./modules/rogue"}, `scope "reports:read" must be "rogue:"`)

	// The manifest's name must be the folder's.
	p.refused([]string{"add", "--name", "other", "./modules/dup"}, `the binary says it is module "dup", not "other"`)

	// A config that no longer loads stops everything first.
	good := p.read("indigo.toml")
	p.write("indigo.toml", string(good)+"\n[api]\nbogus = 1\n")
	p.refused([]string{"add", "./modules/dup"}, "indigo.toml", "nothing was changed")
	p.write("indigo.toml", string(good))

	// The good one still goes in, and nothing was left in plugins/.
	p.run("add", "./modules/dup")
	if got := strings.Join(p.plugins(), ","); got != "dup" {
		t.Fatalf("plugins/ holds %q", got)
	}
}

// add PATH@VERSION fetches a published module through GOPROXY (here a
// file:// proxy the test writes, in front of the real one for the SDK's
// dependencies) and builds it against the project's .indigo/src.
func TestAddPublishedModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and a module")
	}
	p := newProject(t)
	proxy := t.TempDir()
	writeProxyModule(t, proxy, "example.com/hello", "v1.0.0", map[string]string{
		"go.mod": "module example.com/hello\n\ngo 1.26\n\nrequire github.com/indigo-hq/indigo v0.0.0\n",
		"main.go": `// Command hello is a published Indigo module.
package main

import (
	"net/http"

	"github.com/indigo-hq/indigo/sdk"
)

func main() {
	sdk.Serve(sdk.Module{
		Name:    "hello",
		Version: "1.0.0",
		Scopes:  []sdk.Scope{{ID: "hello:read", Label: "Read hello"}},
		Routes:  []sdk.Route{{Method: "GET", Path: "/hello", Scopes: []string{"hello:read"}, Cost: 1}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sdk.JSON(w, http.StatusOK, map[string]string{"hello": "world"})
		}),
	})
}
`,
	})
	orig, err := exec.Command("go", "env", "GOPROXY").Output()
	if err != nil {
		t.Fatal(err)
	}
	p.env = append(p.env, "GOPROXY=file://"+filepath.ToSlash(proxy)+","+strings.TrimSpace(string(orig)), "GONOSUMDB=example.com")

	out := p.run("add", "example.com/hello@v1.0.0")
	if !strings.Contains(out, "fetch: go get example.com/hello@v1.0.0") || !strings.Contains(out, "describe: hello 1.0.0") || !strings.Contains(out, "added [[modules]] hello") {
		t.Fatalf("add example.com/hello@v1.0.0:\n%s", out)
	}
	cfg := p.read("indigo.toml")
	if !bytes.Contains(cfg, []byte("# source = \"example.com/hello@v1.0.0\"\n[[modules]]\nname = \"hello\"\npath = \"plugins/hello\"\nsha256 = \"")) {
		t.Fatalf("indigo.toml:\n%s", cfg)
	}
	if out := p.run("add", "example.com/hello@v1.0.0"); !strings.Contains(out, "record: hello: unchanged") {
		t.Fatalf("second add:\n%s", out)
	}
	if !bytes.Equal(p.read("indigo.toml"), cfg) {
		t.Fatal("the second add changed indigo.toml")
	}
	if out := p.run("modules", "list", "--json"); !strings.Contains(out, `"status": "ok"`) || !strings.Contains(out, `"GET /hello"`) {
		t.Fatalf("modules list:\n%s", out)
	}
	p.refused([]string{"add", "example.com/missing@v1.0.0"}, "fetch example.com/missing@v1.0.0")
}

// writeProxyModule lays out one module version as a GOPROXY serves it:
// <path>/@v/list, <version>.info, .mod and .zip (files under
// <path>@<version>/).
func writeProxyModule(t *testing.T, proxy, path, version string, files map[string]string) {
	t.Helper()
	dir := filepath.Join(proxy, filepath.FromSlash(path), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for name, body := range files {
		w, err := zw.Create(path + "@" + version + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{
		"list":            []byte(version + "\n"),
		version + ".info": []byte(`{"Version":"` + version + `","Time":"2026-01-01T00:00:00Z"}`),
		version + ".mod":  []byte(files["go.mod"]),
		version + ".zip":  zb.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// add core-subscriptions writes the first-party module from the source the
// binary embeds, adds it and makes it the metering provider, once.
func TestAddCoreSubscriptions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and a module")
	}
	p := newProject(t)
	out := p.run("add", "core-subscriptions")
	for _, want := range []string{"modules/subscriptions: wrote", "go mod tidy: done", "describe: subscriptions", "added [[modules]] subscriptions", `api.deps.deduct_api_call_token = "subscriptions"`} {
		if !strings.Contains(out, want) {
			t.Errorf("add core-subscriptions lacks %q:\n%s", want, out)
		}
	}
	cfg := p.read("indigo.toml")
	if !bytes.Contains(cfg, []byte("[api.deps]\ndeduct_api_call_token = \"subscriptions\"\n")) || !bytes.Contains(cfg, []byte("[[modules]]\nname = \"subscriptions\"\n")) {
		t.Fatalf("indigo.toml:\n%s", cfg)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "modules/subscriptions/main_test.go")); err == nil {
		t.Error("tests were written out")
	}
	out = p.run("add", "core-subscriptions")
	if !strings.Contains(out, "exists, kept as it is") || !strings.Contains(out, "record: subscriptions: unchanged") {
		t.Fatalf("second add core-subscriptions:\n%s", out)
	}
	if !bytes.Equal(p.read("indigo.toml"), cfg) {
		t.Fatal("the second add changed indigo.toml")
	}
}
