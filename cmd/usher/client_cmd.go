package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usher-dev/usher/login"
	"github.com/usher-dev/usher/store"
)

// newClientCmd manages the OAuth clients of the login app's device grant
// and token endpoint. Every client is public (no secret); usher-cli is
// built in.
func newClientCmd(e *env) *cobra.Command {
	var sf storeFlags
	var tenant string
	cmd := &cobra.Command{Use: "client", Short: "register the public OAuth clients that may sign people in with the device grant"}
	sf.register(cmd.PersistentFlags(), e)
	cmd.PersistentFlags().StringVar(&tenant, "tenant", "", "the tenant (required)")

	list := listCmd(e, &sf, &tenant, "list the built-in client and a tenant's clients",
		"ID\tNAME\tTENANT\tTYPE\tCREATED",
		(*store.Store).ListClients, func(c login.Client) []any {
			return []any{c.ID, c.Name, orDash(c.Tenant), "public", tsFormat(c.CreatedAt)}
		}, nil)

	var name, id string
	var public bool
	add := &cobra.Command{
		Use:   "add --tenant T --name NAME --public [--id ID]",
		Short: "register a public client (no secret) whose device logins people of the tenant approve",
		Long: `add registers an OAuth public client: an application that signs people in
with the device authorization grant (POST /oauth/device/code) and refreshes
at POST /oauth/token, with client_id ID and no secret (usher issues none
and refuses one). Only people of --tenant can approve its requests. The id
defaults to TENANT-NAME in lower case with dashes.`,
		Args: args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireTenant(tenant); err != nil {
				return err
			}
			if !public {
				return usagef("--public is required: usher supports only public clients (no secret)")
			}
			if strings.TrimSpace(name) == "" {
				return usagef("--name is required")
			}
			if id == "" {
				id = clientSlug(tenant + "-" + name)
			}
			if err := store.ValidateClientID(id); err != nil {
				return usagef("%v (choose one with --id)", err)
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				if _, err := s.Tenant(ctx, tenant); err != nil {
					return err
				}
				if err := s.AddClient(ctx, login.Client{ID: id, Tenant: tenant, Name: strings.TrimSpace(name), Public: true}); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "added public client %s (%s) to tenant %s; it has no secret\n", id, strings.TrimSpace(name), tenant)
				return nil
			})
		},
	}
	add.Flags().StringVar(&name, "name", "", "the name people see on the approval page (required)")
	add.Flags().StringVar(&id, "id", "", "the client_id (default TENANT-NAME)")
	add.Flags().BoolVar(&public, "public", false, "a public client, with no secret (required: the only kind)")

	remove := &cobra.Command{
		Use:   "remove --tenant T ID",
		Short: "remove a client: it starts no new logins (revoke existing ones with usher session revoke)",
		Args:  args("ID"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireTenant(tenant); err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				if err := s.RemoveClient(ctx, tenant, a[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "removed client %s from tenant %s\n", a[0], tenant)
				return nil
			})
		},
	}
	cmd.AddCommand(list, add, remove)
	return cmd
}

// clientSlug lower-cases s and turns every run of other characters than
// a-z and 0-9 into one dash.
func clientSlug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}
