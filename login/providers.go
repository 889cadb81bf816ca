package login

import (
	"context"
	"slices"
)

// StaticProviders is a ProviderSource of a fixed list, each provider
// listed under its own Tenant, in the order given.
func StaticProviders(ps ...Provider) ProviderSource {
	ps = slices.Clone(ps)
	return func(_ context.Context, tenant string) ([]Provider, error) {
		var out []Provider
		for _, p := range ps {
			if p.Tenant() == tenant {
				out = append(out, p)
			}
		}
		return out, nil
	}
}

// DefaultOIDCConfig is the OIDCConfig of the default provider of c (after
// WithDefaults) when its ProviderType is oidc: USHER_AUTH_* as set.
func (c Config) DefaultOIDCConfig() OIDCConfig {
	return OIDCConfig{
		Tenant: c.Tenant, IssuerURL: c.IssuerURL, ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		RedirectURL: c.RedirectURL, GroupsClaim: c.GroupsClaim,
	}
}
