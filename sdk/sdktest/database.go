package sdktest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/indigo-hq/indigo/sdk"
)

// provision makes the module's database as the host would: a file in the
// data directory, or a fresh schema in PostgreSQL reached through
// search_path (the host adds a role of its own; a test keeps the URL's).
func provision(t testing.TB, module, dataDir, pgURL string) (engine, dsn string) {
	t.Helper()
	if pgURL == "" {
		return sdk.EngineSQLite, filepath.Join(dataDir, module+".db")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := "mod_" + sanitize(module) + "_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", pgURL)
	if err != nil {
		t.Fatalf("sdktest: postgres: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	if _, err := admin.Exec(`CREATE SCHEMA "` + schema + `"`); err != nil {
		t.Fatalf("sdktest: create schema: %v", err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(`DROP SCHEMA "` + schema + `" CASCADE`) })
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatalf("sdktest: postgres url: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return sdk.EnginePostgres, u.String()
}

func sanitize(name string) string {
	out := []byte(name)
	for i, c := range out {
		if c == '-' {
			out[i] = '_'
		}
	}
	return string(out)
}
