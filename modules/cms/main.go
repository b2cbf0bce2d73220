// Command cms is a small content module: entries per organization with
// cms:read and cms:write. Published entries are also readable on the free
// v1 API, which has no organization, so v1 sees every org's published
// entries and nothing else.
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
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite"

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

type app struct {
	mu sync.RWMutex
	db *sql.DB
}

func newModule() sdk.Module {
	a := &app{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cms/entries", a.list)
	mux.HandleFunc("POST /cms/entries", a.create)
	mux.HandleFunc("GET /cms/entries/{id}", a.get)
	return sdk.Module{
		Name:    "cms",
		Version: "1.0.0",
		Scopes: []sdk.Scope{
			{ID: "cms:read", Label: "Read content entries"},
			{ID: "cms:write", Label: "Create content entries"},
		},
		Routes: []sdk.Route{
			{Method: "GET", Path: "/cms/entries", Scopes: []string{"cms:read"}, Cost: 1, V1: true},
			{Method: "POST", Path: "/cms/entries", Scopes: []string{"cms:write"}, Cost: 1},
			{Method: "GET", Path: "/cms/entries/{id}", Scopes: []string{"cms:read"}, Cost: 1, V1: true},
		},
		Handler:    mux,
		ServerInit: a.init,
	}
}

func (a *app) init(ctx context.Context, host sdk.Host) error {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(host.DataDir(), "cms.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS entries (
		id TEXT PRIMARY KEY, org_id TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
		published INTEGER NOT NULL, created_at TEXT NOT NULL)`); err != nil {
		return err
	}
	a.mu.Lock()
	if a.db != nil {
		_ = a.db.Close()
	}
	a.db = db
	a.mu.Unlock()
	return nil
}

var (
	writeJSON = sdk.JSON
	fail      = sdk.Error
)

// scope returns the WHERE clause the caller may see: its org's entries on
// v2, published entries on v1.
func (a *app) scope(w http.ResponseWriter, r *http.Request) (*sql.DB, string, []any, bool) {
	c, ok := sdk.CallerFrom(r.Context())
	a.mu.RLock()
	db := a.db
	a.mu.RUnlock()
	switch {
	case db == nil:
		fail(w, http.StatusServiceUnavailable, "unavailable", "not initialised")
		return nil, "", nil, false
	case ok && c.V1:
		return db, "published = 1", nil, true
	case ok && c.OrgID != "":
		return db, "org_id = ?", []any{c.OrgID}, true
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
	e, err := scan(db.QueryRowContext(r.Context(), `SELECT id, org_id, title, body, published, created_at FROM entries WHERE `+where+` AND id = ?`,
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
	a.mu.RLock()
	db := a.db
	a.mu.RUnlock()
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
	if _, err := db.ExecContext(r.Context(), `INSERT INTO entries (id, org_id, title, body, published, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		e.ID, e.OrgID, e.Title, e.Body, pub, e.CreatedAt); err != nil {
		fail(w, http.StatusInternalServerError, "internal", "could not save the entry")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"entry": e})
}
