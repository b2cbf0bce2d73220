package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	indigo "github.com/indigo-hq/indigo"
	"github.com/indigo-hq/indigo/cmd/indigo/internal/project"
	"github.com/indigo-hq/indigo/core/config"
)

// projectCmds are the commands that create and change an Indigo project:
// a folder with indigo.toml, modules/, plugins/ and db/.
func (a *app) projectCmds() []*cobra.Command {
	return []*cobra.Command{a.initCmd(), a.addCmd(), a.moduleCmd(), a.modulesCmd()}
}

// steps prints one numbered progress line per step: "[2/5] what: result".
type steps struct {
	a        *app
	n, total int
}

func (a *app) steps(total int) *steps { return &steps{a: a, total: total} }

func (s *steps) done(format string, args ...any) {
	s.n++
	s.a.printf("[%d/%d] %s\n", s.n, s.total, fmt.Sprintf(format, args...))
}

// note prints an indented line under the last step.
func (s *steps) note(format string, args ...any) {
	s.a.printf("      %s\n", fmt.Sprintf(format, args...))
}

// proj is the project a command works on: the folder of the config file.
type proj struct {
	dir     string // absolute
	cfgPath string // absolute path of indigo.toml
	// self is Indigo's own repository, which builds against itself rather
	// than a copy in .indigo/src.
	self bool
}

// source is the folder that go.mod files replace Indigo with.
func (p *proj) source() string {
	if p.self {
		return p.dir
	}
	return project.SourceDir(p.dir)
}

func (a *app) project() (*proj, error) {
	p, err := filepath.Abs(a.configPath)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s not found: run this in an Indigo project (see `indigo init`) or pass --config", a.configPath)
		}
		return nil, err
	}
	dir := filepath.Dir(p)
	mod, _, err := project.ModulePath(dir)
	if err != nil {
		return nil, err
	}
	return &proj{dir: dir, cfgPath: p, self: mod == project.IndigoModule}, nil
}

// rel is path relative to the project, for messages and the config.
func (p *proj) rel(path string) string {
	if r, err := filepath.Rel(p.dir, path); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return path
}

// fileConfig reads indigo.toml and loads it (with the environment, as the
// host will), before an edit.
func (p *proj) fileConfig() (*config.Config, []byte, error) {
	raw, err := os.ReadFile(p.cfgPath)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := config.Load(p.cfgPath, true, os.Environ())
	if err != nil {
		return nil, nil, fmt.Errorf("%w\n(fix the configuration first; nothing was changed)", err)
	}
	return cfg, raw, nil
}

// ensureSource is the step that keeps <project>/.indigo/src equal to the
// source this binary was built from, which project go.mod files point at.
func (a *app) ensureSource(s *steps, p *proj) error {
	if p.self {
		s.done("source: skipped (Indigo's own repository builds against itself)")
		return nil
	}
	dir := project.SourceDir(p.dir)
	changed, n, err := indigo.WriteSource(dir, version)
	if err != nil {
		return fmt.Errorf("write %s: %w", p.rel(dir), err)
	}
	if changed {
		s.done("source: wrote %s (indigo %s, %d files)", p.rel(dir), version, n)
	} else {
		s.done("source: %s unchanged (indigo %s)", p.rel(dir), version)
	}
	return nil
}

// goCmd runs the go command in dir. A project's modules each have their
// own go.mod, so a go.work above the project must not take over.
func goCmd(ctx context.Context, dir string, args ...string) error {
	cmd := goExec(ctx, dir, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, strings.TrimRight(out.String(), "\n"))
	}
	return nil
}

func goExec(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	return cmd
}

// writeNew creates path with data, never replacing a file: created is
// false when path already exists.
func writeNew(path string, data []byte, perm fs.FileMode) (created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return false, err
	}
	return true, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
