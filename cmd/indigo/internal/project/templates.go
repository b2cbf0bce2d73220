package project

import (
	"bytes"
	"fmt"
	"go/format"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"
)

// InitFile is one file `indigo init` writes.
type InitFile struct {
	Path string // slash-separated, relative to the project
	Data string
	Mode uint32
}

// InitDirs are the folders `indigo init` makes, in order.
var InitDirs = []string{"db/migrations/sqlite", "db/migrations/postgres", "db/queries", "modules", "plugins"}

// InitFiles are the files `indigo init` writes, in order.
func InitFiles() []InitFile {
	return []InitFile{
		{Path: "indigo.toml", Data: configTemplate, Mode: 0o644},
		{Path: "Makefile", Data: makefileTemplate, Mode: 0o644},
		{Path: ".gitignore", Data: gitignoreTemplate, Mode: 0o644},
		{Path: "db/queries/README.md", Data: queriesReadme, Mode: 0o644},
		{Path: "plugins/README.md", Data: pluginsReadme, Mode: 0o644},
		{Path: "plugins/.gitignore", Data: pluginsGitignore, Mode: 0o644},
	}
}

const configTemplate = `# Indigo project configuration, written by ` + "`indigo init`" + `. Runnable as is:
# ` + "`indigo serve`" + ` keeps SQLite in ./data and migrates it at start. Every key
# can be overridden by INDIGO_<SECTION>_<KEY>, e.g.
# INDIGO_SERVER_ADDR=127.0.0.1:9000 or INDIGO_DATABASE_DRIVER=postgres.
#
# ` + "`indigo add`" + ` edits this file line by line and keeps your comments.

[server]
addr = "127.0.0.1:8080"
# public_url = "https://api.example.com"   # base of printed links (default: http://<addr>)
data_dir = "data"
shutdown_timeout = "10s"
trust_proxy = false        # read the client IP from X-Forwarded-For

[database]
driver = "sqlite"          # "sqlite" (embedded default) or "postgres"
url = "data/indigo.db"     # SQLite: a path, relative to this file; PostgreSQL: postgres://...
auto_migrate = true

[redis]
url = ""                   # shared limits across hosts (not used yet)

[api]
# core-api: organization-scoped API keys and the scoped, rate-limited
# /api/v2. ` + "`indigo add core-api`" + ` turns it on, with a license, or with --dev
# for loopback-only development without one.
enabled = false
dev = false
key_prefix = "indigo_sk"
roll_grace = "24h"         # how long a rolled key keeps working
default_rate_limit = "600/1m"   # applied at create when a key names none; "0" for none
log_retention = "720h"
change_poll_interval = "250ms"  # how often the host reads changes made by other processes
module_call_timeout = "10s"

[identity]
provider = "local"
session_ttl = "168h"
login_link_ttl = "15m"
default_org = "Default"
default_owner = "owner@localhost"

[v1]
api_key = ""               # the free read-only /api/v1 key (or INDIGO_V1_API_KEY); empty: /api/v1 is off

# Modules run as separate processes. ` + "`indigo module new NAME --scope NAME:read`" + `
# scaffolds one in modules/NAME; ` + "`indigo add ./modules/NAME`" + ` builds it into
# plugins/NAME and lists it below with its SHA-256 (a binary with another
# digest is refused). A module's [modules.config] table is handed to it.
`

const makefileTemplate = `# Indigo project. make run: start the host; make modules: rebuild and
# register every module in modules/; make test: test every module.
INDIGO ?= indigo
GO ?= go

.PHONY: run modules test

run:
	$(INDIGO) serve --config indigo.toml

modules:
	@for d in modules/*/; do \
		[ -f "$$d/go.mod" ] || continue; \
		$(INDIGO) add --config indigo.toml "./$${d%/}" || exit 1; \
	done

test:
	@for d in modules/*/; do \
		[ -f "$$d/go.mod" ] || continue; \
		echo "go test $$d"; (cd "$$d" && $(GO) test ./...) || exit 1; \
	done
`

const gitignoreTemplate = `# The database and the module binaries are local.
data/
plugins/*
!plugins/README.md
!plugins/.gitignore
`

