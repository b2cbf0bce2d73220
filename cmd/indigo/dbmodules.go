package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/module"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/sdk"
)

// moduleMigrate runs `<module binary> migrate ARGS` on the module's own
// database, provisioned as the host provisions it, and returns its status.
// A module whose SQLite file does not exist yet is reported, not created,
// unless ARGS is up.
func moduleMigrate(ctx context.Context, cfg *config.Config, store *db.Store, mc config.Module, args ...string) (sdk.MigrationStatus, error) {
	dir := filepath.Join(cfg.Server.DataDir, "modules", mc.Name)
	if args[0] == "up" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return sdk.MigrationStatus{}, err
		}
	}
	mdb, err := store.ProvisionModule(ctx, mc.Name, dir)
	if err != nil {
		return sdk.MigrationStatus{}, fmt.Errorf("module %s: %w", mc.Name, err)
	}
	if mdb.Engine == db.SQLite && args[0] != "up" {
		if _, err := os.Stat(mdb.DSN); errors.Is(err, fs.ErrNotExist) {
			return sdk.MigrationStatus{Module: mc.Name, Engine: mdb.Engine}, errNoModuleDB
		}
	}
	cmd := exec.CommandContext(ctx, mc.Path, append([]string{"migrate"}, args...)...)
	cmd.Env = append(mc.Environ(os.Environ()), sdk.EnvDBEngine+"="+mdb.Engine, sdk.EnvDBDSN+"="+mdb.DSN)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return sdk.MigrationStatus{}, errors.New(msg)
	}
	var st sdk.MigrationStatus
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		return st, fmt.Errorf("module %s: migrate printed %q", mc.Name, stdout.String())
	}
	return st, nil
}

var errNoModuleDB = errors.New("no database yet (the host makes it when it first loads the module)")

// databaseModules lists the configured modules that ask for a database.
func databaseModules(ctx context.Context, cfg *config.Config) ([]config.Module, error) {
	var out []config.Module
	for _, mc := range cfg.Modules {
		m, err := module.Describe(ctx, mc)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", mc.Name, err)
		}
		if m.Database {
			out = append(out, mc)
		}
	}
	return out, nil
}

func moduleStatusLine(st sdk.MigrationStatus) string {
	s := fmt.Sprintf("module %s: %s schema version %d of %d", st.Module, st.Engine, st.Version, st.Latest)
	if st.Dirty {
		s += " (dirty)"
	}
	return s
}

func findModule(cfg *config.Config, name string) (config.Module, bool) {
	for _, m := range cfg.Modules {
		if m.Name == name {
			return m, true
		}
	}
	return config.Module{}, false
}
