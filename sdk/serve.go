package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/go-plugin"

	"github.com/indigo-hq/indigo/sdk/rpc"
)

// Serve is a module's main: it checks m and serves it to the host until the
// host stops it. With the single argument "describe" it prints m's manifest
// as JSON instead and returns, so that the host can catalogue a binary
// without starting it as a plugin. An invalid module exits with status 1
// and every problem on stderr.
func Serve(m Module) {
	if code := run(m, os.Args[1:], os.Stdout, os.Stderr); code != 0 {
		os.Exit(code)
	}
}

// run is Serve without the process around it, so tests can drive it.
func run(m Module, args []string, stdout, stderr io.Writer) int {
	if err := m.validate(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if len(args) > 0 && args[0] == "migrate" {
		return runMigrate(m, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "describe" {
		if err := writeManifest(stdout, m.Manifest()); err != nil {
			fmt.Fprintf(stderr, "describe: %v\n", err)
			return 1
		}
		return 0
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: rpc.Handshake,
		Plugins:         rpc.PluginMap(Adapt(m)),
		GRPCServer:      rpc.NewServer,
	})
	return 0
}

// The environment `indigo db migrate` runs a module's migrate mode with.
const (
	EnvDBEngine = "INDIGO_MODULE_DB_ENGINE"
	EnvDBDSN    = "INDIGO_MODULE_DB_DSN"
)

// runMigrate is `<module> migrate up|down [N]|force VERSION|status`: it
// migrates the database named by the environment and prints the status as
// JSON.
func runMigrate(m Module, args []string, stdout, stderr io.Writer) int {
	engine, dsn := os.Getenv(EnvDBEngine), os.Getenv(EnvDBDSN)
	if engine == "" || dsn == "" {
		fmt.Fprintf(stderr, "migrate: %s and %s must be set (indigo db migrate sets them)\n", EnvDBEngine, EnvDBDSN)
		return 2
	}
	st, err := migrateCommand(context.Background(), m, engine, dsn, args)
	if err != nil {
		fmt.Fprintf(stderr, "module %s: migrate: %v\n", m.Name, err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(st); err != nil {
		return 1
	}
	return 0
}

// writeManifest writes what `describe` prints: indented JSON and a newline.
func writeManifest(w io.Writer, m Manifest) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(m)
}
