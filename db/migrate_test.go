package db_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
	"github.com/indigo-hq/indigo/db/sqlitedb"
)

func TestMigrationsSQLite(t *testing.T) {
	t.Run("UpDownUp", func(t *testing.T) { runMigrateUpDownUp(t, newSQLiteStore(t)) })
	t.Run("Dirty", func(t *testing.T) { runMigrateDirty(t, newSQLiteStore(t)) })
	t.Run("SchemaIdentical", func(t *testing.T) { runMigrateSchemaIdentical(t, newSQLiteStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { runMigrateConcurrent(t, db.SQLite) })
}

func TestMigrationsPostgres(t *testing.T) {
	dbtest.PostgresURL(t) // skip (or fail on CI) before the subtests
	t.Run("UpDownUp", func(t *testing.T) { runMigrateUpDownUp(t, newPostgresStore(t)) })
	t.Run("Dirty", func(t *testing.T) { runMigrateDirty(t, newPostgresStore(t)) })
	t.Run("SchemaIdentical", func(t *testing.T) { runMigrateSchemaIdentical(t, newPostgresStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { runMigrateConcurrent(t, db.Postgres) })
}

// TestMigrationFilesPaired checks that both engines ship the same versions,
// each with an up and a down file.
func TestMigrationFilesPaired(t *testing.T) {
	versions := map[string][]uint{}
	for _, engine := range []string{db.SQLite, db.Postgres} {
		src, err := db.Migrations(engine)
		if err != nil {
			t.Fatal(err)
		}
		up, down := migrationVersions(t, src, ".up.sql"), migrationVersions(t, src, ".down.sql")
		if len(up) == 0 {
			t.Fatalf("%s: no migrations", engine)
		}
		if !equalUints(up, down) {
			t.Fatalf("%s: up versions %v, down versions %v", engine, up, down)
		}
		versions[engine] = up
	}
	if !equalUints(versions[db.SQLite], versions[db.Postgres]) {
		t.Fatalf("sqlite versions %v differ from postgres versions %v", versions[db.SQLite], versions[db.Postgres])
	}
}

// migrationVersions lists the versions of the files ending in suffix, in
// directory (hence version) order.
func migrationVersions(t *testing.T, src fs.FS, suffix string) []uint {
	t.Helper()
	entries, err := fs.ReadDir(src, ".")
	if err != nil {
		t.Fatal(err)
	}
	var out []uint
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, suffix) {
			continue
		}
		num, _, found := strings.Cut(name, "_")
		if !found {
			t.Fatalf("migration %q has no version prefix", name)
		}
		v, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			t.Fatalf("migration %q: %v", name, err)
		}
		out = append(out, uint(v))
	}
	return out
}

func equalUints(a, b []uint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func latestMigration(t *testing.T, engine string) uint {
	t.Helper()
	src, err := db.Migrations(engine)
	if err != nil {
		t.Fatal(err)
	}
	vs := migrationVersions(t, src, ".up.sql")
	if len(vs) == 0 {
		t.Fatalf("%s: no migrations", engine)
	}
	return vs[len(vs)-1]
}

func newMigrator(t *testing.T, s *db.Store) *db.Migrator {
	t.Helper()
	m, err := db.NewMigrator(context.Background(), s)
	if err != nil {
		t.Fatalf("NewMigrator: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func wantStatus(t *testing.T, m *db.Migrator, want db.MigrationStatus) {
	t.Helper()
	st, err := m.Status()
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st != want {
		t.Fatalf("Status = %+v, want %+v", st, want)
	}
}

// appTables counts the application's tables and, on PostgreSQL, its
// functions in the store's schema.
func appTables(t *testing.T, s *db.Store) int64 {
	t.Helper()
	if s.Engine == db.Postgres {
		n := rawInt(t, s, `SELECT COUNT(*) FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_name LIKE 'saas%'`).Int64
		n += rawInt(t, s, `SELECT COUNT(*) FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace
			WHERE ns.nspname = current_schema() AND p.proname LIKE 'saas%'`).Int64
		return n
	}
	return rawInt(t, s, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'saas%'`).Int64
}

// storeWorks checks that the store's own pool sees the migrated schema.
func storeWorks(t *testing.T, s *db.Store, orgID string) {
	t.Helper()
	ctx := context.Background()
	if err := s.Q().InsertOrg(ctx, sqlitedb.InsertOrgParams{ID: orgID, Name: "M", CreatedAt: t0}); err != nil {
		t.Fatalf("InsertOrg after migrating: %v", err)
	}
	if _, err := s.Q().GetOrg(ctx, orgID); err != nil {
		t.Fatalf("GetOrg after migrating: %v", err)
	}
}

func runMigrateUpDownUp(t *testing.T, s *db.Store) {
	ctx := context.Background()
	latest := latestMigration(t, s.Engine)
	clean := func(v uint) db.MigrationStatus {
		return db.MigrationStatus{Version: v, Dirty: false, Latest: latest, Engine: s.Engine}
	}

	m := newMigrator(t, s)
	wantStatus(t, m, clean(0))
	if n := appTables(t, s); n != 0 {
		t.Fatalf("%d application objects before migrating", n)
	}

	// up
	if err := m.Up(); err != nil {
		t.Fatalf("Up: %v", err)
	}
	wantStatus(t, m, clean(latest))
	upObjects := appTables(t, s)
	if upObjects == 0 {
		t.Fatal("no tables after Up")
	}
	storeWorks(t, s, "org_m1")
	if err := m.Up(); err != nil {
		t.Fatalf("Up with nothing to do: %v", err)
	}
	wantStatus(t, m, clean(latest))

	// down (all)
	if err := m.Down(0); err != nil {
		t.Fatalf("Down(0): %v", err)
	}
	wantStatus(t, m, clean(0))
	if n := appTables(t, s); n != 0 {
		t.Fatalf("%d application objects left after Down", n)
	}
	if err := m.Down(0); err != nil {
		t.Fatalf("Down with nothing to do: %v", err)
	}
	wantStatus(t, m, clean(0))

	// up again, through the one-shot helper and a new migrator
	if err := db.MigrateUp(ctx, s); err != nil {
		t.Fatalf("MigrateUp after Down: %v", err)
	}
	wantStatus(t, m, clean(latest))
	if n := appTables(t, s); n != upObjects {
		t.Fatalf("%d application objects after the second Up, want %d", n, upObjects)
	}
	storeWorks(t, s, "org_m2")
	if _, err := s.Q().GetOrg(ctx, "org_m1"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("data survived Down/Up: GetOrg err = %v", err)
	}

	// down by steps, one migration at a time, back to nothing
	for v := latest; v > 0; v-- {
		if err := m.Down(1); err != nil {
			t.Fatalf("Down(1) from %d: %v", v, err)
		}
		st, err := m.Status()
		if err != nil {
			t.Fatal(err)
		}
		if st.Version >= v || st.Dirty {
			t.Fatalf("after Down(1) from %d: %+v", v, st)
		}
	}
	wantStatus(t, m, clean(0))
	if err := m.Up(); err != nil {
		t.Fatalf("Up after stepping down: %v", err)
	}
	wantStatus(t, m, clean(latest))

	// The migrator has its own connection: closing it leaves the store usable.
	if err := m.Close(); err != nil {
		t.Fatalf("Migrator.Close: %v", err)
	}
	if err := s.DB.PingContext(ctx); err != nil {
		t.Fatalf("store pool unusable after Migrator.Close: %v", err)
	}
	storeWorks(t, s, "org_m3")
}

func runMigrateDirty(t *testing.T, s *db.Store) {
	ctx := context.Background()
	latest := latestMigration(t, s.Engine)
	table := "schema_migrations"
	if s.Engine == db.Postgres {
		table = "indigo_schema_migrations"
	}

	if err := db.MigrateUp(ctx, s); err != nil {
		t.Fatalf("MigrateUp: %v", err)
	}
	m := newMigrator(t, s)

	// Force records a version without running anything and is clean.
	if err := m.Force(int(latest)); err != nil {
		t.Fatalf("Force: %v", err)
	}
	wantStatus(t, m, db.MigrationStatus{Version: latest, Dirty: false, Latest: latest, Engine: s.Engine})

	// Simulate a migration that failed half-way.
	rawExec(t, s, "UPDATE "+table+" SET dirty = true")
	wantStatus(t, m, db.MigrationStatus{Version: latest, Dirty: true, Latest: latest, Engine: s.Engine})

	err := m.Up()
	if !errors.Is(err, db.ErrDirty) {
		t.Fatalf("Up on a dirty schema: err = %v, want db.ErrDirty", err)
	}
	if !strings.Contains(err.Error(), strconv.FormatUint(uint64(latest), 10)) {
		t.Fatalf("ErrDirty message does not name the version: %v", err)
	}
	if err := db.MigrateUp(ctx, s); !errors.Is(err, db.ErrDirty) {
		t.Fatalf("MigrateUp on a dirty schema: err = %v, want db.ErrDirty", err)
	}
	// A fresh migrator sees the same state.
	m2 := newMigrator(t, s)
	wantStatus(t, m2, db.MigrationStatus{Version: latest, Dirty: true, Latest: latest, Engine: s.Engine})
	if err := m2.Up(); !errors.Is(err, db.ErrDirty) {
		t.Fatalf("Up through a new migrator: err = %v, want db.ErrDirty", err)
	}

	// Forcing the version clears the flag and Up works again.
	if err := m.Force(int(latest)); err != nil {
		t.Fatalf("Force: %v", err)
	}
	wantStatus(t, m, db.MigrationStatus{Version: latest, Dirty: false, Latest: latest, Engine: s.Engine})
	if err := m.Up(); err != nil {
		t.Fatalf("Up after Force: %v", err)
	}
	storeWorks(t, s, "org_dirty")

	// Up refuses a dirty schema before touching it: with the tables gone
	// and the version forced dirty, nothing is created.
	if err := m.Down(0); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if err := m.Force(int(latest)); err != nil {
		t.Fatalf("Force: %v", err)
	}
	rawExec(t, s, "UPDATE "+table+" SET dirty = true")
	if err := m.Up(); !errors.Is(err, db.ErrDirty) {
		t.Fatalf("Up on a dirty, empty schema: err = %v, want db.ErrDirty", err)
	}
	if n := appTables(t, s); n != 0 {
		t.Fatalf("Up on a dirty schema created %d objects", n)
	}
}

// schemaDump lists the application's schema objects, one line each, sorted:
// on SQLite sqlite_master's entries with their SQL; on PostgreSQL the
// tables, columns (with their order), indexes, constraints, functions,
// triggers, sequences and views of the store's schema. The migrations
// table is left out, the schema's own name is written SCHEMA, and a day
// partition's date (000007 makes them around today) is written DATE.
func schemaDump(t *testing.T, s *db.Store) []string {
	t.Helper()
	var queries []string
	schema := ""
	if s.Engine == db.Postgres {
		if err := s.DB.QueryRow(`SELECT current_schema()`).Scan(&schema); err != nil {
			t.Fatal(err)
		}
		queries = []string{
			`SELECT format('table %s %s', table_name, table_type) FROM information_schema.tables WHERE table_schema = current_schema()`,
			`SELECT format('column %s.%s #%s %s %s(%s) null=%s default=%s identity=%s generated=%s', table_name, column_name,
				rank() OVER (PARTITION BY table_name ORDER BY ordinal_position), data_type, udt_name, character_maximum_length,
				is_nullable, column_default, is_identity, is_generated)
			 FROM information_schema.columns WHERE table_schema = current_schema()`,
			`SELECT format('index %s: %s', indexname, indexdef) FROM pg_indexes WHERE schemaname = current_schema()`,
			`SELECT format('constraint %s %s: %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
			 FROM pg_constraint WHERE connamespace = current_schema()::regnamespace`,
			`SELECT format('function %s: %s', proname, pg_get_functiondef(oid))
			 FROM pg_proc WHERE pronamespace = current_schema()::regnamespace AND prokind IN ('f', 'p')`,
			`SELECT format('trigger %s: %s', tgname, pg_get_triggerdef(oid)) FROM pg_trigger
			 WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = current_schema()::regnamespace)`,
			`SELECT format('sequence %s', relname) FROM pg_class WHERE relkind = 'S' AND relnamespace = current_schema()::regnamespace`,
			`SELECT format('view %s: %s', viewname, definition) FROM pg_views WHERE schemaname = current_schema()`,
		}
	} else {
		queries = []string{`SELECT type || ' ' || name || ' on ' || tbl_name || ': ' || COALESCE(sql, '')
			FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'`}
	}
	partition := regexp.MustCompile(`_p[0-9]{8}\b`)
	var out []string
	for _, q := range queries {
		rows, err := s.DB.Query(q)
		if err != nil {
			t.Fatalf("dump: %v\n%s", err, q)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(line, "schema_migrations") {
				continue
			}
			if schema != "" {
				line = strings.ReplaceAll(line, schema, "SCHEMA")
			}
			out = append(out, partition.ReplaceAllString(line, "_pDATE"))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		_ = rows.Close()
	}
	slices.Sort(out)
	return out
}

// upTo is the embedded migrations of the engine up to version v.
func upTo(t *testing.T, engine string, v uint) fs.FS {
	t.Helper()
	src, err := db.Migrations(engine)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(src, ".")
	if err != nil {
		t.Fatal(err)
	}
	out := fstest.MapFS{}
	for _, e := range entries {
		var n uint
		if _, err := fmt.Sscanf(e.Name(), "%d_", &n); err != nil || n > v {
			continue
		}
		b, err := fs.ReadFile(src, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = &fstest.MapFile{Data: b}
	}
	return out
}

func diffDumps(a, b []string) string {
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// runMigrateSchemaIdentical: every migration's down restores the schema it
// found, object for object, and its up run again rebuilds the very schema
// it built the first time; all the way down and up again ends where the
// first up did.
func runMigrateSchemaIdentical(t *testing.T, s *db.Store) {
	ctx := context.Background()
	latest := latestMigration(t, s.Engine)
	dumps := [][]string{schemaDump(t, s)}
	if len(dumps[0]) != 0 {
		t.Fatalf("a fresh database holds %v", dumps[0])
	}
	for v := uint(1); v <= latest; v++ {
		m, err := db.NewMigratorFS(ctx, s, upTo(t, s.Engine, v))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Up(); err != nil {
			t.Fatalf("up to %d: %v", v, err)
		}
		up := schemaDump(t, s)
		if err := m.Down(1); err != nil {
			t.Fatalf("down from %d: %v", v, err)
		}
		if got := schemaDump(t, s); !slices.Equal(got, dumps[v-1]) {
			t.Fatalf("down from %d does not restore the schema of %d:\n%s", v, v-1, diffDumps(dumps[v-1], got))
		}
		if err := m.Up(); err != nil {
			t.Fatalf("up to %d again: %v", v, err)
		}
		if got := schemaDump(t, s); !slices.Equal(got, up) {
			t.Fatalf("up to %d after its down differs from the first:\n%s", v, diffDumps(up, got))
		}
		dumps = append(dumps, up)
		_ = m.Close()
	}
	m := newMigrator(t, s)
	if err := m.Down(0); err != nil {
		t.Fatal(err)
	}
	if got := schemaDump(t, s); len(got) != 0 {
		t.Fatalf("all the way down leaves %v", got)
	}
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	if got := schemaDump(t, s); !slices.Equal(got, dumps[latest]) {
		t.Fatalf("up → down → up differs from the first up:\n%s", diffDumps(dumps[latest], got))
	}
	wantStatus(t, m, db.MigrationStatus{Version: latest, Latest: latest, Engine: s.Engine})
}

// runMigrateConcurrent starts two migrators, each on its own connection, on
// the same fresh database at once, as two hosts starting together do. Both
// succeed (one waits for the other), the schema ends at the latest version,
// clean, and is the one a single migrator builds: a migration applied twice
// would have failed (a table created twice) or left another schema.
func runMigrateConcurrent(t *testing.T, engine string) {
	ctx := context.Background()
	latest := latestMigration(t, engine)
	want := schemaDump(t, migrated(t, openStore(t, engine)))
	for round := range 5 {
		s := openStore(t, engine)
		var (
			wg    sync.WaitGroup
			errs  [2]error
			ready sync.WaitGroup
			start = make(chan struct{})
		)
		ready.Add(2)
		for i := range 2 {
			wg.Go(func() {
				m, err := db.NewMigrator(ctx, s)
				ready.Done()
				if err != nil {
					errs[i] = err
					return
				}
				defer m.Close()
				<-start
				errs[i] = m.Up()
			})
		}
		ready.Wait()
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: two migrators at once: %v; %v", round, errs[0], errs[1])
		}
		wantStatus(t, newMigrator(t, s), db.MigrationStatus{Version: latest, Latest: latest, Engine: engine})
		if got := schemaDump(t, s); !slices.Equal(got, want) {
			t.Fatalf("round %d: two migrators built another schema than one:\n%s", round, diffDumps(want, got))
		}
		storeWorks(t, s, fmt.Sprintf("org_race%d", round))
	}
}
