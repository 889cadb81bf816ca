package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

func newKeyCmd(e *env) *cobra.Command {
	var sf storeFlags
	var tenant string
	cmd := &cobra.Command{Use: "key", Short: "rotate, list and revoke a tenant's signing keys (for usher's access tokens)"}
	sf.register(cmd.PersistentFlags(), e)
	cmd.PersistentFlags().StringVar(&tenant, "tenant", "", "the tenant (required)")

	var mk masterKeyFlag
	var retireAfter time.Duration
	var rotateOut outputFlag
	rotate := &cobra.Command{
		Use:   "rotate --tenant T [--retire-after 24h]",
		Short: "make a new active signing key; the previous one verifies until --retire-after passes",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := firstError(requireTenant(tenant), rotateOut.check()); err != nil {
				return err
			}
			if retireAfter < 0 {
				return usagef("--retire-after must not be negative")
			}
			key, err := mk.require(e)
			if err != nil {
				return err
			}
			sf.master = key
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				created, retired, err := s.RotateSigningKey(ctx, tenant, retireAfter)
				if err != nil {
					return err
				}
				if rotateOut.json() {
					return writeJSON(e.stdout, map[string]any{"active": created, "retiring": retired})
				}
				fmt.Fprintf(e.stdout, "new active signing key %s for tenant %s\n", created.ID, tenant)
				for _, r := range retired {
					fmt.Fprintf(e.stdout, "signing key %s verifies until %s\n", r.ID, tsFormat(r.RetireAt))
				}
				return nil
			})
		},
	}
	mk.register(rotate.Flags(), e)
	rotate.Flags().DurationVar(&retireAfter, "retire-after", 24*time.Hour, "how long the previous key keeps verifying: at least the longest token lifetime")
	rotateOut.register(rotate.Flags())

	now := time.Now()
	type keyJSON struct {
		store.SigningKey
		State string `json:"state"`
	}
	list := listCmd(e, &sf, &tenant, "list a tenant's signing keys (never their secrets)", "KID\tSTATE\tCREATED\tRETIRES\tREVOKED",
		(*store.Store).SigningKeys,
		func(k store.SigningKey) []any {
			return []any{k.ID, k.State(now), tsFormat(k.CreatedAt), tsFormat(k.RetireAt), tsFormat(k.RevokedAt)}
		},
		func(keys []store.SigningKey) any {
			out := make([]keyJSON, len(keys))
			for i, k := range keys {
				out[i] = keyJSON{k, k.State(now)}
			}
			return out
		})

	revoke := &cobra.Command{
		Use:   "revoke --tenant T KID",
		Short: "revoke a signing key: every token it signed is refused by every server within 2s",
		Args:  args("KID"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireTenant(tenant); err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				k, err := s.RevokeSigningKey(ctx, tenant, a[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "revoked signing key %s of tenant %s (at %s)\n", k.ID, tenant, tsFormat(k.RevokedAt))
				return nil
			})
		},
	}
	cmd.AddCommand(rotate, list, revoke)
	return cmd
}

// tokenFlags are the flags of `usher token mint`.
type tokenFlags struct {
	tenant, sub, email, name, idpSub string
	seats                            []string
	ttl                              time.Duration
	sso                              bool
	issuer, audience                 string
	maxTTL                           time.Duration
}

