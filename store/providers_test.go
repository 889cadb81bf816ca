package store_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/seal"
	"github.com/usher-dev/usher/login"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

const providerSecret = "client-secret-plaintext-0123456789"

func oidcProvider(tenant string) login.ProviderConfig {
	return login.ProviderConfig{Tenant: tenant, Type: "oidc", Name: "Acme SSO", ClientID: "usher", ClientSecret: providerSecret,
		IssuerURL: "https://idp.test", RedirectURL: "https://login.root.test/auth/oidc/callback", GroupsClaim: "groups"}
}

func githubProvider(tenant string) login.ProviderConfig {
	return login.ProviderConfig{Tenant: tenant, Type: "github", Name: "GitHub", ClientID: "gh-client", ClientSecret: "gh-" + providerSecret,
		AllowedOrgs: []string{"acme"}, AllowedTeams: []string{"acme/platform"},
		AuthURL: "https://ghe.test/login/oauth/authorize", TokenURL: "https://ghe.test/login/oauth/access_token", APIURL: "https://ghe.test/api/v3"}
}

func mustAddProvider(t *testing.T, s *store.Store, p login.ProviderConfig) {
	t.Helper()
	if err := s.AddProvider(t.Context(), p); err != nil {
		t.Fatalf("AddProvider(%s/%s): %v", p.Tenant, p.Type, err)
	}
}

func listProviders(t *testing.T, s *store.Store, tenant string) []login.ProviderConfig {
	t.Helper()
	got, err := s.ListProviders(t.Context(), tenant)
	if err != nil {
		t.Fatalf("ListProviders(%q): %v", tenant, err)
	}
	return got
}

func TestProviders(t *testing.T) {
	s, c := openStore(t)
	mustTenant(t, s, "acme")
	mustTenant(t, s, "globex")
	at := ms(c.Now())
	acmeOIDC, acmeGitHub, globexOIDC := oidcProvider("acme"), githubProvider("acme"), oidcProvider("globex")
	for _, p := range []login.ProviderConfig{acmeOIDC, acmeGitHub, globexOIDC} {
		mustAddProvider(t, s, p)
	}
	withTime := func(ps ...login.ProviderConfig) []login.ProviderConfig {
		for i := range ps {
			ps[i].CreatedAt = at
		}
		return ps
	}
	if diff := cmp.Diff(withTime(acmeGitHub, acmeOIDC), listProviders(t, s, "acme")); diff != "" {
		t.Errorf("ListProviders(acme) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(withTime(acmeGitHub, acmeOIDC, globexOIDC), listProviders(t, s, "")); diff != "" {
		t.Errorf("ListProviders(every tenant) (-want +got):\n%s", diff)
	}

	if err := s.RemoveProvider(t.Context(), "acme", "oidc"); err != nil {
		t.Fatalf("RemoveProvider: %v", err)
	}
	if diff := cmp.Diff(withTime(acmeGitHub), listProviders(t, s, "acme")); diff != "" {
		t.Errorf("ListProviders(acme) after remove (-want +got):\n%s", diff)
	}
	if err := s.RemoveProvider(t.Context(), "acme", "oidc"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("RemoveProvider of a removed provider = %v, want one wrapping authz.ErrNotFound", err)
	}
	if err := s.RemoveProvider(t.Context(), "initech", "google"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("RemoveProvider of a missing provider = %v, want one wrapping authz.ErrNotFound", err)
	}
	// Removed, the type can be added again.
	mustAddProvider(t, s, acmeOIDC)
}

func TestAddProviderRefused(t *testing.T) {
	s, _ := openStore(t)
	mustTenant(t, s, "acme")
	mustAddProvider(t, s, oidcProvider("acme"))
	second := oidcProvider("acme")
	second.Name, second.IssuerURL = "Other SSO", "https://other.test"
	err := s.AddProvider(t.Context(), second)
	if !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "at most one provider of each type") {
		t.Errorf("second oidc provider of acme = %v, want ErrExists saying one per type", err)
	}
	tests := []struct {
		name   string
		mutate func(*login.ProviderConfig)
		is     error
	}{
		{"unknown type", func(p *login.ProviderConfig) { p.Type = "saml" }, nil},
		{"no client id", func(p *login.ProviderConfig) { p.ClientID = "" }, nil},
		{"oidc without issuer", func(p *login.ProviderConfig) { p.Type, p.IssuerURL = "oidc", "" }, nil},
		{"bad tenant", func(p *login.ProviderConfig) { p.Tenant = "Acme Corp" }, nil},
		{"unknown tenant", func(p *login.ProviderConfig) { p.Tenant = "globex" }, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := oidcProvider("acme")
			p.Type = "google" // free in acme
			tt.mutate(&p)
			err := s.AddProvider(t.Context(), p)
			if err == nil || errors.Is(err, store.ErrExists) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("AddProvider = %v, want a refusal (wrapping %v)", err, tt.is)
			}
		})
	}
	if got := listProviders(t, s, ""); len(got) != 1 || got[0].Name != "Acme SSO" {
		t.Errorf("providers after refusals = %+v, want only the first oidc provider", got)
	}
}

// The client secret is sealed at rest: the stored document holds neither
// the plaintext nor anything that opens for another provider.
func TestProviderSecretSealed(t *testing.T) {
	s, _ := openStore(t)
	mustTenant(t, s, "acme")
	mustAddProvider(t, s, oidcProvider("acme"))
	mustAddProvider(t, s, githubProvider("acme"))
	docs, err := store.RawDocuments(t.Context(), s, "identity_providers")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("%d stored providers, want 2", len(docs))
	}
	for _, d := range docs {
		if bytes.Contains(d, []byte(providerSecret)) {
			t.Errorf("stored provider holds the plaintext client secret: %s", d)
		}
		sealed, ok := d.Lookup("client_secret").StringValueOK()
		if !ok || !strings.HasPrefix(sealed, "v1.") {
			t.Errorf("stored client_secret = %q, want a sealed value", sealed)
		}
	}
}

// A provider whose secret no longer opens (sealed with another master
// key) is left out with a logged error; the others still load.
func TestListProvidersSkipsUnopenable(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	s := storetest.OpenDir(t, dir, nil)
	mustTenant(t, s, "acme")
	mustAddProvider(t, s, oidcProvider("acme"))

	// A second server of the same store, with another master key.
	otherKey, err := seal.ParseKey("b3RoZXItbWFzdGVyLWtleS0zMi1ieXRlcy1sb25nISE=")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	other, err := store.Open(ctx, store.Options{DataDir: dir, MasterKey: otherKey,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatalf("open the store with another master key: %v", err)
	}
	t.Cleanup(func() { _ = other.Close(context.WithoutCancel(t.Context())) })
	mustAddProvider(t, other, githubProvider("acme"))

	got := listProviders(t, other, "acme")
	if len(got) != 1 || got[0].Type != "github" || got[0].ClientSecret != "gh-"+providerSecret {
		t.Errorf("ListProviders with the other key = %+v, want the github provider alone", got)
	}
	log := logs.String()
	for _, want := range []string{"level=ERROR", "tenant=acme", "type=oidc", "does not open"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, providerSecret) {
		t.Errorf("log holds a client secret:\n%s", log)
	}
	if got := listProviders(t, s, "acme"); len(got) != 1 || got[0].Type != "oidc" || got[0].ClientSecret != providerSecret {
		t.Errorf("ListProviders with the first key = %+v, want the oidc provider alone", got)
	}
}
