package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type app struct {
	configPath string
	configSet  bool
	out        io.Writer
	// quietDefaults skips the note about built-in defaults, for commands
	// that print the config they use themselves (serve).
	quietDefaults bool
}

func newRoot() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:           "indigo",
		Short:         "Indigo: organization-scoped API keys and a scoped, rate-limited API v2",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			a.out = cmd.OutOrStdout()
			a.configSet = cmd.Flags().Changed("config")
			if !a.configSet {
				if v := os.Getenv("INDIGO_CONFIG"); v != "" {
					a.configPath, a.configSet = v, true
				}
			}
		},
	}
	root.PersistentFlags().StringVar(&a.configPath, "config", "indigo.toml", "configuration file (INDIGO_CONFIG)")
	root.AddCommand(a.serveCmd(), a.orgsCmd(), a.keysCmd(), a.loginLinkCmd(), a.dbCmd(), a.versionCmd(), a.licenseCmd(), a.subscriptionsCmd(), a.tasksCmd())
	root.AddCommand(a.projectCmds()...)
	return root
}

// loadConfig loads the config. Without a file it says so on stderr (stdout
// stays for what scripts read), naming the folder and the database that
// the built-in defaults give.
func (a *app) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(a.configPath, a.configSet, os.Environ())
	if err != nil {
		return nil, err
	}
	if cfg.File == "" && !a.quietDefaults {
		fmt.Fprintf(os.Stderr, "indigo: %s\n", configSummary(cfg))
	}
	return cfg, nil
}

// configSummary says which configuration is in force and its database.
func configSummary(cfg *config.Config) string {
	where := cfg.Database.URL
	if cfg.Database.Driver != "sqlite" {
		where = "from " + cfg.Source("database.url")
	}
	if cfg.File != "" {
		return fmt.Sprintf("config %s (%s database %s)", cfg.File, cfg.Database.Driver, where)
	}
	return fmt.Sprintf("no indigo.toml in %s and no --config or INDIGO_CONFIG: using the built-in defaults (%s database %s)",
		cfg.Dir, cfg.Database.Driver, where)
}

// open loads the config and opens the services for a one-shot command on
// an existing database: a command that reads or changes records never
// creates an empty one.
func (a *app) open(ctx context.Context) (*core.Services, error) {
	return a.openWith(ctx, core.Options{ExistingDatabase: true})
}

// openOrCreate is open for the commands that may start a new database.
func (a *app) openOrCreate(ctx context.Context) (*core.Services, error) {
	return a.openWith(ctx, core.Options{})
}

func (a *app) openWith(ctx context.Context, opts core.Options) (*core.Services, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	opts.Logger = core.NewLogger(os.Stderr, slog.LevelWarn)
	opts.DescribeModules = true
	return core.Open(ctx, cfg, opts)
}

// requireOrg fails with the same message wherever a command names an
// organization that is not there.
func requireOrg(ctx context.Context, svc *core.Services, orgID string) error {
	_, ok, err := svc.Local.Org(ctx, orgID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("organization %q does not exist (indigo orgs list shows them)", orgID)
	}
	return nil
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) printf(format string, args ...any) { fmt.Fprintf(a.out, format, args...) }

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(*cobra.Command, []string) { a.printf("indigo %s\n", version) },
	}
}
