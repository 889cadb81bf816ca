package login_test

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/internal/testclock"
	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/login"
)

// TestOIDCDiscovery: an issuer whose discovery names another issuer is
// refused; an IdP that is down is ErrIdPUnavailable, retried after a
// pause, and works once it is back. Catalogue rows 57, 72.
// Catalogue row 130 (login answers 503 while its IdP is down).
func TestOIDCDiscovery(t *testing.T) {
	clock := testclock.New(epoch)
	newProv := func(iss string) *login.OIDC {
		p, err := login.NewOIDC(login.OIDCConfig{IssuerURL: iss, ClientID: "c", RedirectURL: loginURL + login.CallbackPath, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("issuer mismatch", func(t *testing.T) {
		idp := testidp.Start(t, testidp.NewRSAKey(t, "k"))
		idp.IssuerOverride = idp.URL + "/"
		if err := newProv(idp.URL).Ready(t.Context()); !errors.Is(err, login.ErrIdPUnavailable) {
			t.Fatalf("Ready: %v, want ErrIdPUnavailable", err)
		}
	})
	t.Run("down, then back", func(t *testing.T) {
		idp := testidp.Start(t, testidp.NewRSAKey(t, "k"))
		idp.SetDown(true)
		p := newProv(idp.URL)
		if err := p.Ready(t.Context()); !errors.Is(err, login.ErrIdPUnavailable) {
			t.Fatalf("Ready while down: %v", err)
		}
		if p.AuthCodeURL("s", "n", "v") != "" {
			t.Error("an authorization URL before discovery")
		}
		idp.SetDown(false)
		hits := idp.DiscoveryHits.Load()
		if err := p.Ready(t.Context()); err == nil || idp.DiscoveryHits.Load() != hits {
			t.Fatalf("retried at once (err %v): discovery must back off", err)
		}
		clock.Advance(6 * time.Second)
		if err := p.Ready(t.Context()); err != nil {
			t.Fatalf("Ready after the IdP came back: %v", err)
		}
		u, err := url.Parse(p.AuthCodeURL("s", "n", "v"))
		if err != nil || u.Query().Get("code_challenge_method") != "S256" || u.Query().Get("nonce") != "n" || u.Query().Get("state") != "s" {
			t.Errorf("authorization URL %v", u)
		}
	})
	t.Run("login page and start answer 503 while down", func(t *testing.T) {
		h := newHarness(t)
		idp := testidp.Start(t, testidp.NewRSAKey(t, "k"))
		idp.SetDown(true)
		h.prov = newProv(idp.URL)
		r := form("/auth/oidc/login", url.Values{"provider": {"oidc"}})
		r.Header.Set("Accept", "application/json")
		if w := h.do(r); w.Code != http.StatusServiceUnavailable || reason(t, w) != "idp_unavailable" {
			t.Fatalf("%d %s, want 503 idp_unavailable", w.Code, w.Body)
		}
	})
}

// TestGroupsClaim: groups at a dotted path, and overage under any claim
// name. Catalogue row 69.
func TestGroupsClaim(t *testing.T) {
	tests := []struct {
		name, claim string
		shape       func(c map[string]any)
		seats       []string
		status      int
	}{
		{"dotted path", "realm_access.roles", func(c map[string]any) { c["realm_access"] = map[string]any{"roles": []string{"ops"}} }, []string{"admin"}, 302},
		{"single string", "memberOf", func(c map[string]any) { c["memberOf"] = "engineers" }, []string{"dev"}, 302},
		{"overage on the configured claim", "roles", func(c map[string]any) {
			c["roles"] = []string{"ops"}
			c["_claim_names"] = map[string]any{"roles": "src1"}
			c["_claim_sources"] = map[string]any{"src1": map[string]any{"endpoint": "https://graph.example/x"}}
		}, nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *login.Config) { c.AllowAllUsers = false })
			p, err := login.NewOIDC(login.OIDCConfig{
				Tenant: tenant, IssuerURL: h.idp.URL, ClientID: h.idp.ClientID, ClientSecret: h.idp.Secret,
				RedirectURL: loginURL + login.CallbackPath, GroupsClaim: tt.claim, Now: h.clock.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			h.prov = p
			u := alice
			u.Groups = nil
			u.Shape = tt.shape
			fc, au := h.start("oidc", "/")
			_, q := h.idp.issueCode(t, au, u)
			w := h.callback(q, fc)
			if w.Code != tt.status {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.status)
			}
			if tt.status == 302 {
				if diff := cmp.Diff(tt.seats, h.st.snapshot()[0].Seats); diff != "" {
					t.Errorf("seats (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestStaticProviders(t *testing.T) {
	cfg := testConfig().WithDefaults()
	a, err := login.NewOIDC(cfg.DefaultOIDCConfig())
	if err != nil {
		t.Fatal(err)
	}
	oc := cfg.DefaultOIDCConfig()
	oc.Tenant, oc.Type = "other", "google"
	b, err := login.NewOIDC(oc)
	if err != nil {
		t.Fatal(err)
	}
	src := login.StaticProviders(a, b)
	for tn, want := range map[string]string{tenant: "oidc", "other": "google", "nobody": ""} {
		ps, _ := src(t.Context(), tn)
		var got string
		for _, p := range ps {
			got += p.Type()
		}
		if got != want {
			t.Errorf("tenant %s: providers %q, want %q", tn, got, want)
		}
	}
	if a.Issuer() != "https://idp.example" || a.Name() != "idp.example" || a.Tenant() != tenant {
		t.Errorf("default provider %s %s %s", a.Issuer(), a.Name(), a.Tenant())
	}
}
