package authz_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/idp"
	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/store"
)

// noopDecider answers allow without deciding: the baseline that shows what
// the decision itself costs.
type noopDecider struct{}

func (noopDecider) Check(context.Context, *authz.Request) authz.Decision {
	return authz.Decision{Status: 200, Reason: authz.ReasonPublic}
}

type decider interface {
	Check(context.Context, *authz.Request) authz.Decision
}

// envoyLikeRequest is shaped as Envoy's CheckRequest headers arrive.
func envoyLikeRequest(key string) *authz.Request {
	return &authz.Request{
		Method: "GET",
		Host:   "api.example.test",
		Path:   "/spaces/proj1/datasets/42?page=2",
		Headers: map[string]string{
			":authority": "api.example.test", ":method": "GET", ":path": "/spaces/proj1/datasets/42?page=2", ":scheme": "https",
			"accept": "application/json", "user-agent": "curl/8.5.0", "x-request-id": "4b1c2a8e-6f5d-4e3b-9a7c-2d1e0f9b8a76",
			"x-forwarded-proto": "https", "x-envoy-expected-rq-timeout-ms": "15000", "x-api-key": key,
		},
	}
}

// cookieRequest is envoyLikeRequest with a session of cw in the Cookie
// header, between two other cookies, instead of the API key.
func cookieRequest(t testing.TB, cw *cookieWorld) *authz.Request {
	t.Helper()
	h, _ := cw.login(t, "acme", "editors")
	r := envoyLikeRequest("")
	delete(r.Headers, "x-api-key")
	r.Headers["accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	r.Headers["cookie"] = "_ga=GA1.2.1234567890.1700000000; usher_session=" + h + "; theme=dark"
	return r
}

// BenchmarkCheck decides one request per iteration, each credential beside
// the noop baseline (a decider that answers without deciding):
//
//	apikey-cached       an API key, its record and seat cached
//	cookie-cached       the session cookie among two others, its session and
//	                    seat cached (the upstream gets the other two)
//	jwt-cached          usher's HS256 token, verified before
//	jwt-cold            usher's HS256 token never seen (keyring cached)
//	idp-jwt-cached/ALG  an IdP's RS256 or ES256 token, verified before
//	idp-jwt-cold/ALG    an IdP's token never seen (discovery and keys cached)
//	apikey-cold         an API key whose record and seat are read from the store
//	deny-mix            a rotation of one allowed key and six denials (unknown
//	                    id, malformed, wrong secret, no credential, missing
//	                    permission, bad path), all cached where they can be
//
// Cold tokens come from a pool purged between passes, outside the timer.
//
//	go test ./authz -run '^$' -bench BenchmarkCheck -count 10 | benchstat -
//
// Catalogue row 131 (docs/catalogue-map.md).
func BenchmarkCheck(b *testing.B) {
	w := newWorld(b)
	keys := w.keyring(b)
	x := newIdPWorld(b, w)
	now := w.clock.Now()
	jwtReq := func(tok string) *authz.Request {
		r := envoyLikeRequest("")
		delete(r.Headers, "x-api-key")
		r.Headers["authorization"] = "Bearer " + tok
		return r
	}
	perm := map[string]string{"proj1": "editors"}
	usherPool := make([]*authz.Request, 256)
	for i := range usherPool {
		usherPool[i] = jwtReq(mintFor(b, keys["acme"], now, fmt.Sprintf("user-%d", i), perm))
	}
	cw := newCookieWorld(b)
	cached := []struct {
		name string
		d    decider
		r    *authz.Request
	}{
		{"noop", noopDecider{}, envoyLikeRequest(w.keys["acme/ci"])},
		{"apikey-cached", w.a, envoyLikeRequest(w.keys["acme/ci"])},
		{"cookie-cached", cw.a, cookieRequest(b, cw)},
		{"jwt-cached", w.a, usherPool[0]},
		{"idp-jwt-cached/RS256", w.a, jwtReq(x.sign(b, x.rsa, "user-0"))},
		{"idp-jwt-cached/ES256", w.a, jwtReq(x.sign(b, x.ec, "user-0"))},
	}
	b.Run("deny-mix", func(b *testing.B) {
		ctx := b.Context()
		noCred := envoyLikeRequest("")
		delete(noCred.Headers, "x-api-key")
		write := envoyLikeRequest(w.keys["acme/reader"])
		write.Method, write.Headers[":method"] = "POST", "POST"
		badPath := envoyLikeRequest(w.keys["acme/ci"])
		badPath.Path = "/spaces/proj1%2Fdatasets/42"
		mix := []*authz.Request{
			envoyLikeRequest(w.keys["acme/ci"]),
			envoyLikeRequest(authz.FormatAPIKey("acme", "zzzzzzzzzzzzzzzz", []byte(strings.Repeat("q", 32)))),
			envoyLikeRequest("sk_not*a*key"),
			envoyLikeRequest(authz.FormatAPIKey("acme", "ciacmekeyaaaaaaa", []byte(strings.Repeat("w", 32)))),
			noCred, write, badPath,
		}
		allowed := 0
		for _, r := range mix {
			if w.a.Check(ctx, r).Allowed() {
				allowed++
			}
		}
		if allowed != 1 {
			b.Fatalf("%d of the mix allowed, want 1", allowed)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			w.a.Check(ctx, mix[i])
			if i++; i == len(mix) {
				i = 0
			}
		}
	})
	b.Run("apikey-cold", func(b *testing.B) {
		ctx := b.Context()
		r := envoyLikeRequest(w.keys["acme/ci"])
		// A change of a kind the authorizer does not know purges every
		// cache: the next Check reads the key and its seat again.
		purge := func() { w.a.Apply(authz.Change{Kind: "bench-purge-all"}) }
		if d := w.a.Check(ctx, r); !d.Allowed() {
			b.Fatalf("denied: %s", d.Reason)
		}
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			purge()
			b.StartTimer()
			w.a.Check(ctx, r)
		}
	})
	for _, bc := range cached {
		b.Run(bc.name, func(b *testing.B) {
			ctx := b.Context()
			if d := bc.d.Check(ctx, bc.r); !d.Allowed() {
				b.Fatalf("denied: %s", d.Reason)
			}
			b.ReportAllocs()
			for b.Loop() {
				bc.d.Check(ctx, bc.r)
			}
		})
	}
	cold := []struct {
		name string
		pool []*authz.Request
	}{
		{"jwt-cold", usherPool},
		{"idp-jwt-cold/RS256", x.pool(b, x.rsa, jwtReq, 64)},
		{"idp-jwt-cold/ES256", x.pool(b, x.ec, jwtReq, 256)},
	}
	for _, bc := range cold {
		b.Run(bc.name, func(b *testing.B) {
			ctx := b.Context()
			purge := func() { w.a.Apply(authz.Change{Kind: authz.ChangeIssuer}) }
			purge()
			if d := w.a.Check(ctx, bc.pool[0]); !d.Allowed() {
				b.Fatalf("denied: %s", d.Reason)
			}
			purge()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(bc.pool) {
					b.StopTimer()
					purge()
					i = 0
					b.StartTimer()
				}
				w.a.Check(ctx, bc.pool[i])
				i++
			}
		})
	}
}

