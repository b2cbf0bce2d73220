package main

import (
	"errors"
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
	// With --module NAME, up, down and force act on that module's own
	// database instead of the core's; status lists the core and every
	// module with a database.
	var moduleName string
	run := func(fn func(m *db.Migrator, args []string) error, moduleArgs func(args []string) []string) func(*cobra.Command, []string) error {
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
			if moduleName != "" {
				mc, ok := findModule(cfg, moduleName)
				if !ok {
					return fmt.Errorf("no module %q in [[modules]]", moduleName)
				}
				st, err := moduleMigrate(cmd.Context(), cfg, store, mc, moduleArgs(args)...)
				if err != nil {
					return err
				}
				a.printf("%s\n", moduleStatusLine(st))
				return nil
			}
			if err := fn(m, args); err != nil {
				return err
			}
			st, err := m.Status()
			if err != nil {
				return err
			}
			a.printf("%s\n", statusLine(st, from))
			if cmd.Name() != "status" {
				return nil
			}
			mods, err := databaseModules(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			for _, mc := range mods {
				mst, err := moduleMigrate(cmd.Context(), cfg, store, mc, "status")
				switch {
				case errors.Is(err, errNoModuleDB):
					a.printf("module %s: %v\n", mc.Name, err)
				case err != nil:
					return err
				default:
					a.printf("%s\n", moduleStatusLine(mst))
				}
			}
			return nil
		}
	}
	up := &cobra.Command{Use: "up", Short: "Apply every pending migration", Args: cobra.NoArgs,
		RunE: run(func(m *db.Migrator, _ []string) error { return m.Up() }, func([]string) []string { return []string{"up"} })}
	var steps int
	down := &cobra.Command{Use: "down", Short: "Revert migrations (--steps N, or all)", Args: cobra.NoArgs,
		RunE: run(func(m *db.Migrator, _ []string) error { return m.Down(steps) },
			func([]string) []string { return []string{"down", strconv.Itoa(steps)} })}
	down.Flags().IntVar(&steps, "steps", 0, "how many to revert (0: all)")
	status := &cobra.Command{Use: "status", Short: "Print the schema version", Args: cobra.NoArgs,
		RunE: run(func(*db.Migrator, []string) error { return nil }, func([]string) []string { return []string{"status"} })}
	force := &cobra.Command{Use: "force VERSION", Short: "Set the version and clear the dirty flag (after a manual fix)", Args: cobra.ExactArgs(1),
		RunE: run(func(m *db.Migrator, args []string) error {
			v, err := strconv.Atoi(args[0])
			if err != nil {
				return fmt.Errorf("VERSION must be an integer, got %q", args[0])
			}
			return m.Force(v)
		}, func(args []string) []string { return []string{"force", args[0]} })}
	for _, c := range []*cobra.Command{up, down, status, force} {
		c.Flags().StringVar(&moduleName, "module", "", "act on this module's own database (up, down, force)")
	}
	migrate.AddCommand(up, down, status, force)
	cmd.AddCommand(migrate, a.dbGenerateCmd())
	return cmd
}
