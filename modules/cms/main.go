// Command cms is a small content module: entries per organization with
// cms:read and cms:write. Published entries are also readable on the free
// v1 API, which has no organization, so v1 sees every org's published
// entries and nothing else.
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

func main() { sdk.Serve(newModule()) }

type entry struct {
	ID        string `json:"id"`
	OrgID     string `json:"org_id"`
	Title     string `json:"title"`
	Body      string `json:"body"`
	Published bool   `json:"published"`
	CreatedAt string `json:"created_at"`
}

//go:embed migrations
var migrations embed.FS

type app struct {
	db atomic.Pointer[sql.DB]
}

func newModule() sdk.Module {
	a := &app{}
	sub, _ := fs.Sub(migrations, "migrations")
	return sdk.Module{
		Name:    "cms",
		Version: "1.0.0",
		Scopes: []sdk.Scope{
			{ID: "cms:read", Label: "Read content entries"},
			{ID: "cms:write", Label: "Create content entries"},
		},
		Routes: []sdk.Route{
			{Method: "GET", Path: "/cms/entries", Scopes: []string{"cms:read"}, Cost: 1, V1: true, Handler: http.HandlerFunc(a.list)},
			{Method: "POST", Path: "/cms/entries", Scopes: []string{"cms:write"}, Cost: 1, Handler: http.HandlerFunc(a.create)},
			{Method: "GET", Path: "/cms/entries/{id}", Scopes: []string{"cms:read"}, Cost: 1, V1: true, Handler: http.HandlerFunc(a.get)},
		},
		Database:   true,
		Migrations: sub,
		ServerInit: func(_ context.Context, host sdk.Host) error {
			a.db.Store(host.DB())
			return nil
		},
	}
}

var (
	writeJSON = sdk.JSON
	fail      = sdk.Error
)

// scope returns the WHERE clause the caller may see: its org's entries on
// v2, published entries on v1.
func (a *app) scope(w http.ResponseWriter, r *http.Request) (*sql.DB, string, []any, bool) {
	c, ok := sdk.CallerFrom(r.Context())
	db := a.db.Load()
	switch {
	case db == nil:
		fail(w, http.StatusServiceUnavailable, "unavailable", "not initialised")
		return nil, "", nil, false
	case ok && c.V1:
		return db, "published = 1", nil, true
	case ok && c.OrgID != "":
		return db, "org_id = $1", []any{c.OrgID}, true
	default:
		fail(w, http.StatusForbidden, "forbidden", "no caller")
		return nil, "", nil, false
	}
}

func scan(rows interface{ Scan(...any) error }) (entry, error) {
	var e entry
	var pub int
	err := rows.Scan(&e.ID, &e.OrgID, &e.Title, &e.Body, &pub, &e.CreatedAt)
	e.Published = pub == 1
	return e, err
}

func (a *app) list(w http.ResponseWriter, r *http.Request) {
	db, where, args, ok := a.scope(w, r)
	if !ok {
		return
	}
	rows, err := db.QueryContext(r.Context(), `SELECT id, org_id, title, body, published, created_at FROM entries WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		fail(w, http.StatusInternalServerError, "internal", "could not list entries")
		return
	}
	defer rows.Close()
	out := []entry{}
	for rows.Next() {
		e, err := scan(rows)
		if err != nil {
			fail(w, http.StatusInternalServerError, "internal", "could not list entries")
			return
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out})
}

func (a *app) get(w http.ResponseWriter, r *http.Request) {
	db, where, args, ok := a.scope(w, r)
	if !ok {
		return
	}
	// The id is the next parameter after the scope's ($1 or none).
	e, err := scan(db.QueryRowContext(r.Context(), `SELECT id, org_id, title, body, published, created_at FROM entries WHERE `+where+` AND id = $`+strconv.Itoa(len(args)+1),
		append(args, r.PathValue("id"))...))
	if errors.Is(err, sql.ErrNoRows) {
		fail(w, http.StatusNotFound, "not_found", "entry not found")
		return
	}
	if err != nil {
		fail(w, http.StatusInternalServerError, "internal", "could not read the entry")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entry": e})
}

func (a *app) create(w http.ResponseWriter, r *http.Request) {
	c, ok := sdk.CallerFrom(r.Context())
	if !ok || c.OrgID == "" {
		fail(w, http.StatusForbidden, "forbidden", "entries are written per organization")
		return
	}
	db := a.db.Load()
	if db == nil {
		fail(w, http.StatusServiceUnavailable, "unavailable", "not initialised")
		return
	}
	var body struct {
		Title     string `json:"title"`
		Body      string `json:"body"`
		Published bool   `json:"published"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		fail(w, http.StatusBadRequest, "bad_request", "body must be {\"title\", \"body\", \"published\"}")
		return
	}
	if t := strings.TrimSpace(body.Title); t == "" || len(t) > 200 {
		fail(w, http.StatusUnprocessableEntity, "invalid_title", "title must be 1 to 200 characters")
		return
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	e := entry{ID: "ent_" + hex.EncodeToString(b[:]), OrgID: c.OrgID, Title: strings.TrimSpace(body.Title), Body: body.Body,
		// wall clock: the module has no clock to inject; a creation time
		Published: body.Published, CreatedAt: time.Now().UTC().Format(time.RFC3339Nano)}
	pub := 0
	if e.Published {
		pub = 1
	}
	if _, err := db.ExecContext(r.Context(), `INSERT INTO entries (id, org_id, title, body, published, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.ID, e.OrgID, e.Title, e.Body, pub, e.CreatedAt); err != nil {
		fail(w, http.StatusInternalServerError, "internal", "could not save the entry")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"entry": e})
}
