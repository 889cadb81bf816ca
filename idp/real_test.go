package idp_test

import (
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/idp"
	"github.com/usher-dev/usher/internal/testclock"
	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// TestRealOpenIDProvider checks usher against a real OpenID provider
// (oidc-provider on Node.js): its discovery passes `issuer add`'s checks,
// and its RFC 9068 access tokens, signed with its own keys, are accepted
// for the audience the tenant trusts, with the groups they carry, and
// refused for another audience or with a broken signature.
func TestRealOpenIDProvider(t *testing.T) {
	real := testidp.StartReal(t, "CN=viewers,OU=groups", "unrelated")
	d, err := idp.Discover(t.Context(), idp.NewClient(5*time.Second), real.Issuer)
	if err != nil {
		t.Fatalf("discovery of a real provider: %v", err)
	}
	if d.JWKSURL != real.Issuer+"/jwks" || len(d.Algorithms) == 0 {
		t.Errorf("discovery: %+v", d)
	}
	st := storetest.Open(t, nil)
	storetest.Seed(t, st)
	if _, err := st.AddIssuer(t.Context(), store.Issuer{Tenant: "acme", Issuer: real.Issuer, Audience: "api://usher", GroupsClaim: "groups"}); err != nil {
		t.Fatal(err)
	}
	clock := testclock.New(time.Now())
	v := idp.New(idp.Config{Lookup: lookup(st), Leeway: 30 * time.Second, Now: clock.Now})
	r, err := authz.ParseRules("rules", []byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	a, err := authz.New(authz.Config{Rules: r, Keys: st, Seats: st, External: v, SeatLister: st, Cache: authz.DefaultCacheConfig(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w := &world{a: a, st: st, clock: clock}

	token := real.AccessToken(t, "api://usher")
	if d := w.check(t, "/spaces/proj1/datasets/x", token); d.Reason != authz.ReasonAllowed ||
		d.Identity.Subject != testidp.RealClientID || d.Identity.Tenant != "acme" || d.Seats != "viewers" {
		t.Errorf("a real provider's token: %s (cause %v) subject %q tenant %q seats %q", d.Reason, d.Cause, d.Identity.Subject, d.Identity.Tenant, d.Seats)
	}
	other := real.AccessToken(t, "api://other")
	if d := w.check(t, "/me", other); d.Reason != authz.ReasonTokenClaimsInvalid {
		t.Errorf("a token for another audience: %s", d.Reason)
	}
	broken := token[:len(token)-4] + "AAAA"
	if broken == token {
		broken = token[:len(token)-4] + "BBBB"
	}
	if d := w.check(t, "/me", broken); d.Reason != authz.ReasonTokenInvalid {
		t.Errorf("a token with a broken signature: %s", d.Reason)
	}
	clock.Advance(10 * time.Minute) // the provider's tokens live 5 minutes
	if d := w.check(t, "/me", token); d.Reason != authz.ReasonTokenExpired {
		t.Errorf("the token 10 minutes later: %s", d.Reason)
	}
}
