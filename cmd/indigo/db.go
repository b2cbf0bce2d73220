package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/db"
)

// dbCmd migrates the configured database: from the project's
// db/migrations/<engine> (next to the config file) when that folder holds
// migrations (core-api's, copied by `indigo add core-api`, and the
// project's own), else from the migrations built into indigo.
func (a *app) dbCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Database migrations and generated queries"}
	migrate := &cobra.Command{Use: "migrate", Short: "Apply, revert or inspect migrations",
		Long: "Apply, revert or inspect migrations: those in db/migrations/<engine> next to\nthe config file when that folder holds any, else the ones built into indigo."}
	// Only up may create the database; status, down and force need one.
	run := func(fn func(m *db.Migrator, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if cmd.Name() != "up" {
				if err := core.DatabaseExists(cfg); err != nil {
					return err
				}
			}
			m, store, from, err := a.migrator(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			defer m.Close()
			if err := fn(m, args); err != nil {
				return err
			}
			st, err := m.Status()
			if err != nil {
				return err
			}
			a.printf("%s\n", statusLine(st, from))
			return nil
		}
	}
	up := &cobra.Command{Use: "up", Short: "Apply every pending migration", Args: cobra.NoArgs,
		RunE: run(func(m *db.Migrator, _ []string) error { return m.Up() })}
	var steps int
	down := &cobra.Command{Use: "down", Short: "Revert migrations (--steps N, or all)", Args: cobra.NoArgs,
		RunE: run(func(m *db.Migrator, _ []string) error { return m.Down(steps) })}
	down.Flags().IntVar(&steps, "steps", 0, "how many to revert (0: all)")
	status := &cobra.Command{Use: "status", Short: "Print the schema version", Args: cobra.NoArgs,
		RunE: run(func(*db.Migrator, []string) error { return nil })}
	force := &cobra.Command{Use: "force VERSION", Short: "Set the version and clear the dirty flag (after a manual fix)", Args: cobra.ExactArgs(1),
		RunE: run(func(m *db.Migrator, args []string) error {
			v, err := strconv.Atoi(args[0])
			if err != nil {
				return fmt.Errorf("VERSION must be an integer, got %q", args[0])
			}
			return m.Force(v)
		})}
	migrate.AddCommand(up, down, status, force)
	cmd.AddCommand(migrate, a.dbGenerateCmd())
	return cmd
}
