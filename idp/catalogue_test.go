package idp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
	"github.com/usher-dev/usher/idp"
	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/store"
)

// Rows of docs/security-catalogue.md on the Check path of IdP tokens: a
// provider that stalls (130), an issuer nobody trusts or a kid of another
// issuer (24), and a storm of cold starts (115).

// checkBy sends token to /me as Envoy would: with check_timeout's default
// deadline.
func (w *world) checkBy(t *testing.T, token string) authz.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), envoy.DefaultTimeout)
	defer cancel()
	return w.a.Check(ctx, &authz.Request{Method: "GET", Host: "api.example.test", Path: "/me",
		Headers: map[string]string{"authorization": "Bearer " + token}})
}

// stall holds the requests to path of p until release is called, or the
// test ends (before p's server closes). It returns their arrivals.
func stall(t *testing.T, p *testidp.Provider, path string) (arrivals <-chan struct{}, release func()) {
	t.Helper()
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return p.Stall(path, ch), release
}

// arrived waits for a stalled request to reach the provider.
func arrived(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-t.Context().Done():
		t.Fatalf("%s never reached the provider", what)
	}
}

// unavailableFast says d is the answer to a token whose provider cannot
// answer in time: 503, issuer_unavailable or timeout.
func unavailableFast(d authz.Decision) bool {
	return d.Status == 503 && (d.Reason == authz.ReasonIssuerUnavailable || d.Reason == authz.ReasonTimeout)
}

// TestStalledKeySetRefreshDoesNotHoldChecks (catalogue row 130): the key
// set is due for its refresh and the provider's key set endpoint hangs.
// Checks with check_timeout's default deadline answer: tokens signed with
// a known key are allowed with the keys already fetched, the first (which
// starts the refresh) and every later one alike, none queued behind the
// stalled fetch; a token naming a kid not in the set is refused 503, and
// the tokens after it are still allowed. The keys were fetched once, the
// refresh tried once.
func TestStalledKeySetRefreshDoesNotHoldChecks(t *testing.T) {
	w := newWorld(t, "memberOf")
	// A refresh interval within the cache TTLs, so that the trusts are
	// still cached and the refresh is all that is due.
	w.withVerifier(t, idp.Config{RefreshEvery: 30 * time.Second})
	noGroups := func(sub string) map[string]any { return w.claims(map[string]any{"sub": sub, "memberOf": nil}) }
	if d := w.checkBy(t, testidp.Sign(t, w.rsa, noGroups("warm"), nil)); d.Reason != authz.ReasonAllowed {
		t.Fatalf("warm-up: %s (%v)", d.Reason, d.Cause)
	}
	hits := w.idp.KeySetHits.Load()

	refresh, _ := stall(t, w.idp, testidp.KeySetPath)
	w.clock.Advance(30 * time.Second)
	if d := w.checkBy(t, testidp.Sign(t, w.rsa, noGroups("first"), nil)); d.Reason != authz.ReasonAllowed {
		t.Fatalf("known kid, refresh due, key set stalled: %d %s (%v); want allowed with the keys fetched before", d.Status, d.Reason, d.Cause)
	}
	arrived(t, refresh, "the refresh")
	unknown := testidp.NewRSAKey(t, "rsa-unpublished")
	for i, k := range []testidp.Key{w.ec, w.rsa, unknown, w.ec, w.rsa} {
		d := w.checkBy(t, testidp.Sign(t, k, noGroups(fmt.Sprintf("later-%d", i)), nil))
		switch {
		case k.ID == unknown.ID && !unavailableFast(d):
			t.Errorf("unknown kid while the key set stalls: %d %s (%v); want 503 issuer_unavailable or timeout", d.Status, d.Reason, d.Cause)
		case k.ID != unknown.ID && d.Reason != authz.ReasonAllowed:
			t.Errorf("check %d, known kid %s, while the refresh stalls: %d %s (%v); want allowed", i, k.ID, d.Status, d.Reason, d.Cause)
		}
	}
	if n := w.idp.KeySetHits.Load() - hits; n != 1 {
		t.Errorf("the key set was asked %d times while stalled; want 1 (one fetch in flight)", n)
	}
}

