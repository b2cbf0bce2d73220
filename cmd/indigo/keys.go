package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/config"
)

var cliActor = apikey.Actor{ID: "cli", IP: "local"}

func (a *app) orgsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "orgs", Short: "Manage organizations"}
	var asJSON bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an organization and print its id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := a.openOrCreate(cmd.Context())
			if err != nil {
				return err
			}
			defer svc.Close()
			o, err := svc.Local.CreateOrg(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return a.printJSON(map[string]string{"id": o.ID, "name": o.Name})
			}
			a.printf("%s\n", o.ID)
			return nil
		},
	}
	create.Flags().BoolVar(&asJSON, "json", false, "print {\"id\",\"name\"}")
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List organizations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer svc.Close()
			orgs, err := svc.Local.ListOrgs(cmd.Context())
			if err != nil {
				return err
			}
			if listJSON {
				return a.printJSON(orgs)
			}
			tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED")
			for _, o := range orgs {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", o.ID, o.Name, o.CreatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	cmd.AddCommand(create, list)
	return cmd
}

// parseDuration is time.ParseDuration plus whole days ("30d").
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// splitScopes reads --scopes: "" is an empty list.
func splitScopes(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// withKey opens the services and finds a key by id in any org, since the
// CLI acts as the operator.
func (a *app) withKey(ctx context.Context, id string, fn func(svc *core.Services, orgID string) error) error {
	svc, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer svc.Close()
	row, err := svc.Store.Q().GetKeyByID(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("key %q not found", id)
	}
	if err != nil {
		return err
	}
	return fn(svc, row.OrgID)
}

func (a *app) printCreated(resp api.CreateResponse, asJSON bool) error {
	if asJSON {
		return a.printJSON(resp)
	}
	a.printf("id:   %s\nkey:  %s\n", resp.Key.ID, resp.RawKey)
	if resp.Previous != nil {
		exp := "never"
		if resp.Previous.ExpiresAt != nil {
			exp = resp.Previous.ExpiresAt.Format(time.RFC3339)
		}
		a.printf("previous: %s is %s until %s\n", resp.Previous.ID, resp.Previous.Status, exp)
	}
	a.printf("%s\n", resp.Warning)
	return nil
}

func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage API keys"}

	var (
		org, name, scopes, expiresIn, rateLimit string
		superkey, asJSON                        bool
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a key and print it once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if superkey && cmd.Flags().Changed("scopes") {
				return errors.New("give --scopes or --superkey, not both")
			}
			in := apikey.CreateInput{Name: name, Superkey: superkey, Scopes: splitScopes(scopes)}
			if expiresIn != "" {
				d, err := parseDuration(expiresIn)
				if err != nil || d <= 0 {
					return fmt.Errorf("--expires-in must be a positive duration such as 30d or 12h, got %q", expiresIn)
				}
				// wall clock: the CLI's key service runs on the real clock too
				t := time.Now().Add(d)
				in.ExpiresAt = &t
			}
			if cmd.Flags().Changed("rate-limit") {
				limit, window, err := config.ParseRateLimit(rateLimit)
				if err != nil {
					return fmt.Errorf("--rate-limit: %w", err)
				}
				in.RateLimitSet = true
				if limit > 0 {
					in.RateLimit = &apikey.RateLimit{Limit: limit, WindowSeconds: int64(window / time.Second)}
				}
			}
			svc, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer svc.Close()
			if err := requireOrg(cmd.Context(), svc, org); err != nil {
				return err
			}
			k, raw, err := svc.Keys.Create(cmd.Context(), org, cliActor, in)
			if err != nil {
				return err
			}
			return a.printCreated(api.CreateResponse{Key: k, RawKey: raw, Warning: api.RawKeyWarning}, asJSON)
		},
	}
	create.Flags().StringVar(&org, "org", "", "organization id (required)")
	create.Flags().StringVar(&name, "name", "", "key name (required)")
	create.Flags().StringVar(&scopes, "scopes", "", "comma-separated scopes; \"\" grants nothing")
	create.Flags().BoolVar(&superkey, "superkey", false, "grant every scope (null scopes)")
	create.Flags().StringVar(&expiresIn, "expires-in", "", "expire after this duration, e.g. 30d or 12h")
	create.Flags().StringVar(&rateLimit, "rate-limit", "", "requests per window, e.g. 100/1m (0: none; default from config)")
	create.Flags().BoolVar(&asJSON, "json", false, "print the same object as POST /api/v2/keys")
	_ = create.MarkFlagRequired("org")
	_ = create.MarkFlagRequired("name")

	var listOrg string
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List an organization's keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer svc.Close()
			if err := requireOrg(cmd.Context(), svc, listOrg); err != nil {
				return err
			}
			var all []apikey.Key
			cursor := ""
			for {
				keys, next, err := svc.Keys.List(cmd.Context(), listOrg, cursor, 200)
				if err != nil {
					return err
				}
				all = append(all, keys...)
				if next == "" {
					break
				}
				cursor = next
			}
			if listJSON {
				if all == nil {
					all = []apikey.Key{}
				}
				return a.printJSON(map[string]any{"keys": all, "next_cursor": nil})
			}
			tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tKEY\tSCOPES\tSTATUS\tENABLED\tEXPIRES")
			for _, k := range all {
				sc := "(superkey)"
				if k.Scopes != nil {
					sc = strings.Join(k.Scopes, ",")
					if sc == "" {
						sc = "(none)"
					}
				}
				exp := "-"
				if k.ExpiresAt != nil {
					exp = k.ExpiresAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s_…%s\t%s\t%s\t%v\t%s\n", k.ID, k.Name, k.Prefix, k.Last4, sc, k.Status, k.Enabled, exp)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&listOrg, "org", "", "organization id (required)")
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	_ = list.MarkFlagRequired("org")

	simple := func(use, short, done string, fn func(ctx context.Context, svc *core.Services, org, id string) error) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withKey(cmd.Context(), args[0], func(svc *core.Services, org string) error {
					if err := fn(cmd.Context(), svc, org, args[0]); err != nil {
						return err
					}
					a.printf("%s %s\n", done, args[0])
					return nil
				})
			},
		}
	}
	revoke := simple("revoke", "Revoke a key at once (final)", "revoked", func(ctx context.Context, svc *core.Services, org, id string) error {
		return svc.Keys.Revoke(ctx, org, id, cliActor)
	})
	setEnabled := func(on bool) func(ctx context.Context, svc *core.Services, org, id string) error {
		return func(ctx context.Context, svc *core.Services, org, id string) error {
			_, err := svc.Keys.Update(ctx, org, id, cliActor, apikey.UpdateInput{Enabled: apikey.Opt[bool]{Set: true, V: on}})
			return err
		}
	}
	disable := simple("disable", "Disable a key (reversible)", "disabled", setEnabled(false))
	enable := simple("enable", "Re-enable a disabled key", "enabled", setEnabled(true))

	var grace string
	var rollJSON bool
	roll := &cobra.Command{
		Use: "roll ID", Short: "Roll a key: print its successor; the old key expires after the grace", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var g *time.Duration
			if cmd.Flags().Changed("grace") {
				d, err := parseDuration(grace)
				if err != nil || d < 0 {
					return fmt.Errorf("--grace must be a duration such as 7d, 24h or 0s, got %q", grace)
				}
				g = &d
			}
			return a.withKey(cmd.Context(), args[0], func(svc *core.Services, org string) error {
				k, raw, prev, err := svc.Keys.Roll(cmd.Context(), org, args[0], cliActor, g)
				if err != nil {
					return err
				}
				return a.printCreated(api.CreateResponse{Key: k, RawKey: raw, Warning: api.RawKeyWarning, Previous: &prev}, rollJSON)
			})
		},
	}
	roll.Flags().StringVar(&grace, "grace", "", "how long the old key keeps working (default from config)")
	roll.Flags().BoolVar(&rollJSON, "json", false, "print the same object as the HTTP roll")

	rename := &cobra.Command{
		Use: "rename ID NAME", Short: "Rename a key", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withKey(cmd.Context(), args[0], func(svc *core.Services, org string) error {
				_, err := svc.Keys.Update(cmd.Context(), org, args[0], cliActor, apikey.UpdateInput{Name: apikey.Opt[string]{Set: true, V: args[1]}})
				if err == nil {
					a.printf("renamed %s\n", args[0])
				}
				return err
			})
		},
	}
	var newScopes string
	var newSuper bool
	setScopes := &cobra.Command{
		Use: "scopes ID", Short: "Replace a key's scopes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if newSuper == cmd.Flags().Changed("scopes") {
				return errors.New("give exactly one of --scopes or --superkey")
			}
			return a.withKey(cmd.Context(), args[0], func(svc *core.Services, org string) error {
				k, err := svc.Keys.SetScopes(cmd.Context(), org, args[0], cliActor, splitScopes(newScopes), newSuper)
				if err == nil {
					a.printf("scopes of %s: %v\n", k.ID, k.Scopes)
				}
				return err
			})
		},
	}
	setScopes.Flags().StringVar(&newScopes, "scopes", "", "comma-separated scopes; \"\" grants nothing")
	setScopes.Flags().BoolVar(&newSuper, "superkey", false, "grant every scope")

	cmd.AddCommand(create, list, revoke, disable, enable, roll, rename, setScopes)
	return cmd
}
