package project

import (
	"bytes"
	"go/format"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/sdk"
	"github.com/indigo-hq/indigo/sdk/rpc"
)

const sample = `# Top comment, kept.
[server]
addr = "127.0.0.1:8080"   # where to listen

[api]
# core-api
enabled = false           # turned on by indigo add core-api
key_prefix = "indigo_sk"
tricky = """
[not.a.table]
enabled = "in a string"
"""
list = [
  "a", # a comment inside
  ["[x]", 'y'],
]

# About identity, below.
[identity]
provider = "local"

# [[modules]]
# name = "commented"

# source = "example.com/old@v0.1.0"
[[modules]]
name = "projects"
path = "plugins/projects"   # built by make modules
sha256 = ""
timeout = "5s"
[modules.config]
greeting = "hello"

[[modules]]
name = 'cms'
path = "plugins/cms"
`

func mustSet(t *testing.T, d *Doc, table, key, value string, opts SetOptions) bool {
	t.Helper()
	changed, err := d.Set(table, key, value, opts)
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

// linesDiff returns the lines of b that are not in a, in order; it is
// enough for edits that add or change a few lines.
func changedLines(a, b string) []string {
	have := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		have[l]++
	}
	var out []string
	for _, l := range strings.Split(b, "\n") {
		if have[l] > 0 {
			have[l]--
			continue
		}
		out = append(out, l)
	}
	return out
}

func TestRoundTripIsByteIdentical(t *testing.T) {
	shipped, err := os.ReadFile("../../../../indigo.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{sample, string(shipped), "", "no final newline = 1", strings.ReplaceAll(sample, "\n", "\r\n")} {
		if got := string(ParseDoc([]byte(in)).Bytes()); got != in {
			t.Errorf("round trip changed the file:\n%q\n%q", in, got)
		}
	}
}

func TestSetKeepsCommentsAndOtherLines(t *testing.T) {
	d := ParseDoc([]byte(sample))
	if !mustSet(t, d, "api", "enabled", "true", SetOptions{}) {
		t.Fatal("no change reported")
	}
	got := string(d.Bytes())
	want := strings.Replace(sample, "enabled = false           # turned on", "enabled = true           # turned on", 1)
	if got != want {
		t.Fatalf("got:\n%s", got)
	}
	// The key in the multi-line string is not the table's key.
	if strings.Contains(got, `enabled = "in a string"`) == false {
		t.Fatal("the multi-line string was edited")
	}
	if mustSet(t, d, "api", "enabled", "true", SetOptions{}) || string(d.Bytes()) != want {
		t.Fatal("setting the same value changed the file")
	}
	if v, ok := d.Lookup("api", "key_prefix"); !ok || v != `"indigo_sk"` {
		t.Fatalf("Lookup = %q %v", v, ok)
	}
	if _, ok := d.Lookup("api", "not_there"); ok {
		t.Fatal("Lookup found a missing key")
	}
}

func TestSetAddsKeyAfterTheTablesKeys(t *testing.T) {
	d := ParseDoc([]byte(sample))
	mustSet(t, d, "api", "dev", "true", SetOptions{})
	got := string(d.Bytes())
	// After the last value (the multi-line list), before the blank line and
	// the comment that belongs to [identity].
	if !strings.Contains(got, "  [\"[x]\", 'y'],\n]\ndev = true\n\n# About identity, below.\n[identity]") {
		t.Fatalf("got:\n%s", got)
	}
	if c := changedLines(sample, got); len(c) != 1 || c[0] != "dev = true" {
		t.Fatalf("changed lines %q", c)
	}
	var v struct {
		API struct {
			Dev    bool
			Tricky string
			List   []any
		} `toml:"api"`
	}
	if _, err := toml.Decode(got, &v); err != nil || !v.API.Dev || !strings.Contains(v.API.Tricky, "[not.a.table]") || len(v.API.List) != 2 {
		t.Fatalf("decoded %+v %v", v, err)
	}
}

