package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

// parseLifetime reads a Go duration ("720h", "1h30m") or whole days
// ("90d").
func parseLifetime(flag, s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, usagef("--%s %q: want a duration like 720h, 1h30m or 90d", flag, s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, usagef("--%s %q: want a duration like 720h, 1h30m or 90d", flag, s)
		}
	}
	if d <= 0 || d > store.MaxKeyLifetime {
		return 0, usagef("--%s %q: must be positive and at most 365d", flag, s)
	}
	return d, nil
}

// apiKeyJSON is what --output json prints for a key; Key only on create
// and rotate.
type apiKeyJSON struct {
	Key string `json:"key,omitempty"`
	store.APIKey
	State string `json:"state"`
}

func newAPIKeyCmd(e *env) *cobra.Command {
	var sf storeFlags
	var tenant string
	cmd := &cobra.Command{Use: "apikey", Short: "create, list, revoke and rotate API keys"}
	sf.register(cmd.PersistentFlags(), e)
	cmd.PersistentFlags().StringVar(&tenant, "tenant", "", "the tenant (required)")
	cmd.AddCommand(
		withSelf(e, newAPIKeyCreate(e, &sf, &tenant), selfCreate(e)),
		withSelf(e, newAPIKeyList(e, &sf, &tenant), selfList(e)),
		withSelf(e, newAPIKeyRevoke(e, &sf, &tenant), selfRevoke(e)),
		newAPIKeyRotate(e, &sf, &tenant),
	)
	return cmd
}

func newAPIKeyCreate(e *env, sf *storeFlags, tenant *string) *cobra.Command {
	var name, owner, expires string
	var seats []string
	var out outputFlag
	c := &cobra.Command{
		Use:   "create --tenant T --name N --seat S [--expires 90d]",
		Short: "create a key; prints it once, alone on stdout",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := firstError(requireTenant(*tenant), out.check()); err != nil {
				return err
			}
			if name == "" {
				return usagef("--name is required")
			}
			life, err := parseLifetime("expires", expires)
			if err != nil {
				return err
			}
			nk, err := authz.GenerateAPIKey(*tenant)
			if err != nil {
				return usageError{err}
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				k, err := s.CreateAPIKey(ctx, store.APIKey{
					ID: nk.ID, Tenant: *tenant, Name: name, Owner: owner, Seats: seats,
					Hash: nk.Hash, ExpiresAt: time.Now().Add(life),
				})
				if err != nil {
					return err
				}
				return printNewKey(e, out, nk.Key, k, fmt.Sprintf("created api key %s", k.ID))
			})
		},
	}
	fs := c.Flags()
	fs.StringVar(&name, "name", "", "the key's name, unique among the tenant's usable keys (required)")
	fs.StringSliceVar(&seats, "seat", nil, "a seat the key holds; repeat or separate with commas")
	fs.StringVar(&expires, "expires", "90d", "lifetime: a duration like 720h or days like 90d; at most 365d")
	fs.StringVar(&owner, "owner", "", "who is responsible for the key (free text, e.g. an email)")
	out.register(fs)
	return c
}

// printNewKey prints a new key alone on stdout (or in JSON) and its details
// on stderr.
func printNewKey(e *env, out outputFlag, plaintext string, k store.APIKey, what string) error {
	if out.json() {
		return writeJSON(e.stdout, apiKeyJSON{Key: plaintext, APIKey: k, State: k.State(time.Now())})
	}
	fmt.Fprintln(e.stdout, plaintext)
	fmt.Fprintf(e.stderr, "%s: name %s, tenant %s, seats %s, expires %s.\nStore the key now: it is shown only once.\n",
		what, k.Name, k.Tenant, strings.Join(k.Seats, ","), tsFormat(k.ExpiresAt))
	return nil
}

func newAPIKeyList(e *env, sf *storeFlags, tenant *string) *cobra.Command {
	now := time.Now()
	return listCmd(e, sf, tenant, "list a tenant's keys (never their secrets)", "ID\tNAME\tSEATS\tSTATE\tEXPIRES\tLAST USED\tOWNER",
		(*store.Store).APIKeys,
		func(k store.APIKey) []any {
			return []any{k.ID, k.Name, strings.Join(k.Seats, ","), k.State(now), tsFormat(k.ExpiresAt), tsFormat(k.LastUsed), orDash(k.Owner)}
		},
		func(keys []store.APIKey) any {
			js := make([]apiKeyJSON, len(keys))
			for i, k := range keys {
				js[i] = apiKeyJSON{APIKey: k, State: k.State(now)}
			}
			return js
		})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newAPIKeyRevoke(e *env, sf *storeFlags, tenant *string) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke --tenant T KEY_ID_OR_NAME",
		Short: "revoke a key at once; by name, also revokes its predecessors still in a rotation grace",
		Args:  args("KEY_ID_OR_NAME"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireTenant(*tenant); err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				revs, err := s.RevokeAPIKeyByRef(ctx, *tenant, a[0])
				for _, r := range revs {
					if r.Already {
						fmt.Fprintf(e.stdout, "api key %s (%s) was already revoked at %s\n", r.Key.ID, r.Key.Name, tsFormat(r.Key.RevokedAt))
						continue
					}
					fmt.Fprintf(e.stdout, "revoked api key %s (%s)\n", r.Key.ID, r.Key.Name)
				}
				return err
			})
		},
	}
}

func newAPIKeyRotate(e *env, sf *storeFlags, tenant *string) *cobra.Command {
	var grace, expires string
	var out outputFlag
	c := &cobra.Command{
		Use:   "rotate --tenant T KEY_ID_OR_NAME [--grace 1h]",
		Short: "replace a key with a new one (printed once); the old one stays valid for --grace",
		Args:  args("KEY_ID_OR_NAME"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := firstError(requireTenant(*tenant), out.check()); err != nil {
				return err
			}
			g, err := time.ParseDuration(grace)
			if err != nil || g < 0 {
				return usagef("--grace %q: want a duration like 0, 15m or 1h", grace)
			}
			var life time.Duration
			if expires != "" {
				if life, err = parseLifetime("expires", expires); err != nil {
					return err
				}
			}
			nk, err := authz.GenerateAPIKey(*tenant)
			if err != nil {
				return usageError{err}
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				next := store.APIKey{ID: nk.ID, Hash: nk.Hash}
				if life != 0 { // else the old key's lifetime
					next.ExpiresAt = time.Now().Add(life)
				}
				created, ended, err := s.RotateAPIKeyByRef(ctx, *tenant, a[0], next, g)
				if err != nil {
					return err
				}
				until := "revoked now"
				if ended.RevokedAt.IsZero() {
					until = "valid until " + tsFormat(ended.ExpiresAt)
				}
				return printNewKey(e, out, nk.Key, created, fmt.Sprintf("rotated api key %s to %s (the old key is %s)", ended.ID, created.ID, until))
			})
		},
	}
	c.Flags().StringVar(&grace, "grace", "0s", "how long the old key stays valid; 0 revokes it at once")
	c.Flags().StringVar(&expires, "expires", "", "the new key's lifetime (default: the old key's)")
	out.register(c.Flags())
	return c
}
