package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

// ProjectMigrationsDir is where a project keeps the migrations of one
// engine: core-api's (copied there by `indigo add core-api`) and its own.
func ProjectMigrationsDir(projectDir, engine string) string {
	return filepath.Join(projectDir, "db", "migrations", engine)
}

// DirMigrations returns the migrations in dir, or nil when dir does not
// exist or holds no NNNNNN_title.up.sql file, in which case the caller
// falls back to the embedded migrations.
func DirMigrations(dir string) (fs.FS, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		var v uint
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".up.sql") {
			if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil {
				return os.DirFS(dir), nil
			}
		}
	}
	return nil, nil
}

// NewMigratorFS is NewMigrator on the migrations in src (a directory such
// as a project's db/migrations/<engine>) instead of the embedded ones.
func NewMigratorFS(ctx context.Context, s *Store, src fs.FS) (*Migrator, error) {
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
	return &Migrator{m: m, sqldb: sqldb, engine: s.Engine, latest: latest}, nil
}

// ProjectMigrator is the migrator for a project: on the project's
// db/migrations/<engine> when that folder holds migrations, else on the
// embedded ones. from names the folder ("" for the embedded migrations).
// projectDir "" always means the embedded migrations.
func ProjectMigrator(ctx context.Context, s *Store, projectDir string) (m *Migrator, from string, err error) {
	if projectDir != "" {
		src, err := DirMigrations(ProjectMigrationsDir(projectDir, s.Engine))
		if err != nil {
			return nil, "", err
		}
		if src != nil {
			m, err := NewMigratorFS(ctx, s, src)
			return m, filepath.ToSlash(filepath.Join("db", "migrations", s.Engine)), err
		}
	}
	m, err = NewMigrator(ctx, s)
	return m, "", err
}