func TestSetAddsMissingTable(t *testing.T) {
	d := ParseDoc([]byte(sample))
	mustSet(t, d, "api.deps", "resolve_org_id", Quote("local"), SetOptions{})
	got := string(d.Bytes())
	if !strings.Contains(got, "]\n\n[api.deps]\nresolve_org_id = \"local\"\n\n# About identity") {
		t.Fatalf("child table not placed after its parent's keys:\n%s", got)
	}
	if _, err := d.SuggestKey("api.deps", "deduct_api_call_token", Quote("subscriptions")); err != nil {
		t.Fatal(err)
	}
	if added, _ := d.SuggestKey("api.deps", "deduct_api_call_token", Quote("subscriptions")); added {
		t.Fatal("SuggestKey added the hint twice")
	}
	got = string(d.Bytes())
	if !strings.Contains(got, "[api.deps]\nresolve_org_id = \"local\"\n# deduct_api_call_token = \"subscriptions\"\n\n") {
		t.Fatalf("hint:\n%s", got)
	}
	// Uncomment turns the hint into the key, in place.
	mustSet(t, d, "api.deps", "deduct_api_call_token", Quote("subscriptions"), SetOptions{Uncomment: true})
	got = string(d.Bytes())
	if !strings.Contains(got, "[api.deps]\nresolve_org_id = \"local\"\ndeduct_api_call_token = \"subscriptions\"\n\n") {
		t.Fatalf("uncomment:\n%s", got)
	}

	// No parent: at the end, after a blank line.
	d = ParseDoc([]byte("[server]\naddr = \"x\""))
	mustSet(t, d, "v1", "api_key", Quote(""), SetOptions{})
	if got := string(d.Bytes()); got != "[server]\naddr = \"x\"\n\n[v1]\napi_key = \"\"\n" {
		t.Fatalf("got %q", got)
	}
	d = ParseDoc(nil)
	mustSet(t, d, "api", "enabled", "true", SetOptions{})
	if got := string(d.Bytes()); got != "[api]\nenabled = true\n" {
		t.Fatalf("empty file: %q", got)
	}
}

func TestSetRefusesMultiLineValue(t *testing.T) {
	d := ParseDoc([]byte(sample))
	if _, err := d.Set("api", "list", "[]", SetOptions{}); err == nil {
		t.Fatal("a multi-line value was replaced")
	}
}

func TestCRLFStaysCRLF(t *testing.T) {
	in := strings.ReplaceAll(sample, "\n", "\r\n")
	d := ParseDoc([]byte(in))
	mustSet(t, d, "api", "dev", "true", SetOptions{})
	mustSet(t, d, "api", "enabled", "true", SetOptions{})
	if _, err := d.SetModule(ModuleEntry{Name: "reports", Path: "plugins/reports", SHA256: strings.Repeat("a", 64)}); err != nil {
		t.Fatal(err)
	}
	got := string(d.Bytes())
	if strings.Count(got, "\n") != strings.Count(got, "\r\n") {
		t.Fatalf("mixed line endings:\n%q", got)
	}
}

