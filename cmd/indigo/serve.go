package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/license"
)

func (a *app) serveCmd() *cobra.Command {
	var noMigrate, debug bool
	var licenseToken string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.quietDefaults = true // the banner says which config is in use
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			licensed, err := a.checkCoreAPI(cfg, licenseToken)
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
			svc, err := core.Open(ctx, cfg, core.Options{Logger: log, NoMigrate: noMigrate,
				WaitForDatabase: cfg.Database.StartTimeout.Duration})
			if err != nil {
				return err
			}
			host := core.New(svc, core.Options{})
			if err := host.Start(ctx); err != nil {
				_ = svc.Close()
				return err
			}
			a.printf("Indigo is listening on %s (%s database)\n", host.URL(), cfg.Database.Driver)
			a.printf("Using %s\n", configSummary(cfg))
			a.printf("core-api: %s\n", licensed)
			if cfg.Identity.Provider == "jwt" {
				a.printf("Sign-in: tokens from %s (audience %s), keys from %s\n", cfg.Identity.JWT.Issuer, cfg.Identity.JWT.Audience, cfg.Identity.JWT.JWKSURL)
			} else {
				first, err := host.Bootstrap(ctx)
				if err != nil {
					_ = host.Shutdown(context.Background())
					return err
				}
				a.printf("Default organization: %s (%s)\n", first.OrgName, first.OrgID)
				a.printf("Sign in as %s (one-time link, valid for %s, until %s): %s\n", cfg.Identity.DefaultOwner,
					cfg.Identity.LoginLinkTTL.Duration, first.ExpiresAt.Local().Format("15:04:05 MST"), first.URL)
				a.printf("A new link: indigo login-link --org %s\n", first.OrgID)
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
	cmd.Flags().StringVar(&licenseToken, "license", "", "the core-api license token (else INDIGO_LICENSE, else indigo.license beside the config)")
	return cmd
}

// checkCoreAPI refuses to serve unless core-api is enabled and either
// licensed or in development mode on a loopback address. It says which,
// for the start-up banner.
func (a *app) checkCoreAPI(cfg *config.Config, token string) (string, error) {
	if !cfg.API.Enabled {
		return "", errors.New("core-api is not enabled in " + a.configPath + "; run `indigo add core-api` (or `indigo add core-api --dev` for local development)")
	}
	if cfg.API.Dev {
		if !loopback(cfg.Server.Addr) {
			return "", fmt.Errorf("core-api development mode serves on loopback only, and server.addr is %q; use 127.0.0.1 or get a license", cfg.Server.Addr)
		}
		return "development mode without a license: loopback only, not for production", nil
	}
	token, source, err := license.Load(token, filepath.Dir(a.configPath))
	if err != nil {
		return "", fmt.Errorf("license: %w", err)
	}
	// wall clock: a licence expires in real time
	l, err := license.Verify(token, license.PublicKeyFromEnv(), license.CoreAPI, time.Now())
	if err != nil {
		return "", fmt.Errorf("license (from %s): %w", source, err)
	}
	return fmt.Sprintf("licensed to %s until %s", l.Licensee, l.ExpiresAt.Format("2006-01-02")), nil
}

// loopback reports whether addr listens only on a loopback interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
