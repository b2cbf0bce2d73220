package main

import (
	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/core"
)

func (a *app) loginLinkCmd() *cobra.Command {
	var org, email, role string
	var operator bool
	cmd := &cobra.Command{
		Use:   "login-link",
		Short: "Add a member if needed and print a one-time sign-in URL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer svc.Close()
			if err := requireOrg(cmd.Context(), svc, org); err != nil {
				return err
			}
			tok, err := svc.Local.LoginLink(cmd.Context(), org, email, role, operator)
			if err != nil {
				return err
			}
			base := svc.Cfg.Server.PublicURL
			if base == "" {
				base = "http://" + svc.Cfg.Server.Addr
			}
			a.printf("%s\n", core.LoginURL(base, tok))
			return nil
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "organization id (required)")
	cmd.Flags().StringVar(&email, "email", "owner@localhost", "the member's email")
	cmd.Flags().StringVar(&role, "role", "owner", "owner, admin or member")
	cmd.Flags().BoolVar(&operator, "operator", false, "also grant the operator (admin settings) flag")
	_ = cmd.MarkFlagRequired("org")
	return cmd
}
