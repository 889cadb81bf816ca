package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/usher-dev/usher/idp"
	"github.com/usher-dev/usher/store"
)

func newIssuerCmd(e *env) *cobra.Command {
	var sf storeFlags
	var tenant string
	cmd := &cobra.Command{Use: "issuer", Short: "trust, list and stop trusting identity providers whose tokens a tenant accepts"}
	sf.register(cmd.PersistentFlags(), e)
	cmd.PersistentFlags().StringVar(&tenant, "tenant", "", "the tenant (required)")

	var issuer, audience, groupsClaim string
	var addOut outputFlag
	add := &cobra.Command{
		Use:   "add --tenant T --issuer URL --audience AUD [--groups-claim memberOf]",
		Short: "trust an issuer's tokens for an audience; its discovery document must answer and name exactly this issuer",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := firstError(requireTenant(tenant), addOut.check()); err != nil {
				return err
			}
			if issuer == "" || audience == "" {
				return usagef("--issuer and --audience are required")
			}
			warning, err := idp.CheckIssuerURL(issuer)
			if err != nil {
				return usageError{err}
			}
			if warning != "" {
				fmt.Fprintln(e.stderr, "warning: "+warning)
			}
			ctx, cancel := context.WithTimeout(c.Context(), 15*time.Second)
			defer cancel()
			d, err := idp.Discover(ctx, idp.NewClient(10*time.Second), issuer)
			if err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				is, err := s.AddIssuer(ctx, store.Issuer{Tenant: tenant, Issuer: issuer, Audience: audience, GroupsClaim: groupsClaim})
				if err != nil {
					return err
				}
				if addOut.json() {
					return writeJSON(e.stdout, is)
				}
				fmt.Fprintf(e.stdout, "tenant %s trusts tokens of %s for audience %s (groups from %s; keys at %s; algorithms %v)\n",
					tenant, is.Issuer, is.Audience, is.GroupsClaim, d.JWKSURL, d.Algorithms)
				return nil
			})
		},
	}
	add.Flags().StringVar(&issuer, "issuer", "", "the issuer URL, exactly as the tokens' iss claim says (https; http only on loopback)")
	add.Flags().StringVar(&audience, "audience", "", "the audience the tokens must carry, e.g. api://usher")
	add.Flags().StringVar(&groupsClaim, "groups-claim", "groups", "the claim holding the user's groups: memberOf, groups, roles, or a dotted path like realm_access.roles")
	addOut.register(add.Flags())

	list := listCmd(e, &sf, &tenant, "list the issuers a tenant trusts", "ISSUER\tAUDIENCE\tGROUPS CLAIM\tADDED",
		(*store.Store).Issuers, func(x store.Issuer) []any { return []any{x.Issuer, x.Audience, x.GroupsClaim, tsFormat(x.CreatedAt)} }, nil)

	var removeIssuer string
	remove := &cobra.Command{
		Use:   "remove --tenant T --issuer URL",
		Short: "stop trusting an issuer: its tokens are refused by every server within 2s",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireTenant(tenant); err != nil {
				return err
			}
			if removeIssuer == "" {
				return usagef("--issuer is required")
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				if err := s.RemoveIssuer(ctx, tenant, removeIssuer); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "tenant %s no longer trusts %s\n", tenant, removeIssuer)
				return nil
			})
		},
	}
	remove.Flags().StringVar(&removeIssuer, "issuer", "", "the issuer URL")
	cmd.AddCommand(add, list, remove)
	return cmd
}
