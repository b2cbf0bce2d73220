package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/core"
)

func (a *app) serveCmd() *cobra.Command {
	var noMigrate, debug bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			log := core.NewLogger(os.Stderr, level)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			svc, err := core.Open(ctx, cfg, core.Options{Logger: log, NoMigrate: noMigrate})
			if err != nil {
				return err
			}
			host := core.New(svc, core.Options{})
			if err := host.Start(ctx); err != nil {
				_ = svc.Close()
				return err
			}
			a.printf("Indigo is listening on %s (%s database)\n", host.URL(), cfg.Database.Driver)
			if cfg.Identity.Provider == "jwt" {
				a.printf("Sign-in: tokens from %s (audience %s), keys from %s\n", cfg.Identity.JWT.Issuer, cfg.Identity.JWT.Audience, cfg.Identity.JWT.JWKSURL)
			} else {
				orgID, link, err := host.Bootstrap(ctx)
				if err != nil {
					_ = host.Shutdown(context.Background())
					return err
				}
				a.printf("Default organization: %s\n", orgID)
				a.printf("Sign in as %s (one-time link): %s\n", cfg.Identity.DefaultOwner, link)
			}
			<-ctx.Done()
			a.printf("Shutting down...\n")
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.Duration)
			defer cancel()
			return host.Shutdown(sctx)
		},
	}
	cmd.Flags().BoolVar(&noMigrate, "no-migrate", false, "do not migrate the database at start (refuse to start if it is behind)")
	cmd.Flags().BoolVar(&debug, "debug", false, "log at debug level")
	return cmd
}
