// Command projects is the scaffolded example module: org-scoped projects
// with projects:read and projects:write, stored in SQLite under the data
// directory the host gives it.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite"

	"github.com/indigo-hq/indigo/sdk"
)

func main() { sdk.Serve(newModule()) }

type project struct {
	ID        string `json:"id"`
	OrgID     string `json:"org_id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}

type app struct {
	mu    sync.RWMutex
	st    *stmts
	calls atomic.Int64 // handler invocations, shown in X-Projects-Calls

	// lists caches each org's encoded project list. This process is the
	// only writer of its database, so a create that drops its org's entry
	// keeps the cache exact; it is bounded by emptying it when full.
	listMu sync.RWMutex
	lists  map[string][]byte
	gen    atomic.Uint64 // bumped by every create, under listMu
}

const maxCachedLists = 10_000

// stmts are prepared once: with the pure-Go SQLite, parsing a query costs
// more than running it.
type stmts struct {
	db                *sql.DB
	list, get, insert *sql.Stmt
}

func newModule() sdk.Module {
	a := &app{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /projects", a.list)
	mux.HandleFunc("POST /projects", a.create)
	mux.HandleFunc("GET /projects/{id}", a.get)
	return sdk.Module{
		Name:    "projects",
		Version: "1.0.0",
		Scopes: []sdk.Scope{
			{ID: "projects:read", Label: "Read projects"},
			{ID: "projects:write", Label: "Create projects"},
		},
		Routes: []sdk.Route{
			{Method: "GET", Path: "/projects", Scopes: []string{"projects:read"}, Cost: 1},
			{Method: "POST", Path: "/projects", Scopes: []string{"projects:write"}, Cost: 1},
			{Method: "GET", Path: "/projects/{id}", Scopes: []string{"projects:read"}, Cost: 1},
		},
		Handler:    a.count(mux),
		ServerInit: a.init,
	}
}

func (a *app) init(ctx context.Context, host sdk.Host) error {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(host.DataDir(), "projects.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS projects (
		id TEXT PRIMARY KEY, org_id TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL);
		CREATE INDEX IF NOT EXISTS projects_org ON projects (org_id, created_at)`); err != nil {
		_ = db.Close()
		return err
	}
	// database/sql keeps only 2 idle connections by default: under
	// concurrent requests every extra one was opened (file open, pragmas,
	// schema read) and its statements prepared again, then closed, on each
	// request. A fixed pool keeps them; more connections than this would not
	// help, since the pure-Go SQLite is CPU-bound and WAL readers never wait
	// for one another.
	conns := max(4, 2*runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	st := &stmts{db: db}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&st.list, `SELECT id, org_id, name, created_at FROM projects WHERE org_id = ? ORDER BY created_at, id`},
		{&st.get, `SELECT id, org_id, name, created_at FROM projects WHERE org_id = ? AND id = ?`},
		{&st.insert, `INSERT INTO projects (id, org_id, name, created_at) VALUES (?, ?, ?, ?)`},
	} {
		if *p.dst, err = db.PrepareContext(ctx, p.q); err != nil {
			_ = db.Close()
			return err
		}
	}
	a.mu.Lock()
	if a.st != nil {
		_ = a.st.db.Close()
	}
	a.st = st
	a.mu.Unlock()
	host.Logger().Info("projects ready", "data_dir", host.DataDir())
	return nil
}

func (a *app) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := a.calls.Add(1)
		w.Header().Set("X-Projects-Calls", strconv.FormatInt(n, 10))
		next.ServeHTTP(w, r)
	})
}

var (
	writeJSON = sdk.JSON
	fail      = sdk.Error
)

// org is the caller's organization; every query is scoped to it.
func (a *app) org(w http.ResponseWriter, r *http.Request) (string, *stmts, bool) {
	c, ok := sdk.CallerFrom(r.Context())
	if !ok || c.OrgID == "" {
		fail(w, http.StatusForbidden, "forbidden", "projects are per organization")
		return "", nil, false
	}
	a.mu.RLock()
	st := a.st
	a.mu.RUnlock()
	if st == nil {
		fail(w, http.StatusServiceUnavailable, "unavailable", "not initialised")
		return "", nil, false
	}
	return c.OrgID, st, true
}

func (a *app) list(w http.ResponseWriter, r *http.Request) {
	org, st, ok := a.org(w, r)
	if !ok {
		return
	}
	a.listMu.RLock()
	body, hit := a.lists[org]
	a.listMu.RUnlock()
	if hit {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return
	}
	// Read the generation before the query: a create that lands meanwhile
	// bumps it, and this (possibly older) list is then not cached.
	gen := a.gen.Load()
	rows, err := st.list.QueryContext(r.Context(), org)
	if err != nil {
		fail(w, http.StatusInternalServerError, "internal", "could not list projects")
		return
	}
	defer rows.Close()
	out := []project{}
	for rows.Next() {
		var p project
		if err := rows.Scan(&p.ID, &p.OrgID, &p.Name, &p.CreatedAt); err != nil {
			fail(w, http.StatusInternalServerError, "internal", "could not list projects")
			return
		}
		out = append(out, p)
	}
	// A struct encodes to the same bytes as a one-key map, without the
	// map, the boxing and the key sort on every list.
	body, err = json.Marshal(struct {
		Projects []project `json:"projects"`
	}{out})
	if err != nil {
		fail(w, http.StatusInternalServerError, "internal", "could not list projects")
		return
	}
	body = append(body, '\n')
	a.listMu.Lock()
	if a.gen.Load() == gen {
		if a.lists == nil || len(a.lists) >= maxCachedLists {
			a.lists = make(map[string][]byte)
		}
		a.lists[org] = body
	}
	a.listMu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (a *app) create(w http.ResponseWriter, r *http.Request) {
	org, st, ok := a.org(w, r)
	if !ok {
		return
	}
	var body struct {
		Name string `json:"name"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		fail(w, http.StatusBadRequest, "bad_request", "body must be {\"name\": \"...\"}")
		return
	}
	body.Name = strings.TrimSpace(body.Name)
	if body.Name == "" || len(body.Name) > 200 {
		fail(w, http.StatusUnprocessableEntity, "invalid_name", "name must be 1 to 200 characters")
		return
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	// wall clock: the module has no clock to inject; a creation time
	p := project{ID: "prj_" + hex.EncodeToString(b[:]), OrgID: org, Name: body.Name, CreatedAt: time.Now().UTC().Format(time.RFC3339Nano)}
	_, err := st.insert.ExecContext(r.Context(), p.ID, p.OrgID, p.Name, p.CreatedAt)
	// Drop the org's cached list whether or not the insert reports success:
	// a failed commit may still have written.
	a.listMu.Lock()
	a.gen.Add(1)
	delete(a.lists, org)
	a.listMu.Unlock()
	if err != nil {
		fail(w, http.StatusInternalServerError, "internal", "could not save the project")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"project": p})
}

func (a *app) get(w http.ResponseWriter, r *http.Request) {
	org, st, ok := a.org(w, r)
	if !ok {
		return
	}
	var p project
	err := st.get.QueryRowContext(r.Context(), org, r.PathValue("id")).Scan(&p.ID, &p.OrgID, &p.Name, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		fail(w, http.StatusNotFound, "not_found", "project not found")
		return
	}
	if err != nil {
		fail(w, http.StatusInternalServerError, "internal", "could not read the project")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": p})
}
