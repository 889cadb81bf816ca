package idp_test

import (
	"testing"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/store"
)

// tenantRules name the tenant in the path, so that one token can be sent to
// routes of two tenants.
const tenantRules = `
rules:
  - name: tenant-read
    path: /t/{tenant}/spaces/{space}/datasets/**
    permission: datasets.read
  - name: tenant-me
    path: /t/{tenant}/me
    authenticated: true
`

// withRules replaces w's authorizer with one deciding by rules, on the same
// store and verifier.
func (w *world) withRules(t *testing.T, rules string) {
	t.Helper()
	r, err := authz.ParseRules("rules", []byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	w.a.Close()
	if w.a, err = authz.New(authz.Config{Rules: r, Keys: w.st, Seats: w.st, External: w.v, SeatLister: w.st,
		Cache: authz.DefaultCacheConfig(), Now: w.clock.Now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.a.Close)
}

// TestTokenOnlyUnderItsTrust (docs/security-catalogue.md row 108: the same
// token under different verifiers). acme trusts provider X, globex trusts
// provider Y. A token is accepted only as the tenant whose trust verified
// it: X's token is acme's on acme's routes and refused 403 on globex's,
// whichever route saw it first (the token cache holds the verified tenant
// with the token, so a cached verification cannot carry it to another
// tenant's route); X's token for globex's audience, or one claiming Y's
// issuer, verifies under no trust. When the trusts change (X moves from
// acme to globex) a token verified under the old trust is not served from
// the cache: it is globex's from then on, and refused on acme's routes.
// Catalogue rows 18, 70, 109 (docs/catalogue-map.md).
func TestTokenOnlyUnderItsTrust(t *testing.T) {
	w := newWorld(t, "memberOf") // acme trusts X (w.idp) for api://usher
	w.withRules(t, tenantRules)
	yKey := testidp.NewRSAKey(t, "y-1")
	y := testidp.Start(t, yKey)
	if _, err := w.st.AddIssuer(t.Context(), store.Issuer{Tenant: "globex", Issuer: y.URL, Audience: "api://globex",
		GroupsClaim: "groups", MatchGroupNames: true}); err != nil {
		t.Fatal(err)
	}
	w.apply(t)
	const (
		acmeRead   = "/t/acme/spaces/proj1/datasets/a"
		globexRead = "/t/globex/spaces/proj1/datasets/a"
		acmeMe     = "/t/acme/me"
		globexMe   = "/t/globex/me"
	)
	allowed := func(tenant, seats string) outcome {
		return outcome{200, authz.ReasonAllowed, "", tenant, seats}
	}
	mismatch := denial(authz.ReasonTenantMismatch)
	x := func(sub string) string { return testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": sub}), nil) }
	yTok := testidp.Sign(t, yKey, map[string]any{"iss": y.URL, "sub": "yuser", "aud": "api://globex",
		"iat": w.clock.Now().Unix(), "exp": w.clock.Now().Unix() + 3600, "groups": []any{"editors"}}, nil)
	warm, cold := x("warm"), x("cold")
	steps := []struct {
		name, path, token string
		want              outcome
	}{
		{"X's token on acme's route", acmeRead, warm, allowed("acme", "viewers")},
		{"the same token, cached, on globex's route", globexRead, warm, mismatch},
		{"the same token, cached, on globex's authenticated route", globexMe, warm, mismatch},
		{"X's token on globex's route first", globexRead, cold, mismatch},
		{"then on acme's", acmeRead, cold, allowed("acme", "viewers")},
		{"Y's token on globex's route", globexRead, yTok, allowed("globex", "editors")},
		{"Y's token, cached, on acme's route", acmeMe, yTok, mismatch},
		{"X's token for globex's audience", globexRead,
			testidp.Sign(t, w.rsa, w.claims(map[string]any{"aud": "api://globex"}), nil), denial(authz.ReasonTokenClaimsInvalid)},
		{"X's key, Y's issuer", globexRead,
			testidp.Sign(t, w.rsa, w.claims(map[string]any{"iss": y.URL, "aud": "api://globex"}), nil), denial(authz.ReasonTokenInvalid)},
	}
	for _, s := range steps {
		d := w.check(t, s.path, s.token)
		got := outcomeOf(d)
		got.Subject = ""
		if d.Status != 200 {
			got.Tenant, got.Seats = "", "" // who the denied caller was is not asserted
		}
		if got != s.want {
			t.Errorf("%s: %+v (%v); want %+v", s.name, got, d.Cause, s.want)
		}
	}

	// X moves from acme to globex. The cached verification of warm (acme's)
	// must not outlive the trust that made it acme's. Only the trust
	// changes are applied: a seat change would purge the cache by itself.
	pos, err := w.st.LastChange(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.st.RemoveIssuer(t.Context(), "acme", w.idp.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.AddIssuer(t.Context(), store.Issuer{Tenant: "globex", Issuer: w.idp.URL, Audience: "api://usher", GroupsClaim: "memberOf"}); err != nil {
		t.Fatal(err)
	}
	changes, err := w.st.ChangesAfter(t.Context(), pos, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Kind != authz.ChangeIssuer {
			t.Fatalf("change %+v; want only issuer changes", c)
		}
		w.a.Apply(c)
	}
	if got := outcomeOf(w.check(t, acmeRead, warm)); got.Status != 403 || got.Reason != authz.ReasonTenantMismatch || got.Tenant != "globex" {
		t.Errorf("X's cached token on acme's route after X moved to globex: %+v; want 403 tenant_mismatch as globex", got)
	}
	if got := outcomeOf(w.check(t, globexMe, warm)); got.Status != 200 || got.Tenant != "globex" {
		t.Errorf("X's cached token on globex's route after X moved to globex: %+v; want 200 as globex", got)
	}
}
