package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

func newTenantCmd(e *env) *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{Use: "tenant", Short: "create and list tenants"}
	sf.register(cmd.PersistentFlags(), e)

	var createOut outputFlag
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "create a tenant (a DNS label: lower-case letters, digits, '-')",
		Args:  args("NAME"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := createOut.check(); err != nil {
				return err
			}
			if err := authz.ValidateTenant(a[0]); err != nil {
				return usageError{err}
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				t, err := s.CreateTenant(ctx, a[0])
				if err != nil {
					return err
				}
				if createOut.json() {
					return writeJSON(e.stdout, t)
				}
				fmt.Fprintf(e.stdout, "created tenant %s\n", t.Name)
				return nil
			})
		},
	}
	createOut.register(create.Flags())

	var listOut outputFlag
	list := &cobra.Command{
		Use:   "list",
		Short: "list tenants",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := listOut.check(); err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				ts, err := s.Tenants(ctx)
				if err != nil {
					return err
				}
				if listOut.json() {
					return writeJSON(e.stdout, ts)
				}
				rows := make([][]any, len(ts))
				for i, t := range ts {
					rows[i] = []any{t.Name, tsFormat(t.CreatedAt)}
				}
				return table(e.stdout, "NAME\tCREATED", rows)
			})
		},
	}
	listOut.register(list.Flags())
	cmd.AddCommand(create, list)
	return cmd
}

func newSpaceCmd(e *env) *cobra.Command {
	var sf storeFlags
	var tenant string
	cmd := &cobra.Command{Use: "space", Short: "create and list a tenant's spaces"}
	sf.register(cmd.PersistentFlags(), e)
	cmd.PersistentFlags().StringVar(&tenant, "tenant", "", "the tenant (required)")

	var createOut outputFlag
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "create a space in a tenant",
		Args:  args("NAME"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := firstError(requireTenant(tenant), createOut.check()); err != nil {
				return err
			}
			if err := authz.ValidateName("space", a[0]); err != nil {
				return usageError{err}
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				sp, err := s.CreateSpace(ctx, tenant, a[0])
				if err != nil {
					return err
				}
				if createOut.json() {
					return writeJSON(e.stdout, sp)
				}
				fmt.Fprintf(e.stdout, "created space %s in tenant %s\n", sp.Name, sp.Tenant)
				return nil
			})
		},
	}
	createOut.register(create.Flags())

	list := listCmd(e, &sf, &tenant, "list a tenant's spaces", "NAME\tCREATED",
		(*store.Store).Spaces, func(sp store.Space) []any { return []any{sp.Name, tsFormat(sp.CreatedAt)} }, nil)
	cmd.AddCommand(create, list)
	return cmd
}

// firstError returns the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
