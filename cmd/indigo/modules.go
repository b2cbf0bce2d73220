package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/cmd/indigo/internal/project"
	"github.com/indigo-hq/indigo/sdk"
)

// moduleStatus is one line of `indigo modules list`.
type moduleStatus struct {
	Name    string   `json:"name"`
	Path    string   `json:"path"`
	Version string   `json:"version"`
	Scopes  []string `json:"scopes"`
	Routes  []string `json:"routes"`
	// Status is ok, missing, sha256 mismatch, or describe failed: <reason>.
	Status string `json:"status"`
}

func (a *app) modulesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "modules", Short: "Inspect the modules listed in indigo.toml"}
	var (
		asJSON  bool
		timeout time.Duration
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the modules with their version, scopes, routes and status",
		Long: `List every [[modules]] entry of indigo.toml from its binary's describe
output. Status is ok, missing (no binary), sha256 mismatch (the binary is
not the one recorded; it is not run), or describe failed: <reason>.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.project()
			if err != nil {
				return err
			}
			cfg, _, err := p.fileConfig()
			if err != nil {
				return err
			}
			out := []moduleStatus{}
			for _, mc := range cfg.Modules {
				ms := moduleStatus{Name: mc.Name, Path: p.rel(mc.Path), Scopes: []string{}, Routes: []string{}}
				out = append(out, ms)
				st := &out[len(out)-1]
				if _, err := os.Stat(mc.Path); errors.Is(err, fs.ErrNotExist) {
					st.Status = "missing"
					continue
				} else if err != nil {
					st.Status = "describe failed: " + err.Error()
					continue
				}
				if mc.SHA256 != "" {
					sum, err := project.FileSHA256(mc.Path)
					if err != nil {
						st.Status = "describe failed: " + err.Error()
						continue
					}
					if !strings.EqualFold(sum, mc.SHA256) {
						st.Status = "sha256 mismatch"
						continue
					}
				}
				m, err := project.Describe(cmd.Context(), mc.Path, timeout)
				if err == nil {
					err = sdk.CheckManifest(mc.Name, m)
				}
				if err != nil {
					st.Status = "describe failed: " + err.Error()
					continue
				}
				st.Version, st.Status = m.Version, "ok"
				for _, s := range m.Scopes {
					st.Scopes = append(st.Scopes, s.ID)
				}
				for _, r := range m.Routes {
					st.Routes = append(st.Routes, r.Method+" "+r.Path)
				}
			}
			if asJSON {
				return a.printJSON(out)
			}
			if len(out) == 0 {
				a.printf("no modules in %s\n", p.rel(p.cfgPath))
				return nil
			}
			tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSTATUS\tSCOPES\tROUTES")
			for _, m := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, dash(m.Version), m.Status, dash(strings.Join(m.Scopes, ",")), dash(strings.Join(m.Routes, ", ")))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	list.Flags().DurationVar(&timeout, "timeout", project.DescribeTimeout, "how long each binary's describe may take")
	cmd.AddCommand(list)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
