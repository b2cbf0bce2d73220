package module

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/scope"
	"github.com/indigo-hq/indigo/sdk"
)

// Describe runs a module binary in its describe mode, which prints the
// manifest and exits without serving, so that commands can learn a
// module's scopes without starting it. A recorded SHA-256 is checked first.
func Describe(ctx context.Context, mc config.Module) (sdk.Manifest, error) {
	if mc.SHA256 != "" {
		f, err := os.Open(mc.Path)
		if err != nil {
			return sdk.Manifest{}, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		_ = f.Close()
		if err != nil {
			return sdk.Manifest{}, err
		}
		if !strings.EqualFold(hex.EncodeToString(h.Sum(nil)), mc.SHA256) {
			return sdk.Manifest{}, fmt.Errorf("refusing %s: its SHA-256 does not match the one recorded in the config", mc.Path)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, mc.Path, "describe")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return sdk.Manifest{}, fmt.Errorf("%s describe: %v: %s", mc.Path, err, strings.TrimSpace(errOut.String()))
	}
	return decodeManifest(mc.Name, mc.Path, out.Bytes())
}

// decodeManifest reads what the binary at path printed to `describe` and
// checks that it is the manifest of module name.
func decodeManifest(name, path string, out []byte) (sdk.Manifest, error) {
	var m sdk.Manifest
	if err := json.Unmarshal(out, &m); err != nil {
		return sdk.Manifest{}, fmt.Errorf("%s describe printed no manifest: %w", path, err)
	}
	if err := sdk.CheckManifest(name, m); err != nil {
		return sdk.Manifest{}, err
	}
	return m, nil
}

// RegisterDescribed registers the scopes of every configured module from
// its describe output, for commands that run without the host. A module
// that cannot be described is reported through warn and skipped.
func RegisterDescribed(ctx context.Context, reg *scope.Registry, mods []config.Module, warn func(error)) {
	for _, mc := range mods {
		m, err := Describe(ctx, mc)
		if err == nil {
			err = reg.Register(mc.Name, mc.Name, scopesOf(m)...)
		}
		if err != nil && warn != nil {
			warn(fmt.Errorf("module %q: %w", mc.Name, err))
		}
	}
}

func scopesOf(m sdk.Manifest) []scope.Scope {
	out := make([]scope.Scope, len(m.Scopes))
	for i, s := range m.Scopes {
		out[i] = scope.Scope{ID: s.ID, Label: s.Label}
	}
	return out
}
