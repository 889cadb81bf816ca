package idp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/idp"
	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/store"
)

// withVerifier rebuilds w's verifier with cfg (its Leeway and Now filled
// in, and its Lookup when unset) and an authorizer using it.
func (w *world) withVerifier(t *testing.T, cfg idp.Config) {
	t.Helper()
	if cfg.Lookup == nil {
		cfg.Lookup = lookup(w.st)
	}
	cfg.Leeway, cfg.Now = 30*time.Second, w.clock.Now
	w.v = idp.New(cfg)
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

// TestLastGoodKeysOutlastOutage holds the provider down (discovery and key
// set) for longer than every refresh interval: tokens with a known kid,
// cached or not, stay allowed until the bound after the last good fetch,
// and are refused 503 issuer_unavailable from that instant, with the IdP
// (not the store) named as the cause. When the provider answers again, its
// new key set replaces the last good one: a key withdrawn meanwhile stops
// verifying.
// Catalogue row 116 (docs/catalogue-map.md).
func TestLastGoodKeysOutlastOutage(t *testing.T) {
	tests := []struct {
		name      string
		staleMax  time.Duration
		wantBound time.Duration
	}{
		{"default bound", 0, idp.DefaultKeysStaleMax},
		{"configured bound", 3 * time.Hour, 3 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, "memberOf")
			w.withVerifier(t, idp.Config{KeysStaleMax: tt.staleMax})
			exp := map[string]any{"exp": w.clock.Now().Add(tt.wantBound + 2*time.Hour).Unix()}
			cached := testidp.Sign(t, w.rsa, w.claims(exp), nil)
			if d := w.check(t, "/me", cached); d.Reason != authz.ReasonAllowed {
				t.Fatalf("warm-up: %s", d.Reason)
			}
			fetched := w.clock.Now() // the key set was fetched by the warm-up
			w.idp.SetDown(true)
			hits := w.idp.KeySetHits.Load()
			step := tt.wantBound / 100
			for i := 1; i < 100; i++ {
				w.clock.Advance(step)
				fresh := testidp.Sign(t, w.ec, w.claims(map[string]any{"sub": "u" + time.Duration(i).String(), "exp": exp["exp"]}), nil)
				for name, tok := range map[string]string{"cached": cached, "uncached": fresh} {
					if d := w.check(t, "/me", tok); d.Reason != authz.ReasonAllowed {
						t.Fatalf("%s token %s into the outage: %s (%v)", name, w.clock.Now().Sub(fetched), d.Reason, d.Cause)
					}
				}
			}
			if w.idp.KeySetHits.Load() != hits {
				t.Errorf("the key set answered while down")
			}
			// One second before the bound, then at it.
			w.clock.Set(fetched.Add(tt.wantBound - time.Second))
			if d := w.check(t, "/me", cached); d.Reason != authz.ReasonAllowed {
				t.Fatalf("cached token a second before the bound: %s (%v)", d.Reason, d.Cause)
			}
			w.clock.Set(fetched.Add(tt.wantBound))
			uncached := testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": "late", "exp": exp["exp"]}), nil)
			for name, tok := range map[string]string{"cached": cached, "uncached": uncached} {
				d := w.check(t, "/me", tok)
				if d.Status != 503 || d.Reason != authz.ReasonIssuerUnavailable {
					t.Errorf("%s token at the bound: %d %s, want 503 issuer_unavailable", name, d.Status, d.Reason)
				}
				if d.Cause == nil || !strings.Contains(d.Cause.Error(), "identity provider "+w.idp.URL) || strings.Contains(d.Cause.Error(), "store") {
					t.Errorf("%s token at the bound: cause %v; want the IdP named, not the store", name, d.Cause)
				}
			}
			// The verifier itself refuses the keys, not only the cache above it.
			var te *authz.TokenError
			if _, err := w.v.Verify(t.Context(), uncached, w.idp.URL); err == nil || errors.As(err, &te) {
				t.Errorf("verifier at the bound: %v; want the keys unavailable", err)
			}
			// The provider is back, having withdrawn the RSA key.
			w.idp.SetKeys(w.ec)
			w.idp.SetDown(false)
			w.clock.Advance(30 * time.Second)
			if d := w.check(t, "/me", uncached); d.Reason != authz.ReasonTokenInvalid {
				t.Errorf("the withdrawn key once the key set answers: %s", d.Reason)
			}
			if d := w.check(t, "/me", testidp.Sign(t, w.ec, w.claims(map[string]any{"sub": "back"}), nil)); d.Reason != authz.ReasonAllowed {
				t.Errorf("a published key once the key set answers: %s (%v)", d.Reason, d.Cause)
			}
		})
	}
}

// TestIssuerChangeDuringOutageKeepsKeys: an issuer change (here another
// tenant trusting the same issuer) makes the verifier discover the issuer
// again; while the provider is down, the last good discovery and keys
// keep serving instead of being dropped.
// Catalogue row 116 (docs/catalogue-map.md).
func TestIssuerChangeDuringOutageKeepsKeys(t *testing.T) {
	w := newWorld(t, "memberOf")
	if d := w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(nil), nil)); d.Reason != authz.ReasonAllowed {
		t.Fatalf("warm-up: %s", d.Reason)
	}
	w.idp.SetDown(true)
	if _, err := w.st.AddIssuer(t.Context(), store.Issuer{Tenant: "globex", Issuer: w.idp.URL, Audience: "api://globex", GroupsClaim: "groups"}); err != nil {
		t.Fatal(err)
	}
	w.apply(t)
	for i := range 3 {
		w.clock.Advance(10 * time.Minute)
		if d := w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": "u" + string(rune('a'+i))}), nil)); d.Reason != authz.ReasonAllowed {
			t.Fatalf("known kid after an issuer change during the outage: %s (%v)", d.Reason, d.Cause)
		}
	}
	// Back up: discovery runs again and the keys are still used.
	w.idp.SetDown(false)
	w.clock.Advance(10 * time.Second)
	before := w.idp.DiscoveryHits.Load()
	if d := w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": "z"}), nil)); d.Reason != authz.ReasonAllowed {
		t.Fatalf("after the outage: %s (%v)", d.Reason, d.Cause)
	}
	if w.idp.DiscoveryHits.Load() != before+1 {
		t.Errorf("discovery ran %d times after the outage; want once", w.idp.DiscoveryHits.Load()-before)
	}
}

// TestStaleBoundShorterThanRefresh: a bound shorter than the refresh
// interval makes the keys be fetched again before it passes, so that a
// provider that answers never sees its tokens refused.
func TestStaleBoundShorterThanRefresh(t *testing.T) {
	w := newWorld(t, "memberOf")
	w.withVerifier(t, idp.Config{KeysStaleMax: 10 * time.Minute})
	for i := range 4 {
		tok := testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": "u" + string(rune('a'+i))}), nil)
		if d := w.check(t, "/me", tok); d.Reason != authz.ReasonAllowed {
			t.Fatalf("%s after the first fetch, provider up: %s (%v)", time.Duration(i)*15*time.Minute, d.Reason, d.Cause)
		}
		w.clock.Advance(15 * time.Minute)
	}
}