const queriesReadme = `# db/queries

SQL queries for sqlc, one folder per engine (sqlite/, postgres/). Add a
db/sqlc.yaml next to this folder and ` + "`indigo db generate`" + ` generates Go code
from them against the schema in db/migrations/<engine>.
`

const pluginsReadme = `# plugins/

Module binaries, built by ` + "`indigo add ./modules/NAME`" + ` (or ` + "`make modules`" + `) and
listed in indigo.toml with their SHA-256. They are build output: git ignores
everything here but this file.
`

const pluginsGitignore = `# Module binaries are build output.
*
!.gitignore
!README.md
`

// ModuleNameRE is what a module name must match (the SDK's rule).
var ModuleNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,31}$`)

// CheckModuleArgs validates `indigo module new NAME --scope ...`.
func CheckModuleArgs(name string, scopes []string) error {
	if !ModuleNameRE.MatchString(name) {
		return fmt.Errorf("module name %q must match %s", name, ModuleNameRE)
	}
	if slices.Contains(CoreScopePrefixes(), name) {
		return fmt.Errorf("module name %q is taken: core owns the %s:* scopes", name, name)
	}
	if len(scopes) == 0 {
		return fmt.Errorf("give at least one --scope %s:read", name)
	}
	scopeRE := regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	for i, s := range scopes {
		action, ok := strings.CutPrefix(s, name+":")
		if !ok || !scopeRE.MatchString(action) {
			return fmt.Errorf("scope %q must be %q followed by a name such as read (lower case letters, digits, dashes)", s, name+":")
		}
		if slices.Contains(scopes[:i], s) {
			return fmt.Errorf("scope %q is given twice", s)
		}
	}
	return nil
}

// ScopeLabel is a default label: "reports:read" is "Read reports".
func ScopeLabel(id string) string {
	name, action, _ := strings.Cut(id, ":")
	r, n := utf8.DecodeRuneInString(action)
	return string(unicode.ToUpper(r)) + action[n:] + " " + name
}

type moduleData struct {
	Name   string
	Scopes []scopeData
	First  string
}

type scopeData struct{ ID, Label string }

func newModuleData(name string, scopes []string) moduleData {
	d := moduleData{Name: name, First: scopes[0]}
	for _, s := range scopes {
		d.Scopes = append(d.Scopes, scopeData{ID: s, Label: ScopeLabel(s)})
	}
	return d
}

var moduleMain = template.Must(template.New("main.go").Parse(`// Command {{.Name}} is an Indigo module. The host runs it as a separate
// process and forwards it the requests to its routes below /api/v2, after
// checking the caller's API key and scopes. Build it and list it in
// indigo.toml with:
//
//	indigo add ./modules/{{.Name}}
package main

import (
	"net/http"

	"github.com/indigo-hq/indigo/sdk"
)

func main() { sdk.Serve(newModule()) }

func newModule() sdk.Module {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{{.Name}}", hello)
	return sdk.Module{
		Name:    "{{.Name}}",
		Version: "0.1.0",
		Scopes: []sdk.Scope{
{{- range .Scopes}}
			{ID: "{{.ID}}", Label: "{{.Label}}"},
{{- end}}
		},
		Routes: []sdk.Route{
			{Method: "GET", Path: "/{{.Name}}", Scopes: []string{"{{.First}}"}, Cost: 1},
		},
		Handler: mux,
	}
}

// hello answers GET /api/v2/{{.Name}} with the organization of the API key
// that called it.
func hello(w http.ResponseWriter, r *http.Request) {
	caller, _ := sdk.CallerFrom(r.Context())
	sdk.JSON(w, http.StatusOK, map[string]string{"module": "{{.Name}}", "org_id": caller.OrgID})
}
`))

var moduleTest = template.Must(template.New("main_test.go").Parse(`package main

import (
	"net/http"
	"testing"

	"github.com/indigo-hq/indigo/sdk"
	"github.com/indigo-hq/indigo/sdk/sdktest"
)

