package project

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
	"slices"
	"strings"
	"time"

	"github.com/indigo-hq/indigo/core/scope"
	"github.com/indigo-hq/indigo/sdk"
)

// DescribeTimeout bounds `<binary> describe`, which only prints JSON.
const DescribeTimeout = 10 * time.Second

// Describe runs `bin describe` and reads the manifest it prints.
func Describe(ctx context.Context, bin string, timeout time.Duration) (sdk.Manifest, error) {
	if timeout <= 0 {
		timeout = DescribeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "describe")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return sdk.Manifest{}, fmt.Errorf("`%s describe` did not finish within %s", bin, timeout)
		}
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		return sdk.Manifest{}, fmt.Errorf("`%s describe`: %v: %s", bin, err, msg)
	}
	var m sdk.Manifest
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		return sdk.Manifest{}, fmt.Errorf("`%s describe` printed no manifest: %v", bin, err)
	}
	return m, nil
}

// Other is a module already in the configuration, as far as it could be
// described.
type Other struct {
	Name     string
	Manifest *sdk.Manifest // nil when describe failed
	Err      error
}

// CheckScopes registers scopes as the host does at start, core's first,
// then every other module's, then m's, and returns an error for anything
// the host would refuse because of m: a scope or prefix that core or
// another module already owns, or a route scope nobody declares. Problems
// that belong to the other modules come back as warnings.
func CheckScopes(m sdk.Manifest, others []Other) (warnings []string, err error) {
	reg := scope.NewWithCore()
	complete := true
	for _, o := range others {
		if o.Name == m.Name {
			continue
		}
		if o.Manifest == nil {
			complete = false
			warnings = append(warnings, fmt.Sprintf("cannot check against module %q: %v", o.Name, o.Err))
			continue
		}
		if err := reg.Register(o.Name, o.Name, scopesOf(*o.Manifest)...); err != nil {
			warnings = append(warnings, fmt.Sprintf("module %q: %v", o.Name, err))
		}
	}
	if err := reg.Register(m.Name, m.Name, scopesOf(m)...); err != nil {
		return warnings, fmt.Errorf("scope collision: %w", err)
	}
	var unknown []string
	for _, rt := range m.Routes {
		for _, s := range rt.Scopes {
			if !reg.Has(s) && !slices.Contains(unknown, s) {
				unknown = append(unknown, s)
			}
		}
	}
	if len(unknown) > 0 {
		msg := fmt.Sprintf("routes of %q require scopes that neither core nor any listed module declares: %s", m.Name, strings.Join(unknown, ", "))
		if complete {
			return warnings, fmt.Errorf("%s", msg)
		}
		warnings = append(warnings, msg)
	}
	return warnings, nil
}

func scopesOf(m sdk.Manifest) []scope.Scope {
	out := make([]scope.Scope, len(m.Scopes))
	for i, s := range m.Scopes {
		out[i] = scope.Scope{ID: s.ID, Label: s.Label}
	}
	return out
}

// CoreScopePrefixes are the scope prefixes core owns (a module may not be
// named after one).
func CoreScopePrefixes() []string {
	var out []string
	for _, s := range scope.Core {
		p, _, _ := strings.Cut(s.ID, ":")
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// FileSHA256 is the hex SHA-256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
