// Package dbtest gives tests a migrated store on each engine: SQLite in a
// temporary folder, and PostgreSQL in a fresh schema of the server named by
// INDIGO_TEST_POSTGRES_URL. Without that variable the PostgreSQL cases skip,
// except under CI=true, where a missing server fails the test.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/indigo-hq/indigo/db"
)

// Engines lists the engines every store test runs on.
var Engines = []string{db.SQLite, db.Postgres}

// PostgresURL returns the test server's URL, skipping (or failing under
// CI=true) when none is configured.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("INDIGO_TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("INDIGO_TEST_POSTGRES_URL is not set, and CI=true requires the PostgreSQL tests")
		}
		t.Skip("INDIGO_TEST_POSTGRES_URL is not set; skipping PostgreSQL")
	}
	return u
}

// URL returns a database URL for a fresh, empty database of the engine:
// a new SQLite file, or a new PostgreSQL schema dropped at cleanup.
func URL(t testing.TB, engine string) string {
	t.Helper()
	switch engine {
	case db.SQLite:
		return filepath.Join(t.TempDir(), "indigo.db")
	case db.Postgres:
		base := PostgresURL(t)
		var b [6]byte
		_, _ = rand.Read(b[:])
		schema := "indigo_t_" + hex.EncodeToString(b[:])
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
			_ = admin.Close()
			t.Fatalf("create schema: %v", err)
		}
		t.Cleanup(func() {
			_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
			dropModules(admin, schema)
			_ = admin.Close()
		})
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	default:
		t.Fatalf("unknown engine %q", engine)
		return ""
	}
}

// Open returns a migrated store of the engine, closed at cleanup.
func Open(t testing.TB, engine string) *db.Store {
	t.Helper()
	ctx := context.Background()
	s, err := db.Open(ctx, engine, URL(t, engine))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := db.MigrateUp(ctx, s); err != nil {
		t.Fatal(err)
	}
	return s
}

// dropModules drops the schemas and roles the host in schema made for its
// modules (db.ModuleSchema names them after it).
func dropModules(admin *sql.DB, schema string) {
	like := schema + `\_mod\_%`
	for _, n := range names(admin, `SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, like) {
		_, _ = admin.Exec(`DROP SCHEMA "` + n + `" CASCADE`)
	}
	for _, n := range names(admin, `SELECT rolname FROM pg_roles WHERE rolname LIKE $1`, like) {
		_, _ = admin.Exec(`DROP ROLE "` + n + `"`)
	}
}

// names runs a query of one text column; on an error it returns none.
func names(db *sql.DB, query string, args ...any) []string {
	rows, err := db.Query(query, args...)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			out = append(out, n)
		}
	}
	return out
}
