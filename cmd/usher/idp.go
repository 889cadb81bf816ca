package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usher-dev/usher/idp"
	"github.com/usher-dev/usher/login"
	"github.com/usher-dev/usher/store"
)

func newIdPCmd(e *env) *cobra.Command {
	var sf storeFlags
	var mk masterKeyFlag
	var tenant string
	cmd := &cobra.Command{Use: "idp", Short: "add, list and remove a tenant's login providers (OIDC, Google, GitHub)"}
	sf.register(cmd.PersistentFlags(), e)
	mk.register(cmd.PersistentFlags(), e)
	cmd.PersistentFlags().StringVar(&tenant, "tenant", "", "the tenant (required)")

	var p login.ProviderConfig
	var secretFile string
	add := &cobra.Command{
		Use:   "add --tenant T --type oidc|google|github --client-id ID (--client-secret-file F | env USHER_IDP_CLIENT_SECRET) [...]",
		Short: "add a login provider to a tenant: one of each type per tenant; the client secret is sealed with the master key",
		Long: `add stores a login provider for a tenant; people of the tenant see it on
the login page as "Continue with <name>". One provider of each type per
tenant (the provider from USHER_AUTH_* counts for its tenant). An oidc
provider's discovery must answer now. The client secret is read from
--client-secret-file or USHER_IDP_CLIENT_SECRET (never a flag, so that it
stays out of shell history) and sealed with the master key. GitHub
providers take --allowed-org and --allowed-team (org/team-slug,
repeatable) and, for GitHub Enterprise, --auth-url, --token-url and
--api-url. Running servers load it within a minute (cache.ttl).`,
		Args: args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireTenant(tenant); err != nil {
				return err
			}
			p.Tenant = tenant
			secret, err := readSecret(e, secretFile, "USHER_IDP_CLIENT_SECRET")
			if err != nil {
				return err
			}
			p.ClientSecret = secret
			if err := checkProvider(c.Context(), &p); err != nil {
				return err
			}
			if e.getenv("USHER_AUTH_TENANT") == tenant && e.getenv("USHER_AUTH_PROVIDER_TYPE") == p.Type {
				return usagef("tenant %s already has its %s provider from USHER_AUTH_*: one provider of each type per tenant", tenant, p.Type)
			}
			if sf.master, err = mk.require(e); err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				if _, err := s.Tenant(ctx, tenant); err != nil {
					return err
				}
				p.CreatedAt = s.Now()
				if err := s.AddProvider(ctx, p); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "tenant %s logs in with %s (%s)\n", tenant, providerName(p), p.Type)
				return nil
			})
		},
	}
	f := add.Flags()
	f.StringVar(&p.Type, "type", "", "oidc, google or github (required)")
	f.StringVar(&p.Name, "name", "", `the button's label: "Continue with <name>" (default: Google, GitHub, or the issuer's host)`)
	f.StringVar(&p.ClientID, "client-id", "", "the OAuth client id (required)")
	f.StringVar(&secretFile, "client-secret-file", "", "file holding the client secret (or set USHER_IDP_CLIENT_SECRET)")
	f.StringVar(&p.IssuerURL, "issuer-url", "", "the issuer (required for oidc; google: Google's)")
	f.StringVar(&p.RedirectURL, "redirect-url", "", "the redirect URL registered at the IdP (default <login url>/auth/oidc/callback)")
	f.StringVar(&p.GroupsClaim, "groups-claim", "", "ID token claim holding groups (default groups; dotted paths allowed)")
	f.StringArrayVar(&p.AllowedOrgs, "allowed-org", nil, "github: an organisation whose members may log in; repeat for more")
	f.StringArrayVar(&p.AllowedTeams, "allowed-team", nil, "github: a team (org/team-slug) whose members may log in; repeat for more")
	f.StringVar(&p.AuthURL, "auth-url", "", "github: GitHub Enterprise authorize URL")
	f.StringVar(&p.TokenURL, "token-url", "", "github: GitHub Enterprise token URL")
	f.StringVar(&p.APIURL, "api-url", "", "github: GitHub Enterprise REST API base URL")

	var out outputFlag
	list := &cobra.Command{
		Use:   "list --tenant T",
		Short: "list a tenant's login providers (never a secret)",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := firstError(requireTenant(tenant), out.check()); err != nil {
				return err
			}
			var err error
			if sf.master, err = mk.require(e); err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				ps, err := s.ListProviders(ctx, tenant)
				if err != nil {
					return err
				}
				rows := make([][]any, len(ps))
				type jsonRow struct {
					Type, Name, ClientID, IssuerURL, RedirectURL, GroupsClaim string
					AllowedOrgs, AllowedTeams                                 []string
					Created                                                   string
				}
				js := make([]jsonRow, len(ps))
				for i, x := range ps {
					rows[i] = []any{x.Type, providerName(x), x.ClientID, orDash(x.IssuerURL), orDash(strings.Join(append(x.AllowedOrgs, x.AllowedTeams...), ",")), tsFormat(x.CreatedAt)}
					js[i] = jsonRow{x.Type, providerName(x), x.ClientID, x.IssuerURL, x.RedirectURL, x.GroupsClaim, x.AllowedOrgs, x.AllowedTeams, tsFormat(x.CreatedAt)}
				}
				if out.json() {
					return writeJSON(e.stdout, js)
				}
				return table(e.stdout, "TYPE\tNAME\tCLIENT ID\tISSUER\tALLOWED\tCREATED", rows)
			})
		},
	}
	out.register(list.Flags())

	remove := &cobra.Command{
		Use:   "remove --tenant T TYPE",
		Short: "remove a tenant's login provider of that type; sessions it created stay until they end or are revoked",
		Args:  args("TYPE"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireTenant(tenant); err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				if err := s.RemoveProvider(ctx, tenant, a[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "removed the %s provider of tenant %s\n", a[0], tenant)
				return nil
			})
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

// checkProvider validates a provider before it is stored: its type, its
// URLs, and for oidc that discovery answers for exactly that issuer.
func checkProvider(ctx context.Context, p *login.ProviderConfig) error {
	if p.ClientID == "" {
		return usagef("--client-id is required")
	}
	for _, u := range []struct{ flag, v string }{{"--issuer-url", p.IssuerURL}, {"--redirect-url", p.RedirectURL},
		{"--auth-url", p.AuthURL}, {"--token-url", p.TokenURL}, {"--api-url", p.APIURL}} {
		if u.v == "" {
			continue
		}
		pu, err := url.Parse(u.v)
		if err != nil || pu.Host == "" || pu.User != nil || (pu.Scheme != "https" && !(pu.Scheme == "http" && isLoopbackHost(pu.Hostname()))) {
			return usagef("%s %q: want an https URL (plain http only on loopback)", u.flag, u.v)
		}
	}
	switch p.Type {
	case "oidc":
		if p.IssuerURL == "" {
			return usagef("--issuer-url is required for an oidc provider")
		}
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if _, err := idp.Discover(dctx, idp.NewClient(10*time.Second), p.IssuerURL); err != nil {
			return fmt.Errorf("the issuer's discovery must answer: %w", err)
		}
	case "google":
	case "github":
		if p.IssuerURL != "" {
			return usagef("--issuer-url is not used by github (set --auth-url, --token-url and --api-url for GitHub Enterprise)")
		}
	default:
		return usagef("--type must be oidc, google or github, not %q", p.Type)
	}
	if p.Type != "github" && (len(p.AllowedOrgs) > 0 || len(p.AllowedTeams) > 0 || p.AuthURL != "" || p.TokenURL != "" || p.APIURL != "") {
		return usagef("--allowed-org, --allowed-team and the GitHub URLs are for --type github")
	}
	for _, team := range p.AllowedTeams {
		if org, slug, ok := strings.Cut(team, "/"); !ok || org == "" || slug == "" || strings.Contains(slug, "/") {
			return usagef("--allowed-team %q: want org/team-slug", team)
		}
	}
	return nil
}

func providerName(p login.ProviderConfig) string {
	switch {
	case p.Name != "":
		return p.Name
	case p.Type == "google":
		return "Google"
	case p.Type == "github":
		return "GitHub"
	}
	if u, err := url.Parse(p.IssuerURL); err == nil && u.Host != "" {
		return u.Host
	}
	return p.Type
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// readSecret reads a secret from file, or else from the environment
// variable env; it must not be empty.
func readSecret(e *env, file, envName string) (string, error) {
	v := e.getenv(envName)
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", usageError{err}
		}
		v = string(data)
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "", usagef("the client secret is required: put it in a file for --client-secret-file, or set %s", envName)
	}
	return v, nil
}