func TestSetModule(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	d := ParseDoc([]byte(sample))
	if got := d.Modules(); strings.Join(got, ",") != "projects,cms" {
		t.Fatalf("Modules = %v", got)
	}

	// An existing block: only sha256 changes; the comment above it, its
	// other keys, its inline comment and its config table stay.
	changed, err := d.SetModule(ModuleEntry{Name: "projects", Path: "plugins/projects", SHA256: sum, Source: "example.com/old@v0.1.0"})
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	got := string(d.Bytes())
	if c := changedLines(sample, got); len(c) != 1 || c[0] != `sha256 = "`+sum+`"` {
		t.Fatalf("changed lines %q", c)
	}
	if again, _ := d.SetModule(ModuleEntry{Name: "projects", Path: "plugins/projects", SHA256: sum, Source: "example.com/old@v0.1.0"}); again || string(d.Bytes()) != got {
		t.Fatal("the same entry changed the file")
	}

	// The source comment follows the entry.
	if _, err := d.SetModule(ModuleEntry{Name: "projects", Path: "plugins/projects", SHA256: sum, Source: "example.com/new@v0.2.0"}); err != nil {
		t.Fatal(err)
	}
	if got := string(d.Bytes()); !strings.Contains(got, "# source = \"example.com/new@v0.2.0\"\n[[modules]]\nname = \"projects\"") || strings.Contains(got, "old@") {
		t.Fatalf("source update:\n%s", got)
	}
	if _, err := d.SetModule(ModuleEntry{Name: "projects", Path: "plugins/projects", SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	if got := string(d.Bytes()); strings.Contains(got, "# source =") {
		t.Fatalf("a local module kept its source comment:\n%s", got)
	}

	// A block without sha256 (name in a literal string) gets the key.
	if _, err := d.SetModule(ModuleEntry{Name: "cms", Path: "plugins/cms", SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	if got := string(d.Bytes()); !strings.HasSuffix(got, "name = 'cms'\npath = \"plugins/cms\"\nsha256 = \""+sum+"\"\n") {
		t.Fatalf("cms:\n%s", got)
	}

	// A new module goes at the end, with its source.
	before := string(d.Bytes())
	if _, err := d.SetModule(ModuleEntry{Name: "hello", Path: "plugins/hello", SHA256: sum, Source: "example.com/hello@v1.0.0"}); err != nil {
		t.Fatal(err)
	}
	want := before + "\n# source = \"example.com/hello@v1.0.0\"\n[[modules]]\nname = \"hello\"\npath = \"plugins/hello\"\nsha256 = \"" + sum + "\"\n"
	if got := string(d.Bytes()); got != want {
		t.Fatalf("append:\n%s", got)
	}
	if got := d.Modules(); strings.Join(got, ",") != "projects,cms,hello" {
		t.Fatalf("Modules = %v", got)
	}

	// The commented-out example block is not a module.
	d = ParseDoc([]byte("# [[modules]]\n# name = \"x\"\n"))
	if _, err := d.SetModule(ModuleEntry{Name: "x", Path: "plugins/x", SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	if got := string(d.Bytes()); got != "# [[modules]]\n# name = \"x\"\n\n[[modules]]\nname = \"x\"\npath = \"plugins/x\"\nsha256 = \""+sum+"\"\n" {
		t.Fatalf("got %q", got)
	}
}

func TestQuoteDecodes(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "tab\tnew\nline\x01", "ünï"} {
		var v struct{ V string }
		if _, err := toml.Decode("V = "+Quote(s), &v); err != nil || v.V != s {
			t.Errorf("Quote(%q) = %s decodes to %q, %v", s, Quote(s), v.V, err)
		}
	}
}

// The edits give a file core/config loads, with the values they set.
func TestEditedShippedConfigLoads(t *testing.T) {
	shipped, err := os.ReadFile("../../../../indigo.toml")
	if err != nil {
		t.Fatal(err)
	}
	d := ParseDoc(shipped)
	mustSet(t, d, "api", "enabled", "true", SetOptions{})
	mustSet(t, d, "api", "dev", "true", SetOptions{})
	sum := strings.Repeat("0", 64)
	if _, err := d.SetModule(ModuleEntry{Name: "reports", Path: "plugins/reports", SHA256: sum, Source: "example.com/reports@v1.2.3"}); err != nil {
		t.Fatal(err)
	}
	mustSet(t, d, "api.deps", "deduct_api_call_token", Quote("reports"), SetOptions{Uncomment: true})
	dir := t.TempDir()
	path := filepath.Join(dir, "indigo.toml")
	if err := os.WriteFile(path, shipped, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SaveConfig(path, d.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.API.Enabled || !cfg.API.Dev || cfg.API.Deps.DeductAPICallToken != "reports" || len(cfg.Modules) != 1 ||
		cfg.Modules[0].Name != "reports" || cfg.Modules[0].SHA256 != sum || cfg.Modules[0].Path != filepath.Join(dir, "plugins/reports") {
		t.Fatalf("loaded %+v %+v", cfg.API, cfg.Modules)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode())
	}
	if c := changedLines(string(shipped), string(d.Bytes())); len(c) > 10 {
		t.Fatalf("too much changed: %q", c)
	}
}

func TestSaveConfigRefusesWhatWouldNotLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "indigo.toml")
	orig := []byte("[api]\nenabled = true\n")
	if err := os.WriteFile(path, orig, 0o640); err != nil {
		t.Fatal(err)
	}
	d := ParseDoc(orig)
	// A hook naming a module that is not listed does not validate.
	mustSet(t, d, "api.deps", "deduct_api_call_token", Quote("nobody"), SetOptions{})
	err := SaveConfig(path, d.Bytes(), nil)
	if err == nil || !strings.Contains(err.Error(), "api.deps.deduct_api_call_token") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, orig) {
		t.Fatalf("the file changed: %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left files behind: %v", entries)
	}
	// An unknown key is refused too.
	if err := SaveConfig(path, []byte("[api]\nenabeld = true\n"), nil); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("err = %v", err)
	}
	if err := SaveConfig(path, []byte("[api]\nenabled = false\n"), nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640", st.Mode())
	}
}

func TestCheckModuleArgs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scopes []string
		ok     bool
	}{
		{"reports", []string{"reports:read"}, true},
		{"reports", []string{"reports:read", "reports:write"}, true},
		{"Reports", []string{"Reports:read"}, false},
		{"r", []string{"r:read"}, false},
		{"reports", nil, false},
		{"reports", []string{"other:read"}, false},
		{"reports", []string{"reports:"}, false},
		{"reports", []string{"reports:read", "reports:read"}, false},
		{"api-keys", []string{"api-keys:read"}, false},
	} {
		if err := CheckModuleArgs(tc.name, tc.scopes); (err == nil) != tc.ok {
			t.Errorf("CheckModuleArgs(%q, %v) = %v", tc.name, tc.scopes, err)
		}
	}
	if got := ScopeLabel("reports:read"); got != "Read reports" {
		t.Errorf("ScopeLabel = %q", got)
	}
}