func newTokenCmd(e *env) *cobra.Command {
	var sf storeFlags
	var server serverFlag
	cmd := &cobra.Command{
		Use:   "token [--server URL]",
		Short: "print the CLI login's access token, refreshed when near expiry; `token mint` signs one for operators",
		Long: "usher token prints a fresh access token of the CLI's login (usher login) alone on stdout, for\n" +
			"  curl -H \"Authorization: Bearer $(usher token)\" ...\n" +
			"It refreshes the token first when it is near expiry. Exit code 3: not logged in, or the login was revoked.",
		Args: args(),
		RunE: func(c *cobra.Command, _ []string) error { return printToken(c.Context(), e, &server) },
	}
	server.register(cmd.Flags(), e)

	var f tokenFlags
	var mk masterKeyFlag
	mint := &cobra.Command{
		Use:   "mint --tenant T --sub S [--email E] [--seat SPACE=SEAT]... [--ttl 15m]",
		Short: "sign an access token with the tenant's active key; prints it alone on stdout",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			claims, cfg, err := f.claims()
			if err != nil {
				return err
			}
			key, err := mk.require(e)
			if err != nil {
				return err
			}
			sf.master = key
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				if err := checkHashPerm(ctx, s, f.tenant, claims.HashPerm); err != nil {
					return err
				}
				sk, err := s.ActiveSigningKey(ctx, f.tenant)
				if err != nil {
					return err
				}
				token, err := authz.MintAccessToken(cfg, sk, claims, time.Now(), f.ttl)
				if err != nil {
					return usageError{err}
				}
				fmt.Fprintln(e.stdout, token)
				fmt.Fprintf(e.stderr, "minted an access token for %s in tenant %s with key %s, valid %s\n", f.sub, f.tenant, sk.ID, f.ttl)
				return nil
			})
		},
	}
	fs := mint.Flags()
	sf.register(fs, e)
	fs.StringVar(&f.tenant, "tenant", "", "the tenant (required)")
	fs.StringVar(&f.sub, "sub", "", "the subject (required)")
	fs.StringVar(&f.email, "email", "", "the user's email")
	fs.StringVar(&f.name, "name", "", "the user's display name (user_metadata.name)")
	fs.StringVar(&f.idpSub, "idp-sub", "", "the user's subject at the IdP (user_metadata.sub)")
	fs.StringArrayVar(&f.seats, "seat", nil, `the seat that applies in a space: SPACE=SEAT (SPACE "*" for every space); repeat for more`)
	fs.DurationVar(&f.ttl, "ttl", time.Hour, "lifetime, at most jwt.max_ttl")
	fs.BoolVar(&f.sso, "sso", false, "mark the token as from a single sign-on login (is_sso)")
	fs.StringVar(&f.issuer, "issuer", envOr(e, "USHER_JWT_ISSUER", authz.DefaultTokenConfig().Issuer), "iss, as the servers expect it (env USHER_JWT_ISSUER)")
	fs.StringVar(&f.audience, "audience", envOr(e, "USHER_JWT_AUDIENCE", authz.DefaultTokenConfig().Audience), "aud, as the servers expect it (env USHER_JWT_AUDIENCE)")
	fs.DurationVar(&f.maxTTL, "max-ttl", authz.DefaultTokenConfig().MaxTTL, "the cap on --ttl, as the servers enforce it (jwt.max_ttl)")
	mk.register(fs, e)
	cmd.AddCommand(mint)
	return cmd
}

func envOr(e *env, name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

// claims checks the flags and builds the token's claims.
func (f *tokenFlags) claims() (authz.AccessClaims, authz.TokenConfig, error) {
	cfg := authz.TokenConfig{Issuer: f.issuer, Audience: f.audience, Leeway: authz.DefaultTokenConfig().Leeway, MaxTTL: f.maxTTL}
	if err := requireTenant(f.tenant); err != nil {
		return authz.AccessClaims{}, cfg, err
	}
	if f.sub == "" {
		return authz.AccessClaims{}, cfg, usagef("--sub is required")
	}
	if err := cfg.Validate(); err != nil {
		return authz.AccessClaims{}, cfg, usageError{err}
	}
	if f.ttl <= 0 || f.ttl > cfg.MaxTTL {
		return authz.AccessClaims{}, cfg, usagef("--ttl must be positive and at most %s", cfg.MaxTTL)
	}
	perm := map[string]string{}
	for _, s := range f.seats {
		space, seat, ok := strings.Cut(s, "=")
		if !ok || space == "" || seat == "" {
			return authz.AccessClaims{}, cfg, usagef("--seat %q: want SPACE=SEAT, like proj1=editors", s)
		}
		if _, dup := perm[space]; dup {
			return authz.AccessClaims{}, cfg, usagef("--seat: space %s given twice; a token names one seat per space", space)
		}
		perm[space] = seat
	}
	return authz.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: f.sub},
		Email:            f.email,
		IsSSO:            f.sso,
		UserMetadata:     authz.UserMetadata{Email: f.email, Name: f.name, Sub: f.idpSub},
		HashPerm:         perm,
	}, cfg, nil
}

// checkHashPerm checks that every seat and space a token names exists in
// the tenant.
func checkHashPerm(ctx context.Context, s *store.Store, tenant string, perm map[string]string) error {
	spaces, err := s.Spaces(ctx, tenant)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(perm))
	for space := range perm {
		names = append(names, space)
	}
	sort.Strings(names)
	for _, space := range names {
		if space != "*" && !containsSpace(spaces, space) {
			return fmt.Errorf("space %s in tenant %s: %w (create it first)", space, tenant, store.ErrNotFound)
		}
		if _, err := s.Seat(ctx, tenant, perm[space]); err != nil {
			return err
		}
	}
	return nil
}

func containsSpace(spaces []store.Space, name string) bool {
	for _, sp := range spaces {
		if sp.Name == name {
			return true
		}
	}
	return false
}
