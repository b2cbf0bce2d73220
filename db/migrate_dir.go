package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