func TestModuleFilesAreGoFormatted(t *testing.T) {
	files, err := ModuleFiles("reports", "example.com/acme/modules/reports", []string{"reports:read", "reports:write"})
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, f := range files {
		paths[f.Path] = string(f.Data)
	}
	for _, want := range []string{"main.go", "main_test.go", "migrations/sqlite/000001_items.up.sql", "migrations/postgres/000001_items.up.sql", "queries.sql", "sqlc.yaml", "Makefile"} {
		if _, ok := paths[want]; !ok {
			t.Errorf("no %s", want)
		}
	}
	for _, f := range []string{"main.go", "main_test.go"} {
		if formatted, err := format.Source([]byte(paths[f])); err != nil || string(formatted) != paths[f] {
			t.Errorf("%s is not gofmt'ed: %v", f, err)
		}
	}
	if !strings.Contains(paths["main.go"], `Scopes: []string{"reports:write"}, Cost: 1, Handler: http.HandlerFunc(m.create)`) ||
		!strings.Contains(paths["main.go"], `"example.com/acme/modules/reports/store"`) {
		t.Errorf("main.go:\n%s", paths["main.go"])
	}
	if !strings.Contains(paths["Makefile"], "github.com/sqlc-dev/sqlc/cmd/sqlc@v") {
		t.Errorf("the Makefile pins no sqlc version:\n%s", paths["Makefile"])
	}
}

func TestCheckScopes(t *testing.T) {
	man := func(name string, scopes ...string) sdk.Manifest {
		m := sdk.Manifest{Name: name, Version: "1.0.0", Protocol: rpc.ProtocolVersion}
		for _, s := range scopes {
			m.Scopes = append(m.Scopes, sdk.Scope{ID: s, Label: s})
		}
		m.Routes = []sdk.Route{{Method: "GET", Path: "/" + name, Scopes: []string{scopes[0]}}}
		return m
	}
	reports := man("reports", "reports:read")
	if err := sdk.CheckManifest("reports", reports); err != nil {
		t.Fatal(err)
	}
	if err := sdk.CheckManifest("other", reports); err == nil {
		t.Fatal("a name mismatch passed")
	}
	if err := sdk.CheckManifest("rogue", man("rogue", "reports:read")); err == nil || !strings.Contains(err.Error(), `"rogue:"`) {
		t.Fatalf("a scope outside the prefix: %v", err)
	}
	if _, err := CheckScopes(man("api-keys", "api-keys:read"), nil); err == nil || !strings.Contains(err.Error(), "scope collision") {
		t.Fatalf("core's prefix: %v", err)
	}
	others := []Other{{Name: "projects", Manifest: ptr(man("projects", "projects:read"))}}
	if w, err := CheckScopes(reports, others); err != nil || len(w) != 0 {
		t.Fatal(w, err)
	}
	// A route may need another module's scope, which must exist.
	uses := reports
	uses.Routes = []sdk.Route{{Method: "GET", Path: "/reports", Scopes: []string{"projects:read"}}}
	if _, err := CheckScopes(uses, others); err != nil {
		t.Fatal(err)
	}
	uses.Routes[0].Scopes = []string{"projects:write"}
	if _, err := CheckScopes(uses, others); err == nil {
		t.Fatal("an undeclared route scope passed")
	}
	// When another module cannot be described, that is only a warning.
	w, err := CheckScopes(uses, append(others, Other{Name: "cms", Err: os.ErrNotExist}))
	if err != nil || len(w) != 2 {
		t.Fatal(w, err)
	}
}

func ptr[T any](v T) *T { return &v }
