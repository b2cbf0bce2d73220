package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/cmd/indigo/internal/project"
)

func (a *app) moduleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "module", Short: "Create modules"}
	var scopes []string
	newCmd := &cobra.Command{
		Use:   "new NAME --scope NAME:read [--scope NAME:write ...]",
		Short: "Scaffold a module in modules/NAME",
		Long: `Scaffold a module in modules/NAME: a go.mod that builds against the
project's .indigo/src, a main.go declaring the scopes and one route GET /NAME
(requiring the first scope) that answers with the caller's org, and a
main_test.go that calls it in memory through sdk/sdktest. Then go mod tidy.
An existing modules/NAME is never overwritten.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := project.CheckModuleArgs(name, scopes); err != nil {
				return err
			}
			p, err := a.project()
			if err != nil {
				return err
			}
			dir := filepath.Join(p.dir, "modules", name)
			if _, err := os.Lstat(dir); err == nil {
				return fmt.Errorf("%s exists: refusing to overwrite it (remove it or pick another name)", p.rel(dir))
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			modPath, err := project.RootModulePath(p.dir)
			if err != nil {
				return err
			}
			replace, err := project.ReplaceTarget(p.source(), dir)
			if err != nil {
				return err
			}
			mainGo, testGo, err := project.ModuleFiles(name, scopes)
			if err != nil {
				return err
			}
			s := a.steps(5)
			if err := a.ensureSource(s, p); err != nil {
				return err
			}
			// From here on the folder is ours: a failure removes it, so that
			// the command can simply be run again.
			ok := false
			defer func() {
				if !ok {
					_ = os.RemoveAll(dir)
					a.printf("removed %s\n", p.rel(dir))
				}
			}()
			for _, f := range []struct {
				name string
				data []byte
			}{
				{"go.mod", project.GoMod(modPath+"/modules/"+name, replace)},
				{"main.go", mainGo},
				{"main_test.go", testGo},
			} {
				if _, err := writeNew(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
					return err
				}
				s.done("%s: created", p.rel(filepath.Join(dir, f.name)))
			}
			if _, err := writeNew(filepath.Join(dir, "go.sum"), project.EmbeddedGoSum(), 0o644); err != nil {
				return err
			}
			if err := goCmd(cmd.Context(), dir, "mod", "tidy"); err != nil {
				return err
			}
			s.done("go mod tidy: done")
			ok = true
			a.printf("Next: (cd %s && go test ./...), then indigo add ./%s\n", p.rel(dir), p.rel(dir))
			return nil
		},
	}
	newCmd.Flags().StringSliceVar(&scopes, "scope", nil, "a scope the module declares, NAME:ACTION (repeatable; the first guards the route)")
	cmd.AddCommand(newCmd)
	return cmd
}
