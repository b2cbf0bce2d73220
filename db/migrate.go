package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

//go:embed migrations
var migrationsFS embed.FS

// Migrations returns the embedded migrations of one engine.
func Migrations(engine string) (fs.FS, error) {
	return fs.Sub(migrationsFS, "migrations/"+engine)
}

// ErrDirty reports a schema left half-migrated by a failed migration.
var ErrDirty = errors.New("database schema is dirty")

// MigrationStatus is where a database stands against the embedded migrations.
type MigrationStatus struct {
	Version uint   `json:"version"`
	Dirty   bool   `json:"dirty"`
	Latest  uint   `json:"latest"`
	Engine  string `json:"engine"`
}

// Migrator runs the embedded migrations on a database. It keeps its own
// connection, which Close releases, so that migrate's Close never touches
// the store's pool.
type Migrator struct {
	m      *migrate.Migrate
	sqldb  *sql.DB
	engine string
	latest uint
	// lockPath is the file that serialises migrators of a SQLite
	// database ("" on PostgreSQL, whose driver takes an advisory lock).
	lockPath string
}

// NewMigrator opens a migrator on the embedded migrations for the store's
// engine and URL.
func NewMigrator(ctx context.Context, s *Store) (*Migrator, error) {
	src, err := Migrations(s.Engine)
	if err != nil {
		return nil, err
	}
	return NewMigratorFS(ctx, s, src)
}

// NewMigratorFS opens a migrator on the migrations in src: the embedded
// ones, or a project's db/migrations/<engine>.
func NewMigratorFS(_ context.Context, s *Store, src fs.FS) (*Migrator, error) {
	latest, err := latestVersion(src)
	if err != nil {
		return nil, err
	}
	source, err := iofs.New(src, ".")
	if err != nil {
		return nil, err
	}
	var (
		drv   database.Driver
		sqldb *sql.DB
	)
	switch s.Engine {
	case SQLite:
		sqldb, err = sql.Open("sqlite", s.sqlitePathDSN())
		if err == nil {
			drv, err = migratesqlite.WithInstance(sqldb, &migratesqlite.Config{})
		}
	case Postgres:
		sqldb, err = sql.Open("pgx", s.URL)
		if err == nil {
			drv, err = migratepgx.WithInstance(sqldb, &migratepgx.Config{MigrationsTable: "indigo_schema_migrations"})
		}
	default:
		err = fmt.Errorf("unknown engine %q", s.Engine)
	}
	if err != nil {
		if sqldb != nil {
			_ = sqldb.Close()
		}
		return nil, fmt.Errorf("migration driver: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", source, s.Engine, drv)
	if err != nil {
		_ = sqldb.Close()
		return nil, err
	}
	mg := &Migrator{m: m, sqldb: sqldb, engine: s.Engine, latest: latest}
	if s.Engine == SQLite {
		mg.lockPath = s.URL + ".migrate-lock"
	}
	return mg, nil
}

// exclusive runs fn holding the database's migration lock. golang-migrate
// takes one itself, but its SQLite driver's is a flag in the driver value:
// two migrators (two processes starting at once, or serve beside `indigo db
// migrate up`) each read the version, then both applied the same migration
// and the second failed, leaving the schema dirty. A lock on a file beside
// the database serialises them, across processes.
func (m *Migrator) exclusive(fn func() error) error {
	if m.lockPath == "" {
		return fn()
	}
	unlock, err := lockFile(m.lockPath)
	if err != nil {
		return fmt.Errorf("migration lock %s: %w", m.lockPath, err)
	}
	defer unlock()
	return fn()
}

func (s *Store) sqlitePathDSN() string {
	if s.Engine != SQLite {
		return s.URL
	}
	return SQLiteDSN(s.URL)
}

func latestVersion(src fs.FS) (uint, error) {
	entries, err := fs.ReadDir(src, ".")
	if err != nil {
		return 0, err
	}
	var latest uint
	for _, e := range entries {
		var v uint
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil && v > latest {
			latest = v
		}
	}
	return latest, nil
}

// Status reports the current version and whether it is dirty.
func (m *Migrator) Status() (MigrationStatus, error) {
	v, dirty, err := m.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		err = nil
	}
	return MigrationStatus{Version: v, Dirty: dirty, Latest: m.latest, Engine: m.engine}, err
}

// Up applies every pending migration. A dirty schema is refused with
// ErrDirty, since running on top of it could lose data. The version is read
// under the migration lock: read before it, a migration that another
// migrator is running looks like a dirty schema.
func (m *Migrator) Up() error {
	return m.exclusive(func() error {
		err := m.m.Up()
		if dirty, ok := errors.AsType[migrate.ErrDirty](err); ok {
			return fmt.Errorf("%w at version %d: fix the schema by hand, then run `indigo db migrate force %d`", ErrDirty, dirty.Version, dirty.Version)
		}
		if err != nil && !errors.Is(err, migrate.ErrNoChange) {
			return err
		}
		return nil
	})
}

// Down reverts the given number of migrations (all when steps <= 0).
func (m *Migrator) Down(steps int) error {
	return m.exclusive(func() error {
		if _, _, err := m.m.Version(); errors.Is(err, migrate.ErrNilVersion) {
			return nil // nothing applied
		}
		var err error
		if steps <= 0 {
			err = m.m.Down()
		} else {
			err = m.m.Steps(-steps)
		}
		var short migrate.ErrShortLimit
		if errors.Is(err, migrate.ErrNoChange) || errors.As(err, &short) {
			return nil // asked for more steps than were applied: all are reverted
		}
		return err
	})
}

// Force sets the version without running anything and clears the dirty flag.
func (m *Migrator) Force(version int) error {
	return m.exclusive(func() error { return m.m.Force(version) })
}

// Close releases the migrator's connection.
func (m *Migrator) Close() error {
	srcErr, dbErr := m.m.Close()
	return errors.Join(srcErr, dbErr, m.sqldb.Close())
}

// MigrateUp is the common case: open a migrator, apply everything, close.
func MigrateUp(ctx context.Context, s *Store) error {
	m, err := NewMigrator(ctx, s)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up()
}
