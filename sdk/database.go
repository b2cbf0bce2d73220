package sdk

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver (pure Go)
)

// The engines a module's database may be on.
const (
	EngineSQLite   = "sqlite"
	EnginePostgres = "postgres"
)

// openDB opens the module's database as the host described it: a SQLite
// file (WAL, a busy timeout, foreign keys, writes that take the lock at
// BEGIN) or a PostgreSQL URL for the module's own role and schema.
func openDB(engine, dsn string) (*sql.DB, error) {
	switch engine {
	case EngineSQLite:
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_txlock", "immediate")
		db, err := sql.Open("sqlite", "file:"+dsn+"?"+q.Encode())
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(8)
		return db, nil
	case EnginePostgres:
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, err
		}
		// Every host runs every module: a bounded pool per module process
		// keeps N hosts × M modules within the server's connections (calls
		// past it wait for a connection instead of failing).
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
		return db, nil
	}
	return nil, fmt.Errorf("unknown database engine %q", engine)
}

// OpenMigrated opens a module's database and applies its migrations, for a
// module's own tools (an admin command) that run beside the host.
func OpenMigrated(ctx context.Context, engine, dsn string, migrations fs.FS) (*sql.DB, error) {
	db, err := openDB(engine, dsn)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	if migrations != nil {
		if err := migrateUp(db, engine, migrations); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("migration %w", err)
		}
	}
	return db, nil
}

// migrator runs the module's migrations for engine, from the folder of
// that name in src, on db. Migrations take golang-migrate's lock (an
// advisory lock per schema on PostgreSQL), so hosts starting at once apply
// each one exactly once.
func migrator(db *sql.DB, engine string, src fs.FS) (*migrate.Migrate, fs.FS, error) {
	sub, err := fs.Sub(src, engine)
	if err != nil {
		return nil, nil, err
	}
	source, err := iofs.New(sub, ".")
	if err != nil {
		return nil, nil, fmt.Errorf("migrations/%s: %w", engine, err)
	}
	var drv database.Driver
	switch engine {
	case EngineSQLite:
		drv, err = migratesqlite.WithInstance(db, &migratesqlite.Config{})
	case EnginePostgres:
		drv, err = migratepgx.WithInstance(db, &migratepgx.Config{})
	default:
		err = fmt.Errorf("unknown database engine %q", engine)
	}
	if err != nil {
		return nil, nil, err
	}
	m, err := migrate.NewWithInstance("iofs", source, engine, drv)
	return m, sub, err
}

// migrateUp applies every pending migration. A failure names the file and
// the reason; the database is left dirty at that version, as golang-migrate
// leaves it, for `indigo db migrate force`.
func migrateUp(db *sql.DB, engine string, src fs.FS) error {
	m, sub, err := migrator(db, engine, src)
	if err != nil {
		return err
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("%s: %w", failedFile(m, sub, engine), err)
	}
	return nil
}

// failedFile names the migration a failed Up stopped at (the dirty
// version's up file).
func failedFile(m *migrate.Migrate, src fs.FS, engine string) string {
	v, _, err := m.Version()
	if err != nil {
		return "migrations/" + engine
	}
	prefix := fmt.Sprintf("%d_", v)
	names, _ := fs.Glob(src, "*.up.sql")
	for _, n := range names {
		if strings.HasPrefix(strings.TrimLeft(n, "0"), prefix) {
			return path.Join("migrations", engine, n)
		}
	}
	return fmt.Sprintf("migrations/%s (version %d)", engine, v)
}

// MigrationStatus is where a module's database stands against its
// migrations.
type MigrationStatus struct {
	Module  string `json:"module"`
	Engine  string `json:"engine"`
	Version uint   `json:"version"`
	Dirty   bool   `json:"dirty"`
	Latest  uint   `json:"latest"`
}

// migrateCommand is `<module> migrate up|down [N]|force V|status`, which
// `indigo db migrate` runs with the database in the environment.
func migrateCommand(ctx context.Context, m Module, engine, dsn string, args []string) (MigrationStatus, error) {
	st := MigrationStatus{Module: m.Name, Engine: engine}
	if m.Migrations == nil {
		return st, fmt.Errorf("module %s has no migrations", m.Name)
	}
	db, err := openDB(engine, dsn)
	if err != nil {
		return st, err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return st, fmt.Errorf("module %s: database: %w", m.Name, err)
	}
	mg, sub, err := migrator(db, engine, m.Migrations)
	if err != nil {
		return st, err
	}
	if len(args) == 0 {
		args = []string{"status"}
	}
	switch args[0] {
	case "up":
		err = migrateUp(db, engine, m.Migrations)
	case "down":
		steps := 0
		if len(args) > 1 {
			if _, e := fmt.Sscan(args[1], &steps); e != nil || steps < 0 {
				return st, fmt.Errorf("down takes a number of steps, got %q", args[1])
			}
		}
		if steps == 0 {
			err = mg.Down()
		} else {
			err = mg.Steps(-steps)
		}
	case "force":
		var v int
		if len(args) < 2 {
			return st, errors.New("force takes a version")
		}
		if _, e := fmt.Sscan(args[1], &v); e != nil {
			return st, fmt.Errorf("force takes a version, got %q", args[1])
		}
		err = mg.Force(v)
	case "status":
	default:
		return st, fmt.Errorf("migrate takes up, down [N], force VERSION or status, not %q", args[0])
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return st, err
	}
	v, dirty, verr := mg.Version()
	if verr != nil && !errors.Is(verr, migrate.ErrNilVersion) {
		return st, verr
	}
	st.Version, st.Dirty = v, dirty
	st.Latest = latest(sub)
	return st, nil
}

// latest is the highest version among the up files in src.
func latest(src fs.FS) uint {
	names, _ := fs.Glob(src, "*.up.sql")
	var max uint
	for _, n := range names {
		var v uint
		if _, err := fmt.Sscanf(n, "%d_", &v); err == nil && v > max {
			max = v
		}
	}
	return max
}
