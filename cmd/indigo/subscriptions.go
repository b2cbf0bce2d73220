package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/sdk"
)

// subscriptionsCmd sets plans and balances of core-subscriptions. It runs
// the module binary's admin mode on the module's data directory, with the
// module's config from indigo.toml, so it works whether the host is up or
// not.
func (a *app) subscriptionsCmd() *cobra.Command {
	var module string
	cmd := &cobra.Command{
		Use:   "subscriptions",
		Short: "Set an organization's plan and top up its API call tokens (core-subscriptions)",
	}
	cmd.PersistentFlags().StringVar(&module, "module", "", "the subscriptions module's name in [[modules]] (default: the metering provider, else \"subscriptions\")")
	run := func(ctx context.Context, args ...string) error {
		cfg, err := a.loadConfig()
		if err != nil {
			return err
		}
		m, err := subscriptionsModule(cfg, module)
		if err != nil {
			return err
		}
		conf, err := json.Marshal(m.Config)
		if err != nil {
			return err
		}
		// The module's own database, as the host provisions it.
		dir := filepath.Join(cfg.Server.DataDir, "modules", m.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		mdb, err := svc.Store.ProvisionModule(ctx, m.Name, dir)
		_ = svc.Close()
		if err != nil {
			return err
		}
		c := exec.Command(m.Path, append([]string{"admin", "--config", string(conf)}, args...)...)
		c.Env = append(os.Environ(), sdk.EnvDBEngine+"="+mdb.Engine, sdk.EnvDBDSN+"="+mdb.DSN)
		c.Stdout, c.Stderr = a.out, os.Stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("subscriptions %s: %w", args[0], err)
		}
		return nil
	}
	cmd.AddCommand(
		&cobra.Command{
			Use: "set-plan ORG PLAN", Short: "Move an org to a plan (personal, trial, pro, starter, education, professional, enterprise)",
			Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), "set-plan", args[0], args[1]) },
		},
		&cobra.Command{
			Use: "top-up ORG TOKENS", Short: "Add API call tokens that do not expire with the month",
			Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), "top-up", args[0], args[1]) },
		},
		&cobra.Command{
			Use: "show ORG", Short: "Print an org's plan and balance as JSON",
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), "show", args[0]) },
		},
	)
	return cmd
}

func subscriptionsModule(cfg *config.Config, name string) (config.Module, error) {
	if name == "" {
		name = cfg.API.Deps.DeductAPICallToken
	}
	if name == "" {
		name = "subscriptions"
	}
	for _, m := range cfg.Modules {
		if m.Name == name {
			return m, nil
		}
	}
	return config.Module{}, fmt.Errorf("no module %q in [[modules]]; run indigo add core-subscriptions", name)
}
