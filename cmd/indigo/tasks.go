package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// tasksCmd shows the periodic tasks' last runs across every host sharing
// the database: the core's and the modules' (module:<name>:<task>).
func (a *app) tasksCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tasks", Short: "Periodic tasks (the core's and the modules')"}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "Each task's last run, its duration and error, and which host ran it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer svc.Close()
			runs, err := svc.Store.Q().ListTaskRuns(cmd.Context())
			if err != nil {
				return err
			}
			type row struct {
				Task       string  `json:"task"`
				LastRun    string  `json:"last_run"`
				DurationMS int64   `json:"duration_ms"`
				LastError  *string `json:"last_error"`
				Host       string  `json:"host"`
				Runs       int64   `json:"runs"`
				Failures   int64   `json:"failures"`
			}
			out := make([]row, len(runs))
			for i, r := range runs {
				out[i] = row{Task: r.Task, LastRun: time.UnixMilli(r.StartedAt).UTC().Format(time.RFC3339),
					DurationMS: r.DurationMs, Host: r.Host, Runs: r.Runs, Failures: r.Failures}
				if r.LastError != "" {
					out[i].LastError = &r.LastError
				}
			}
			if asJSON {
				return a.printJSON(map[string]any{"tasks": out})
			}
			tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TASK\tLAST RUN\tTOOK\tHOST\tRUNS\tFAILURES\tLAST ERROR")
			for _, r := range out {
				msg := "-"
				if r.LastError != nil {
					msg = *r.LastError
				}
				fmt.Fprintf(tw, "%s\t%s\t%dms\t%s\t%d\t%d\t%s\n", r.Task, r.LastRun, r.DurationMS, r.Host, r.Runs, r.Failures, msg)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(list)
	return cmd
}
