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
	root.AddCommand(a.serveCmd(), a.orgsCmd(), a.keysCmd(), a.loginLinkCmd(), a.dbCmd(), a.versionCmd(), a.licenseCmd(), a.subscriptionsCmd())
	root.AddCommand(a.projectCmds()...)
	return root
}

func (a *app) loadConfig() (*config.Config, error) {
	return config.Load(a.configPath, a.configSet, os.Environ())
}

// open loads the config and opens the services for a one-shot command.
func (a *app) open(ctx context.Context) (*core.Services, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	return core.Open(ctx, cfg, core.Options{Logger: core.NewLogger(os.Stderr, slog.LevelWarn), DescribeModules: true})
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
