// Command projects is the example module that authors copy: org-scoped
// projects with projects:read and projects:write, in a database of its own
// that the host provides (a SQLite file, or a PostgreSQL schema shared by
// every host), with its tables made by migrations.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/indigo-hq/indigo/sdk"
)

//go:embed migrations
var migrations embed.FS

func main() { sdk.Serve(newModule()) }

type project struct {
	ID        string `json:"id"`
	OrgID     string `json:"org_id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}

type app struct {
	db    atomic.Pointer[sql.DB]
	calls atomic.Int64 // handler runs, shown in X-Projects-Calls
}

func newModule() sdk.Module {
	a := &app{}
	sub, _ := fs.Sub(migrations, "migrations")
	return sdk.Module{
		Name:    "projects",
		Version: "1.1.0",
		Scopes: []sdk.Scope{
			{ID: "projects:read", Label: "Read projects"},
			{ID: "projects:write", Label: "Create projects"},
		},
		Routes: []sdk.Route{
			{Method: "GET", Path: "/projects", Scopes: []string{"projects:read"}, Cost: 1, Handler: a.count(a.list)},
			{Method: "POST", Path: "/projects", Scopes: []string{"projects:write"}, Cost: 1, Handler: a.count(a.create)},
			{Method: "GET", Path: "/projects/{id}", Scopes: []string{"projects:read"}, Cost: 1, Handler: a.count(a.get)},
		},
		Database:   true,
		Migrations: sub,
		ServerInit: func(_ context.Context, host sdk.Host) error {
			a.db.Store(host.DB())
			return nil
		},
	}
}

// count numbers the handler's runs in a header, which shows (in the host's
// tests) that a refused call never reaches the module.
func (a *app) count(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Projects-Calls", strconv.FormatInt(a.calls.Add(1), 10))
		h(w, r)
	})
}

// org is the caller's organization; every query is scoped to it.
func org(w http.ResponseWriter, r *http.Request) (string, bool) {
	c, ok := sdk.CallerFrom(r.Context())
	if !ok || c.OrgID == "" {
		sdk.Error(w, http.StatusForbidden, "forbidden", "projects are per organization")
		return "", false
	}
	return c.OrgID, true
}

func (a *app) list(w http.ResponseWriter, r *http.Request) {
	org, ok := org(w, r)
	if !ok {
		return
	}
	rows, err := a.db.Load().QueryContext(r.Context(),
		`SELECT id, org_id, name, created_at FROM projects WHERE org_id = $1 ORDER BY created_at, id`, org)
	if err != nil {
		sdk.Error(w, http.StatusInternalServerError, "internal", "could not list projects")
		return
	}
	defer rows.Close()
	out := []project{}
	for rows.Next() {
		var p project
		if err := rows.Scan(&p.ID, &p.OrgID, &p.Name, &p.CreatedAt); err != nil {
			sdk.Error(w, http.StatusInternalServerError, "internal", "could not list projects")
			return
		}
		out = append(out, p)
	}
	sdk.JSON(w, http.StatusOK, map[string]any{"projects": out})
}

func (a *app) create(w http.ResponseWriter, r *http.Request) {
	org, ok := org(w, r)
	if !ok {
		return
	}
	var body struct {
		Name string `json:"name"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		sdk.Error(w, http.StatusBadRequest, "bad_request", "body must be {\"name\": \"...\"}")
		return
	}
	body.Name = strings.TrimSpace(body.Name)
	if body.Name == "" || len(body.Name) > 200 {
		sdk.Error(w, http.StatusUnprocessableEntity, "invalid_name", "name must be 1 to 200 characters")
		return
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	// wall clock: the module has no clock to inject; a creation time
	p := project{ID: "prj_" + hex.EncodeToString(b[:]), OrgID: org, Name: body.Name, CreatedAt: time.Now().UTC().Format(time.RFC3339Nano)}
	if _, err := a.db.Load().ExecContext(r.Context(),
		`INSERT INTO projects (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)`, p.ID, p.OrgID, p.Name, p.CreatedAt); err != nil {
		sdk.Error(w, http.StatusInternalServerError, "internal", "could not save the project")
		return
	}
	sdk.JSON(w, http.StatusCreated, map[string]any{"project": p})
}

func (a *app) get(w http.ResponseWriter, r *http.Request) {
	org, ok := org(w, r)
	if !ok {
		return
	}
	var p project
	err := a.db.Load().QueryRowContext(r.Context(),
		`SELECT id, org_id, name, created_at FROM projects WHERE org_id = $1 AND id = $2`, org, r.PathValue("id")).
		Scan(&p.ID, &p.OrgID, &p.Name, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		sdk.Error(w, http.StatusNotFound, "not_found", "project not found")
		return
	}
	if err != nil {
		sdk.Error(w, http.StatusInternalServerError, "internal", "could not read the project")
		return
	}
	sdk.JSON(w, http.StatusOK, map[string]any{"project": p})
}
