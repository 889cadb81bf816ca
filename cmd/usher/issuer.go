package main

import (
	"context"
	"fmt"
	"strings"
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

	var issuer, audience, groupsClaim, tokenType string
	var clientIDs []string
	var matchGroupNames bool
	var addOut outputFlag
	add := &cobra.Command{
		Use:   "add --tenant T --issuer URL --audience AUD [--groups-claim memberOf] [--token-type at+jwt] [--client-id ID]... [--match-group-names]",
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
			if warning := idp.CheckAudience(audience, tokenType, clientIDs); warning != "" {
				fmt.Fprintln(e.stderr, "warning: "+warning)
			}
			ctx, cancel := context.WithTimeout(c.Context(), 15*time.Second)
			defer cancel()
			d, err := idp.Discover(ctx, idp.NewClient(10*time.Second), issuer)
			if err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				is, err := s.AddIssuer(ctx, store.Issuer{Tenant: tenant, Issuer: issuer, Audience: audience, GroupsClaim: groupsClaim,
					TokenType: tokenType, ClientIDs: clientIDs, MatchGroupNames: matchGroupNames})
				if err != nil {
					return err
				}
				if addOut.json() {
					return writeJSON(e.stdout, is)
				}
				fmt.Fprintf(e.stdout, "tenant %s trusts tokens of %s for audience %s (groups from %s; keys at %s; algorithms %v)\n",
					tenant, is.Issuer, is.Audience, is.GroupsClaim, d.JWKSURL, d.Algorithms)
				if is.TokenType != "" {
					fmt.Fprintf(e.stdout, "tokens must have typ %s\n", is.TokenType)
				}
				if len(is.ClientIDs) > 0 {
					fmt.Fprintf(e.stdout, "tokens must name one of the clients %s in azp or client_id\n", strings.Join(is.ClientIDs, ", "))
				}
				if is.MatchGroupNames {
					fmt.Fprintln(e.stdout, "a group named like a seat gets that seat")
				}
				return nil
			})
		},
	}
	add.Flags().StringVar(&issuer, "issuer", "", "the issuer URL, exactly as the tokens' iss claim says (https; http only on loopback)")
	add.Flags().StringVar(&audience, "audience", "", "the audience the tokens must carry, e.g. api://usher")
	add.Flags().StringVar(&groupsClaim, "groups-claim", "groups", "the claim holding the user's groups: memberOf, groups, roles, or a dotted path like realm_access.roles")
	add.Flags().StringVar(&tokenType, "token-type", "", "require this typ header, e.g. at+jwt (RFC 9068 access tokens), so that the IdP's ID tokens are refused")
	add.Flags().StringArrayVar(&clientIDs, "client-id", nil, "accept only tokens whose azp or client_id names this client (repeatable)")
	add.Flags().BoolVar(&matchGroupNames, "match-group-names", false, "also give a group the seat of the same name (off: only seats' --group aliases match, so that naming a group at the IdP cannot pick a seat)")
	addOut.register(add.Flags())

	list := listCmd(e, &sf, &tenant, "list the issuers a tenant trusts", "ISSUER\tAUDIENCE\tGROUPS CLAIM\tTOKEN TYPE\tCLIENTS\tGROUP NAMES\tADDED",
		(*store.Store).Issuers, func(x store.Issuer) []any {
			return []any{x.Issuer, x.Audience, x.GroupsClaim, orDash(x.TokenType), orDash(strings.Join(x.ClientIDs, ",")),
				map[bool]string{true: "match seats", false: "aliases only"}[x.MatchGroupNames], tsFormat(x.CreatedAt)}
		}, nil)

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
