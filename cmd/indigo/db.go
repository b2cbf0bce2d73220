package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/db"
)

func (a *app) dbCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Database migrations"}
	migrate := &cobra.Command{Use: "migrate", Short: "Apply, revert or inspect migrations"}
	run := func(fn func(m *db.Migrator, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			store, err := db.Open(cmd.Context(), cfg.Database.Driver, cfg.Database.URL)
			if err != nil {
				return err
			}
			defer store.Close()
			m, err := db.NewMigrator(cmd.Context(), store)
			if err != nil {
				return err
			}
			defer m.Close()
			if err := fn(m, args); err != nil {
				return err
			}
			st, err := m.Status()
			if err != nil {
				return err
			}
			dirty := ""
			if st.Dirty {
				dirty = " (dirty)"
			}
			a.printf("%s schema version %d of %d%s\n", st.Engine, st.Version, st.Latest, dirty)
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
	cmd.AddCommand(migrate)
	return cmd
}