// TestStalledDiscoveryDoesNotHoldChecks (catalogue row 130): a second
// trusted provider's discovery hangs. Its tokens are refused 503 within
// check_timeout's default deadline, each of them, and tokens of the
// provider that answers are allowed meanwhile: nothing waits behind the
// stalled discovery but the tokens that need it.
// Catalogue row 72 (docs/catalogue-map.md).
func TestStalledDiscoveryDoesNotHoldChecks(t *testing.T) {
	w := newWorld(t, "memberOf")
	slowKey := testidp.NewRSAKey(t, "slow-1")
	slow := testidp.Start(t, slowKey)
	if _, err := w.st.AddIssuer(t.Context(), store.Issuer{Tenant: "globex", Issuer: slow.URL, Audience: "api://usher", GroupsClaim: "groups"}); err != nil {
		t.Fatal(err)
	}
	discovery, _ := stall(t, slow, testidp.DiscoveryPath)
	for i := range 3 {
		tok := testidp.Sign(t, slowKey, slow.Claims(fmt.Sprintf("s-%d", i), "api://usher", w.clock.Now()), nil)
		if d := w.checkBy(t, tok); !unavailableFast(d) {
			t.Errorf("token %d of the stalled provider: %d %s (%v); want 503 issuer_unavailable or timeout", i, d.Status, d.Reason, d.Cause)
		}
		if i == 0 {
			arrived(t, discovery, "discovery")
		}
		ok := testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": fmt.Sprintf("a-%d", i)}), nil)
		if d := w.checkBy(t, ok); d.Reason != authz.ReasonAllowed {
			t.Errorf("token %d of the provider that answers, while the other stalls: %d %s (%v)", i, d.Status, d.Reason, d.Cause)
		}
	}
	if n := slow.KeySetHits.Load(); n != 0 {
		t.Errorf("the stalled provider's key set was asked %d times before its discovery answered", n)
	}
}

// countingServer is a server the attacker runs: it counts every request.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestAttackerIssuerNeverFetched (catalogue row 24): a token whose iss
// names the attacker's server, or a near miss of the trusted issuer, is
// refused 401 issuer_unknown, and no request reaches the attacker (or the
// trusted provider): usher never fetches discovery or keys of an issuer no
// tenant trusts, whatever the token's headers point at.
// Catalogue row 21 (docs/catalogue-map.md).
func TestAttackerIssuerNeverFetched(t *testing.T) {
	w := newWorld(t, "memberOf")
	attacker, hits := countingServer(t)
	evil := testidp.NewRSAKey(t, w.rsa.ID) // the attacker's key, under a kid the trusted IdP uses
	tests := []struct {
		name   string
		iss    string
		header map[string]any
	}{
		{"attacker URL", attacker.URL, nil},
		{"attacker URL, jku to it", attacker.URL, map[string]any{"jku": attacker.URL + "/jwks"}},
		{"trusted issuer with a trailing slash", w.idp.URL + "/", nil},
		{"trusted issuer's host, attacker's path", w.idp.URL + "/evil", nil},
	}
	before := w.idp.DiscoveryHits.Load() + w.idp.KeySetHits.Load() + w.idp.OtherHits.Load()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := testidp.Sign(t, evil, w.claims(map[string]any{"iss": tt.iss}), tt.header)
			if d := w.check(t, "/me", tok); d.Status != 401 || d.Reason != authz.ReasonIssuerUnknown {
				t.Errorf("iss %s: %d %s (%v); want 401 issuer_unknown", tt.iss, d.Status, d.Reason, d.Cause)
			}
			if _, err := w.v.Verify(t.Context(), tok, tt.iss); err == nil {
				t.Errorf("the verifier accepted iss %s", tt.iss)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the attacker's server got %d requests; want none", n)
	}
	if n := w.idp.DiscoveryHits.Load() + w.idp.KeySetHits.Load() + w.idp.OtherHits.Load(); n != before {
		t.Errorf("the trusted provider got %d requests for tokens not its own; want none", n-before)
	}
}

