package login

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Registry is the ProviderSource of a running server: the default
// provider (USHER_AUTH_*) and each tenant's stored ones
// (identity_providers), built into Providers on first use and re-read
// every TTL. A stored provider that does not build (a sealed secret that
// no longer opens, an unreachable Google discovery) is left out with a
// logged error and tried again on the next read; it never stops a
// server. A stored provider of the default provider's type in its tenant
// is left out: one provider of each type per tenant.
type Registry struct {
	// Default is the default provider's configuration; Type "" for none.
	Default ProviderConfig
	Stored  Providers
	// AllowedDomains are passed to Google providers (hd).
	AllowedDomains []string
	// RedirectURL is the callback of stored providers that set none.
	RedirectURL string
	// TTL is how long a tenant's list is used before it is read again.
	TTL    time.Duration
	Client *http.Client
	Log    *slog.Logger

	mu      sync.Mutex
	tenants map[string]registryEntry
	built   map[string]builtProvider // tenant/type → provider
}

type registryEntry struct {
	providers []Provider
	at        time.Time
}

type builtProvider struct {
	cfg ProviderConfig
	p   Provider
}

// Source returns the registry as the login app's ProviderSource.
func (r *Registry) Source() ProviderSource { return r.providers }

func (r *Registry) providers(ctx context.Context, tenant string) ([]Provider, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.tenants[tenant]; ok && time.Since(e.at) < r.TTL {
		return e.providers, nil
	}
	var cfgs []ProviderConfig
	if r.Default.Type != "" && r.Default.Tenant == tenant {
		cfgs = append(cfgs, r.Default)
	}
	stored, err := r.Stored.ListProviders(ctx, tenant)
	if err != nil {
		if e, ok := r.tenants[tenant]; ok { // the last good list, while the store fails
			return e.providers, nil
		}
		return nil, fmt.Errorf("read the login providers of tenant %s: %w", tenant, err)
	}
	for _, c := range stored {
		if len(cfgs) > 0 && c.Type == r.Default.Type && c.Tenant == r.Default.Tenant {
			r.Log.ErrorContext(ctx, "stored login provider left out: the tenant's provider of this type comes from USHER_AUTH_*",
				"tenant", tenant, "type", c.Type)
			continue
		}
		cfgs = append(cfgs, c)
	}
	var out []Provider
	for _, c := range cfgs {
		p, err := r.build(ctx, c)
		if err != nil {
			r.Log.ErrorContext(ctx, "login provider left out", "tenant", tenant, "type", c.Type, "err", err)
			continue
		}
		out = append(out, p)
	}
	if r.tenants == nil {
		r.tenants = map[string]registryEntry{}
	}
	r.tenants[tenant] = registryEntry{providers: out, at: time.Now()}
	return out, nil
}

// build makes the Provider of c, reusing the one built before from the
// same configuration (it keeps its discovery and keys).
func (r *Registry) build(ctx context.Context, c ProviderConfig) (Provider, error) {
	key := c.Tenant + "/" + c.Type
	if b, ok := r.built[key]; ok && sameProvider(b.cfg, c) {
		return b.p, nil
	}
	if c.RedirectURL == "" {
		c.RedirectURL = r.RedirectURL
	}
	var p Provider
	var err error
	switch c.Type {
	case "oidc":
		p, err = NewOIDC(OIDCConfig{Name: c.Name, Tenant: c.Tenant, IssuerURL: c.IssuerURL, ClientID: c.ClientID,
			ClientSecret: c.ClientSecret, RedirectURL: c.RedirectURL, GroupsClaim: c.GroupsClaim, HTTPClient: r.Client})
	case "google":
		p, err = NewGoogle(ctx, c, r.AllowedDomains, r.Client)
	case "github":
		p, err = NewGitHub(c, r.Client)
	default:
		err = fmt.Errorf("unknown provider type %q", c.Type)
	}
	if err != nil {
		return nil, err
	}
	if r.built == nil {
		r.built = map[string]builtProvider{}
	}
	r.built[key] = builtProvider{cfg: c, p: p}
	return p, nil
}

func sameProvider(a, b ProviderConfig) bool {
	return a.Name == b.Name && a.ClientID == b.ClientID && a.ClientSecret == b.ClientSecret && a.IssuerURL == b.IssuerURL &&
		a.GroupsClaim == b.GroupsClaim && a.AuthURL == b.AuthURL && a.TokenURL == b.TokenURL && a.APIURL == b.APIURL &&
		fmt.Sprint(a.AllowedOrgs, a.AllowedTeams) == fmt.Sprint(b.AllowedOrgs, b.AllowedTeams) && a.CreatedAt.Equal(b.CreatedAt)
}
