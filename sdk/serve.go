package sdk

import (
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

// writeManifest writes what `describe` prints: indented JSON and a newline.
func writeManifest(w io.Writer, m Manifest) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(m)
}