// TestHello calls the route in memory, through the same wire the host uses.
func TestHello(t *testing.T) {
	h := sdktest.New(t, newModule())
	caller := sdk.Caller{OrgID: "org_test", KeyID: "key_test", Scopes: []string{"{{.First}}"}}
	resp := h.Do("GET", "/{{.Name}}", caller, nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("GET /{{.Name}}: %d %s", resp.Status, resp.Body)
	}
	var body struct {
		OrgID string ` + "`json:\"org_id\"`" + `
	}
	if err := resp.Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.OrgID != caller.OrgID {
		t.Fatalf("org_id = %q, want %q", body.OrgID, caller.OrgID)
	}
}
`))

// ModuleFiles are main.go and main_test.go of a new module, gofmt'ed.
func ModuleFiles(name string, scopes []string) (mainGo, testGo []byte, err error) {
	d := newModuleData(name, scopes)
	if mainGo, err = render(moduleMain, d); err != nil {
		return nil, nil, err
	}
	testGo, err = render(moduleTest, d)
	return mainGo, testGo, err
}

func render(t *template.Template, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, err
	}
	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name(), err)
	}
	return out, nil
}

var hostMain = template.Must(template.New("main.go").Parse(`// Command {{.Cmd}} runs Indigo as a library inside your own program
// instead of ` + "`indigo serve`" + `: core-api and the modules of indigo.toml, with
// the two DI hooks wired as Go functions (core/coreapi): who a dashboard or
// key-management request is from (ResolveOrgID), and what each /api/v2
// call costs (DeductAPICallToken). ` + "`indigo add core-api`" + ` wrote it; it
// builds against the source in .indigo/src (see go.mod):
//
//	go run ./cmd/{{.Cmd}} -config indigo.toml
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coreapi"
	"github.com/indigo-hq/indigo/db"
)

func main() {
	cfgPath := flag.String("config", "indigo.toml", "configuration file")
	flag.Parse()
	if err := run(*cfgPath); err != nil {
		log.Fatal(err)
	}
}

func run(cfgPath string) error {
	cfg, err := config.Load(cfgPath, true, os.Environ())
	if err != nil {
		return err
	}
	coreapi.SetDeps(coreapi.Deps{
		ResolveOrgID: resolveOrgID,
		// DeductAPICallToken charges each /api/v2 call to the caller's org;
		// return coreapi.ErrInsufficientBalance to refuse it (402). Without
		// it, calls are not metered.
		// DeductAPICallToken: func(ctx context.Context, c coreapi.Call) error { return nil },
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Database.AutoMigrate {
		if err := migrate(ctx, cfg); err != nil {
			return err
		}
		cfg.Database.AutoMigrate = false // done: Start only checks the schema
	}
	host, err := coreapi.Start(ctx, cfg)
	if err != nil {
		return err
	}
	log.Printf("Indigo is listening on %s (%s database)", host.URL(), cfg.Database.Driver)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.Duration)
	defer cancel()
	return host.Shutdown(sctx)
}

// resolveOrgID says who a request to the dashboard or the key routes is
// from, from your application's own sign-in; nil is nobody. Replace it:
//
//	s, ok := mySessions.Lookup(r)
//	if !ok {
//		return nil, nil
//	}
//	return &coreapi.Identity{UserID: s.UserID, Email: s.Email, OrgID: s.OrgID, Role: "owner"}, nil
func resolveOrgID(r *http.Request) (*coreapi.Identity, error) {
	return nil, nil
}

// migrate applies db/migrations/<engine> (core-api's migrations and your
// own), as ` + "`indigo db migrate up`" + ` does; without that folder, the migrations
// built into Indigo.
func migrate(ctx context.Context, cfg *config.Config) error {
	store, err := db.Open(ctx, cfg.Database.Driver, cfg.Database.URL)
	if err != nil {
		return err
	}
	defer store.Close()
	src, err := db.DirMigrations(db.ProjectMigrationsDir(cfg.Dir, store.Engine))
	if err != nil {
		return err
	}
	if src == nil {
		return db.MigrateUp(ctx, store)
	}
	m, err := db.NewMigratorFS(ctx, store, src)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up()
}
`))

// HostMain is cmd/<name>-host/main.go, the library-mode wiring.
func HostMain(cmdName string) ([]byte, error) {
	return render(hostMain, struct{ Cmd string }{cmdName})
}
