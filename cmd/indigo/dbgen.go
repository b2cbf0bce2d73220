package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/cmd/indigo/internal/project"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/db"
)

// migrator opens the store and a migrator on the project's migrations
// (see dbCmd); from names them for messages.
func (a *app) migrator(ctx context.Context, cfg *config.Config) (m *db.Migrator, store *db.Store, from string, err error) {
	store, err = db.Open(ctx, cfg.Database.Driver, cfg.Database.URL)
	if err != nil {
		return nil, nil, "", err
	}
	if m, from, err = db.ProjectMigrator(ctx, store, cfg.Dir); err != nil {
		_ = store.Close()
		return nil, nil, "", err
	}
	return m, store, from, nil
}

func statusLine(st db.MigrationStatus, from string) string {
	s := fmt.Sprintf("%s schema version %d of %d", st.Engine, st.Version, st.Latest)
	if st.Dirty {
		s += " (dirty)"
	}
	if from != "" {
		s += " (" + from + ")"
	}
	return s
}

// migrateUp is `indigo db migrate up` for `indigo add core-api`; it says
// whether it applied anything.
func (a *app) migrateUp(ctx context.Context) (string, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return "", err
	}
	m, store, from, err := a.migrator(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer store.Close()
	defer m.Close()
	before, err := m.Status()
	if err != nil {
		return "", err
	}
	if err := m.Up(); err != nil {
		return "", err
	}
	after, err := m.Status()
	if err != nil {
		return "", err
	}
	if after.Version == before.Version {
		return statusLine(after, from) + ", unchanged", nil
	}
	return fmt.Sprintf("%s, applied %d → %d", statusLine(after, from), before.Version, after.Version), nil
}

func (a *app) dbGenerateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Generate Go code from db/queries with sqlc (when the project has db/sqlc.yaml)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := filepath.Abs(filepath.Dir(a.configPath))
			if err != nil {
				return err
			}
			msg, err := a.dbGenerate(cmd.Context(), dir)
			if err != nil {
				return err
			}
			a.printf("db generate: %s\n", msg)
			return nil
		},
	}
}

// dbGenerate runs sqlc on dir/db/sqlc.yaml: in Indigo's own repository
// through go generate (go tool sqlc, then the adapter generator), elsewhere
// with the sqlc version Indigo's go.mod pins, through go run.
func (a *app) dbGenerate(ctx context.Context, dir string) (string, error) {
	dbDir := filepath.Join(dir, "db")
	if _, err := os.Stat(filepath.Join(dbDir, "sqlc.yaml")); errors.Is(err, fs.ErrNotExist) {
		return "nothing to generate (no db/sqlc.yaml)", nil
	} else if err != nil {
		return "", err
	}
	modPath, _, err := project.ModulePath(dir)
	if err != nil {
		return "", err
	}
	if modPath == project.IndigoModule {
		if err := goCmd(ctx, dir, "generate", "./db"); err != nil {
			return "", err
		}
		return "go generate ./db (go tool sqlc generate)", nil
	}
	const sqlc = "github.com/sqlc-dev/sqlc"
	v := project.RequiredVersion(sqlc)
	if v == "" {
		return "", fmt.Errorf("this indigo build pins no %s version", sqlc)
	}
	if err := goCmd(ctx, dbDir, "run", sqlc+"/cmd/sqlc@"+v, "generate", "-f", "sqlc.yaml"); err != nil {
		return "", err
	}
	return "sqlc " + v + " generate -f db/sqlc.yaml", nil
}
