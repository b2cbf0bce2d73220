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

func (a *app) initCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init NAME",
		Short: "Create an Indigo project in the folder NAME (\".\" for the current one)",
		Long: `Create an Indigo project: indigo.toml (core-api off, SQLite in data/,
no modules), db/migrations/{sqlite,postgres}, db/queries, modules/, plugins/,
a Makefile and a .gitignore. Existing files are never overwritten.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if st, err := os.Stat(dir); err == nil && !st.IsDir() {
				return fmt.Errorf("%s exists and is not a folder", args[0])
			}
			files := project.InitFiles()
			s := a.steps(1 + len(project.InitDirs) + len(files))
			mkdir := func(rel, shown string) error {
				path := filepath.Join(dir, filepath.FromSlash(rel))
				if st, err := os.Stat(path); err == nil && st.IsDir() {
					s.done("%s: exists", shown)
					return nil
				} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				if err := os.MkdirAll(path, 0o755); err != nil {
					return err
				}
				s.done("%s: created", shown)
				return nil
			}
			if err := mkdir(".", filepath.Base(dir)+"/"); err != nil {
				return err
			}
			for _, d := range project.InitDirs {
				if err := mkdir(d, d+"/"); err != nil {
					return err
				}
			}
			for _, f := range files {
				created, err := writeNew(filepath.Join(dir, filepath.FromSlash(f.Path)), []byte(f.Data), fs.FileMode(f.Mode))
				if err != nil {
					return err
				}
				if created {
					s.done("%s: created", f.Path)
				} else {
					s.done("%s: exists", f.Path)
				}
			}
			cd := ""
			if args[0] != "." {
				cd = "cd " + args[0] + " && "
			}
			a.printf("Next: %sindigo add core-api --dev, then indigo module new NAME --scope NAME:read\n", cd)
			return nil
		},
	}
}