// TestKidOfAnotherIssuerDoesNotVerify (catalogue row 24): two trusted
// providers, A and B, both already in use. A token with iss A whose kid
// only B publishes, signed with B's key, is refused 401 token_invalid: a
// kid is looked up only in the key set of the token's own issuer.
func TestKidOfAnotherIssuerDoesNotVerify(t *testing.T) {
	w := newWorld(t, "memberOf")
	bKey := testidp.NewRSAKey(t, "only-at-b")
	b := testidp.Start(t, bKey)
	if _, err := w.st.AddIssuer(t.Context(), store.Issuer{Tenant: "globex", Issuer: b.URL, Audience: "api://globex", GroupsClaim: "groups"}); err != nil {
		t.Fatal(err)
	}
	// Both providers' keys are fetched.
	if d := w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(nil), nil)); d.Reason != authz.ReasonAllowed {
		t.Fatalf("A's own token: %s (%v)", d.Reason, d.Cause)
	}
	if d := w.check(t, "/me", testidp.Sign(t, bKey, b.Claims("b-user", "api://globex", w.clock.Now()), nil)); d.Reason != authz.ReasonAllowed {
		t.Fatalf("B's own token: %s (%v)", d.Reason, d.Cause)
	}
	for _, aud := range []string{"api://usher", "api://globex"} {
		tok := testidp.Sign(t, bKey, w.claims(map[string]any{"aud": aud, "sub": "mallory"}), nil)
		if d := w.check(t, "/me", tok); d.Status != 401 || d.Reason != authz.ReasonTokenInvalid {
			t.Errorf("iss A, kid only B has, signed by B, aud %s: %d %s (%v); want 401 token_invalid", aud, d.Status, d.Reason, d.Cause)
		}
	}
}

// TestColdStartsShareOneFetch (catalogue row 115): many concurrent Checks
// reach a provider usher has never asked, one token many times or many
// tokens at once; discovery and the key set are held until every Check
// has started. The provider sees one discovery and one key set fetch, and
// one token is verified once.
func TestColdStartsShareOneFetch(t *testing.T) {
	const n = 32
	for _, same := range []bool{true, false} {
		name := map[bool]string{true: "one token", false: "distinct tokens"}[same]
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, "memberOf")
			discovery, releaseDiscovery := stall(t, w.idp, testidp.DiscoveryPath)
			keys, releaseKeys := stall(t, w.idp, testidp.KeySetPath)
			toks := make([]string, n)
			for i := range toks {
				sub := "cold"
				if !same {
					sub = fmt.Sprintf("cold-%d", i)
				}
				toks[i] = testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": sub}), nil)
			}
			loads := w.a.TokenCacheStats().Loads.Load()
			var started, done sync.WaitGroup
			reasons := make([]authz.Reason, n)
			for i := range toks {
				started.Add(1)
				done.Add(1)
				go func() {
					defer done.Done()
					started.Done()
					reasons[i] = w.check(t, "/me", toks[i]).Reason
				}()
			}
			started.Wait()
			arrived(t, discovery, "discovery")
			releaseDiscovery()
			arrived(t, keys, "the key set fetch")
			releaseKeys()
			done.Wait()
			for i, r := range reasons {
				if r != authz.ReasonAllowed {
					t.Errorf("check %d: %s", i, r)
				}
			}
			if d, k := w.idp.DiscoveryHits.Load(), w.idp.KeySetHits.Load(); d != 1 || k != 1 {
				t.Errorf("%d discoveries and %d key set fetches; want one of each", d, k)
			}
			if l := w.a.TokenCacheStats().Loads.Load() - loads; same && l != 1 {
				t.Errorf("one token verified %d times; want once", l)
			}
		})
	}
}