func mintFor(t testing.TB, key authz.SigningKey, now time.Time, sub string, perm map[string]string) string {
	t.Helper()
	tok, err := authz.MintAccessToken(authz.DefaultTokenConfig(), key, authz.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: sub}, HashPerm: perm,
	}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// idpWorld is a tenant trusting an IdP served over loopback HTTP, wired
// into a world's authorizer (through wrap, when given: a fault injector).
type idpWorld struct {
	p       *testidp.Provider
	rsa, ec testidp.Key
	now     time.Time
}

func newIdPWorld(t testing.TB, w *world, wrap ...func(authz.ExternalVerifier) authz.ExternalVerifier) *idpWorld {
	t.Helper()
	x := &idpWorld{rsa: testidp.NewRSAKey(t, "rsa-1"), ec: testidp.NewECKey(t, "ec-1"), now: w.clock.Now()}
	x.p = testidp.Start(t, x.rsa, x.ec)
	if _, err := w.st.AddIssuer(t.Context(), store.Issuer{Tenant: "acme", Issuer: x.p.URL, Audience: "api://usher", GroupsClaim: "groups", MatchGroupNames: true}); err != nil {
		t.Fatal(err)
	}
	st := w.st.Store
	v := idp.New(idp.Config{Now: w.clock.Now, Lookup: idp.LookupFunc(func(ctx context.Context) ([]idp.Trust, error) {
		is, err := st.AllIssuers(ctx)
		out := make([]idp.Trust, len(is))
		for i, t := range is {
			out[i] = idp.Trust{Tenant: t.Tenant, Issuer: t.Issuer, Audience: t.Audience, GroupsClaim: t.GroupsClaim, MatchGroupNames: t.MatchGroupNames}
		}
		return out, err
	})})
	var ext authz.ExternalVerifier = v
	for _, f := range wrap {
		ext = f(ext)
	}
	rules, err := authz.ParseRules("test", []byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	// Key and seat reads and seat listings go through the fault injector.
	a, err := authz.New(authz.Config{Rules: rules, Keys: w.st, Seats: w.st, SigningKeys: st, External: ext, SeatLister: w.st,
		Cache: authz.DefaultCacheConfig(), Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.a.Close()
	w.a = a
	t.Cleanup(a.Close)
	return x
}

func (x *idpWorld) sign(t testing.TB, k testidp.Key, sub string) string {
	t.Helper()
	c := x.p.Claims(sub, "api://usher", x.now)
	c["groups"] = []string{"editors"}
	return testidp.Sign(t, k, c, nil)
}

func (x *idpWorld) pool(t testing.TB, k testidp.Key, req func(string) *authz.Request, n int) []*authz.Request {
	t.Helper()
	out := make([]*authz.Request, n)
	for i := range out {
		out[i] = req(x.sign(t, k, fmt.Sprintf("user-%d", i)))
	}
	return out
}

// TestCheckCachedAllocations guards the hot path's allocations: a cached
// decision stays within 10 (the budget), for an API key, for
// usher's own token and for the session cookie.
func TestCheckCachedAllocations(t *testing.T) {
	w := newWorld(t)
	key := w.keyring(t)["acme"]
	tok := envoyLikeRequest("")
	delete(tok.Headers, "x-api-key")
	tok.Headers["authorization"] = "Bearer " + mintFor(t, key, w.clock.Now(), "alice", map[string]string{"proj1": "editors"})
	cw := newCookieWorld(t)
	for name, c := range map[string]struct {
		a *authz.Authorizer
		r *authz.Request
	}{
		"api key":        {w.a, envoyLikeRequest(w.keys["acme/ci"])},
		"usher token":    {w.a, tok},
		"session cookie": {cw.a, cookieRequest(t, cw)},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			if d := c.a.Check(ctx, c.r); !d.Allowed() {
				t.Fatalf("denied: %s", d.Reason)
			}
			allocs := testing.AllocsPerRun(1000, func() { c.a.Check(ctx, c.r) })
			if allocs > 10 {
				t.Errorf("cached decision: %.1f allocations, want at most 10", allocs)
			}
			// The cookie costs no allocation more than the API key: the
			// Cookie header without the session cookie, which sat between
			// two others, is built once (cookieJoins). Measured: 0 here,
			// 1 once in CI under -race on a loaded machine; rebuilding the
			// header per request costs 2 (and more per cookie), which this
			// bound refuses.
			if name == "session cookie" && allocs > 1 {
				t.Errorf("cached cookie decision: %.1f allocations, want at most 1", allocs)
			}
			t.Logf("cached decision: %.1f allocations", allocs)
		})
	}
}
