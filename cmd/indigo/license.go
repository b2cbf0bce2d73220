package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/core/license"
)

// licenseReport is `indigo license show --json`: the license's fields (when
// its signature holds) plus the verdict.
type licenseReport struct {
	*license.License
	Valid  bool   `json:"valid"`
	Error  string `json:"error"`
	Source string `json:"source"`
}

func (a *app) licenseCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "license", Short: "Inspect the offline license of core-api"}
	var (
		token  string
		asJSON bool
	)
	show := &cobra.Command{
		Use:   "show",
		Short: "Verify the core-api license and print what it grants",
		Long: "Verify the core-api license and print what it grants. The token comes from --license,\n" +
			"else $" + license.EnvToken + ", else " + license.FileName + " next to the config file.\n" +
			"Exits non-zero when there is no valid license.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// wall clock: a licence expires in real time
			return a.showLicense(cmd.OutOrStdout(), token, asJSON, time.Now())
		},
	}
	show.Flags().StringVar(&token, "license", "", "license token (default $"+license.EnvToken+", then "+license.FileName+")")
	show.Flags().BoolVar(&asJSON, "json", false, "print the license with {\"valid\",\"error\",\"source\"}")
	cmd.AddCommand(show)
	return cmd
}

// showLicense loads and verifies the core-api license; the project
// directory is the config file's folder.
func (a *app) showLicense(w io.Writer, flagToken string, asJSON bool, now time.Time) error {
	projectDir := filepath.Dir(a.configPath)
	var l license.License
	token, src, err := license.Load(flagToken, projectDir)
	if err == nil {
		l, err = license.Verify(token, license.PublicKeyFromEnv(), license.CoreAPI, now)
	}

	if asJSON {
		rep := licenseReport{Valid: err == nil, Source: src}
		if l.Licensee != "" {
			// Also set for an expired, not yet valid or wrong-module
			// license, whose signature holds.
			rep.License = &l
		}
		if err != nil {
			rep.Error = err.Error()
		}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if perr := enc.Encode(rep); perr != nil {
			return perr
		}
	}
	if err != nil {
		return fmt.Errorf("license: %w", err)
	}
	if asJSON {
		return nil
	}

	id, issued := "-", "-"
	if l.ID != "" {
		id = l.ID
	}
	if !l.IssuedAt.IsZero() {
		issued = l.IssuedAt.Format(time.DateOnly)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "licensee:\t%s\n", l.Licensee)
	fmt.Fprintf(tw, "license id:\t%s\n", id)
	fmt.Fprintf(tw, "modules:\t%s\n", strings.Join(l.Modules, ", "))
	fmt.Fprintf(tw, "issued:\t%s\n", issued)
	fmt.Fprintf(tw, "expires:\t%s (%s)\n", l.ExpiresAt.Format(time.DateOnly), daysLeft(l.ExpiresAt.Sub(now)))
	fmt.Fprintf(tw, "source:\t%s\n", src)
	return tw.Flush()
}

// daysLeft renders the time to expiry in whole days, rounded down.
func daysLeft(d time.Duration) string {
	switch days := int(d / (24 * time.Hour)); days {
	case 0:
		return "less than a day left"
	case 1:
		return "1 day left"
	default:
		return fmt.Sprintf("%d days left", days)
	}
}
