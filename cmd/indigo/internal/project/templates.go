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

	"github.com/indigo-hq/indigo/sdk"
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
change_poll_interval = "250ms"  # SQLite: how often the host reads changes made by other processes
change_safety_poll = "10s"      # PostgreSQL: LISTEN/NOTIFY wakes the host at each change; this poll heals a missed one
module_call_timeout = "10s"
module_hang_threshold = 3       # a module whose calls time out (or health checks fail) this many times in a row is killed and restarted; 0: never
module_health_interval = "5s"   # how often each module's process must answer a health check, within its call timeout; "0": no checks
module_wire = "socket"          # calls to modules on a data socket of each module's; "grpc": the previous release's wire (one more release); INDIGO_MODULE_WIRE
module_mtls = false             # mutual TLS on the module sockets too, which docs/security.md explains they do not need; INDIGO_MODULE_MTLS
idempotency_ttl = "24h"         # how long a module's answer to a write sent with an Idempotency-Key replays to its retries; "0": the header is ignored
idempotency_max_entries = 100000  # answers kept, in each host's memory (the oldest go first)
idempotency_max_mb = 64         # MiB of answers kept; an answer body above 1 MiB is not kept

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
# digest is refused). A module's [modules.config] table is handed to it;
# its env table (env = { GOMEMLIMIT = "256MiB" }) is added to its environment.
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
	// The rest of the SDK's rules on a name (one the host's routes use).
	if err := sdk.ValidateManifest(sdk.Manifest{Name: name}); err != nil {
		return err
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
	Name    string
	ModPath string // the module's Go module path
	Scopes  []scopeData
	First   string // guards GET
	Write   string // guards POST: the second scope, else the first
	Version string // of sqlc, for the Makefile
}

type scopeData struct{ ID, Label string }

func newModuleData(name, modPath string, scopes []string) moduleData {
	d := moduleData{Name: name, ModPath: modPath, First: scopes[0], Write: scopes[0], Version: RequiredVersion("github.com/sqlc-dev/sqlc")}
	if len(scopes) > 1 {
		d.Write = scopes[1]
	}
	for _, s := range scopes {
		d.Scopes = append(d.Scopes, scopeData{ID: s, Label: ScopeLabel(s)})
	}
	return d
}

var moduleMain = template.Must(template.New("main.go").Parse(`// Command {{.Name}} is an Indigo module. The host runs it as a separate
// process, gives it a database of its own (its migrations run first), and
// forwards it the requests to its routes below /api/v2 after checking the
// caller's API key and scopes. Build it and list it in indigo.toml with:
//
//	indigo add ./modules/{{.Name}}
package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"time"

	"github.com/indigo-hq/indigo/sdk"

	"{{.ModPath}}/store"
)

//go:embed migrations
var migrations embed.FS

// config is the module's [modules.config] table in indigo.toml.
type config struct {
	RetentionDays int ` + "`json:\"retention_days\"`" + `
}

type module struct {
	cfg config
	q   *store.Queries // generated by sqlc from queries.sql (make generate)
}

func main() { sdk.Serve(newModule()) }

func newModule() sdk.Module {
	m := &module{cfg: config{RetentionDays: 30}}
	sub, _ := fs.Sub(migrations, "migrations")
	return sdk.Module{
		Name:    "{{.Name}}",
		Version: "0.1.0",
		Scopes: []sdk.Scope{
{{- range .Scopes}}
			{ID: "{{.ID}}", Label: "{{.Label}}"},
{{- end}}
		},
		Routes: []sdk.Route{
			{Method: "GET", Path: "/{{.Name}}", Scopes: []string{"{{.First}}"}, Cost: 1, Handler: http.HandlerFunc(m.list)},
			{Method: "POST", Path: "/{{.Name}}", Scopes: []string{"{{.Write}}"}, Cost: 1, Handler: http.HandlerFunc(m.create)},
		},
		Database:   true,
		Migrations: sub,
		ServerInit: func(_ context.Context, host sdk.Host) error {
			m.q = store.New(host.DB())
			return host.DecodeConfig(&m.cfg)
		},
		Tasks: []sdk.Task{{"{{"}}Name: "prune", Every: time.Hour, Run: func(ctx context.Context, _ sdk.Host) error {
			_, err := m.q.DeleteItemsBefore(ctx, time.Now().AddDate(0, 0, -m.cfg.RetentionDays).UnixMilli())
			return err
		}}},
	}
}

// list answers GET /api/v2/{{.Name}} with the caller's organization's items.
func (m *module) list(w http.ResponseWriter, r *http.Request) {
	caller, _ := sdk.CallerFrom(r.Context())
	items, err := m.q.ListItems(r.Context(), caller.OrgID)
	if err != nil {
		sdk.Error(w, http.StatusInternalServerError, "internal", "could not list the items")
		return
	}
	if items == nil {
		items = []store.Item{}
	}
	sdk.JSON(w, http.StatusOK, map[string]any{"items": items})
}

// create answers POST /api/v2/{{.Name}} {"name": "..."}.
func (m *module) create(w http.ResponseWriter, r *http.Request) {
	caller, _ := sdk.CallerFrom(r.Context())
	var body struct {
		Name string ` + "`json:\"name\"`" + `
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Name == "" {
		sdk.Error(w, http.StatusUnprocessableEntity, "invalid_name", "send {\"name\": \"...\"}")
		return
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	item, err := m.q.CreateItem(r.Context(), store.CreateItemParams{
		ID: hex.EncodeToString(id[:]), OrgID: caller.OrgID, Name: body.Name, CreatedAt: time.Now().UnixMilli()})
	if err != nil {
		sdk.Error(w, http.StatusInternalServerError, "internal", "could not save the item")
		return
	}
	sdk.JSON(w, http.StatusCreated, map[string]any{"item": item})
}
`))

