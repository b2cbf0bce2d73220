package main

import (
	"context"
	"database/sql"
	"testing"

	"github.com/indigo-hq/indigo/db/dbtest"
)

// TestPostgresServerSide starts the PostgreSQL host on the test server
// (INDIGO_TEST_POSTGRES_URL) and checks that its schema is gone after.
func TestPostgresServerSide(t *testing.T) {
	base := dbtest.PostgresURL(t)
	ctx := context.Background()
	s := &servers{}
	defer s.close()
	ps, why, err := s.startPostgresSide(ctx, options{postgres: base, requestLog: true, pairs: map[string]bool{"pg": true}})
	if err != nil || ps == nil {
		t.Fatalf("startPostgresSide: %v (%s)", err, why)
	}
	if len(ps.me.body) == 0 || ps.bareAddr == "" {
		t.Fatalf("route %+v, bare %q", ps.me, ps.bareAddr)
	}
	if body, _, err := fetch(ctx, ps.bareAddr, mePath, ""); err != nil || string(body) != string(ps.me.body) {
		t.Fatalf("bare twin answered %q, %v; want %q", body, err, ps.me.body)
	}
	cpu, err := ps.backendCPU(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("host's backends on this machine: %d", len(cpu))

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	exists := func() bool {
		var n int
		if err := admin.QueryRow(`SELECT count(*) FROM pg_namespace WHERE nspname = $1`, ps.schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	if !exists() {
		t.Fatalf("no schema %s while the host runs", ps.schema)
	}
	s.close()
	if exists() {
		t.Fatalf("schema %s is still there after close", ps.schema)
	}
}