var moduleTest = template.Must(template.New("main_test.go").Parse(`package main

import (
	"os"
	"testing"

	"github.com/indigo-hq/indigo/sdk/sdktest"
)

// TestAPI runs the module's routes as a table, in memory through the wire
// the host uses, on a SQLite file, and on PostgreSQL when
// INDIGO_TEST_POSTGRES_URL is set.
func TestAPI(t *testing.T) {
	engines := map[string][]sdktest.Option{"sqlite": nil}
	if url := os.Getenv("INDIGO_TEST_POSTGRES_URL"); url != "" {
		engines["postgres"] = []sdktest.Option{sdktest.WithPostgres(url)}
	}
	for engine, opts := range engines {
		t.Run(engine, func(t *testing.T) {
			h := sdktest.New(t, newModule(), opts...)
			h.Run(t, []sdktest.Scenario{
				{Name: "empty", Method: "GET", Path: "/{{.Name}}", Org: "org_a", Scopes: []string{"{{.First}}"},
					ExpectedStatus: 200, ExpectedJSON: ` + "`{\"items\":[]}`" + `},
				{Name: "create", Method: "POST", Path: "/{{.Name}}", Org: "org_a", Scopes: []string{"{{.Write}}"},
					Body: map[string]string{"name": "first"}, ExpectedStatus: 201, ExpectedJSON: ` + "`{\"item\":{\"org_id\":\"org_a\",\"name\":\"first\"}}`" + `},
				{Name: "no name", Method: "POST", Path: "/{{.Name}}", Org: "org_a", Scopes: []string{"{{.Write}}"},
					Body: map[string]string{}, ExpectedStatus: 422},
				{Name: "without the scope", Method: "GET", Path: "/{{.Name}}", Org: "org_a", Scopes: []string{},
					ExpectedStatus: 403},
				{Name: "another org sees nothing", Method: "GET", Path: "/{{.Name}}", Org: "org_b", Scopes: []string{"{{.First}}"},
					ExpectedStatus: 200, ExpectedJSON: ` + "`{\"items\":[]}`" + `},
			})
			if err := h.RunTask("prune"); err != nil {
				t.Fatalf("the prune task: %v", err)
			}
		})
	}
}
`))

// ModuleFile is one file of a new module.
type ModuleFile struct {
	Path string // slash-separated, relative to the module's folder
	Data []byte
}

// ModuleFiles are the files of a new module (Go files gofmt'ed): main.go
// and its test, the migrations for both engines, the queries, sqlc.yaml and
// a Makefile. The store package is generated from them by sqlc.
func ModuleFiles(name, modPath string, scopes []string) ([]ModuleFile, error) {
	d := newModuleData(name, modPath, scopes)
	mainGo, err := render(moduleMain, d)
	if err != nil {
		return nil, err
	}
	testGo, err := render(moduleTest, d)
	if err != nil {
		return nil, err
	}
	table := func(idType string) string {
		return "CREATE TABLE items (\n    id         TEXT PRIMARY KEY,\n    org_id     TEXT NOT NULL,\n    name       TEXT NOT NULL,\n    created_at " + idType + " NOT NULL\n);\nCREATE INDEX items_org ON items (org_id, created_at);\n"
	}
	return []ModuleFile{
		{"main.go", mainGo},
		{"main_test.go", testGo},
		{"migrations/sqlite/000001_items.up.sql", []byte(table("INTEGER"))},
		{"migrations/sqlite/000001_items.down.sql", []byte("DROP TABLE items;\n")},
		{"migrations/postgres/000001_items.up.sql", []byte(table("BIGINT"))},
		{"migrations/postgres/000001_items.down.sql", []byte("DROP TABLE items;\n")},
		{"queries.sql", []byte(moduleQueries)},
		{"sqlc.yaml", []byte(moduleSqlc)},
		{"Makefile", []byte("SQLC = github.com/sqlc-dev/sqlc/cmd/sqlc@" + d.Version + "\n\n" + moduleMakefile)},
	}, nil
}

// The queries are written once, with $n parameters, which both engines'
// drivers take: sqlc generates them against the PostgreSQL schema.
const moduleQueries = `-- name: ListItems :many
SELECT * FROM items WHERE org_id = $1 ORDER BY created_at, id;

-- name: CreateItem :one
INSERT INTO items (id, org_id, name, created_at) VALUES ($1, $2, $3, $4) RETURNING *;

-- name: DeleteItemsBefore :execrows
DELETE FROM items WHERE created_at < $1;
`

const moduleSqlc = `version: "2"
sql:
  - engine: postgresql
    schema: migrations/postgres
    queries: queries.sql
    gen:
      go:
        package: store
        out: store
        emit_json_tags: true
`

const moduleMakefile = `.PHONY: generate test

# store/ from queries.sql and the migrations, with sqlc.
generate:
	go run $(SQLC) generate

test:
	go test ./...
`

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
