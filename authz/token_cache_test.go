package authz_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/testidp"
)

// The token cache never answers a token as valid past its end (exp plus
// leeway, or its signing key's retirement) and never serves one stale.
// Each test shows the answer came from the cache: the token was not
// verified again.

// errIdPDown is what flakyIdP answers while the IdP is down.
var errIdPDown = errors.New("identity provider unreachable (injected)")

// flakyIdP wraps the real IdP verifier with an outage switch and counts
// verifications.
type flakyIdP struct {
	authz.ExternalVerifier
	down  atomic.Bool
	calls atomic.Int64
}

func (f *flakyIdP) wrap(v authz.ExternalVerifier) authz.ExternalVerifier {
	f.ExternalVerifier = v
	return f
}

func (f *flakyIdP) Verify(ctx context.Context, token, issuer string) (authz.ExternalToken, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return authz.ExternalToken{}, errIdPDown
	}
	return f.ExternalVerifier.Verify(ctx, token, issuer)
}

// verifications counts the token verifications an authorizer has made.
func verifications(w *world) uint64 { return w.a.TokenCacheStats().Loads.Load() }

// TestCheckIdPTokenCachedPastExpiryWhileIdPDown: an IdP token cached within
// cache.ttl but past its exp plus leeway is denied token_expired while the
// IdP is down, from the cache, without asking the IdP.
// Catalogue row 116 (docs/catalogue-map.md).
func TestCheckIdPTokenCachedPastExpiryWhileIdPDown(t *testing.T) {
	w := newWorld(t)
	idp := &flakyIdP{}
	x := newIdPWorld(t, w, idp.wrap)
	now := w.clock.Now()
	claims := x.p.Claims("bob", "api://usher", now)
	claims["exp"] = now.Add(20 * time.Second).Unix()
	r := get("api.example.test", "/me", "authorization", "Bearer "+testidp.Sign(t, x.rsa, claims, nil))
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("first use: %s", d.Reason)
	}

	idp.down.Store(true)
	end := now.Add(20*time.Second + authz.DefaultTokenConfig().Leeway)
	if end.Sub(now) >= authz.DefaultCacheConfig().TTL {
		t.Fatal("the token must end within cache.ttl, or nothing here comes from the cache")
	}
	w.clock.Set(end.Add(-time.Millisecond))
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Errorf("cached, just before exp+leeway, IdP down: %s", d.Reason)
	}
	w.clock.Set(end)
	if d := w.check(t, r); d.Status != 401 || d.Reason != authz.ReasonTokenExpired {
		t.Errorf("cached, at exp+leeway, IdP down: %d %s, want 401 token_expired", d.Status, d.Reason)
	}
	if n := idp.calls.Load(); n != 1 {
		t.Errorf("the IdP verifier was called %d times, want 1: the cache did not answer", n)
	}
}

// TestCheckIdPTokenNeverServedStale: once cache.ttl has passed, a token is
// verified again, and a failed verification denies with 503 however long
// cache.stale_max is.
func TestCheckIdPTokenNeverServedStale(t *testing.T) {
	w := newWorld(t)
	idp := &flakyIdP{}
	x := newIdPWorld(t, w, idp.wrap)
	r := get("api.example.test", "/me", "authorization", "Bearer "+x.sign(t, x.rsa, "bob"))
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("first use: %s", d.Reason)
	}
	idp.down.Store(true)
	w.clock.Advance(authz.DefaultCacheConfig().TTL)
	d := w.check(t, r)
	if d.Status != 503 || d.Reason != authz.ReasonIssuerUnavailable || !errors.Is(d.Cause, errIdPDown) {
		t.Errorf("past cache.ttl, IdP down: %d %s %v; want 503 issuer_unavailable, not the stale token", d.Status, d.Reason, d.Cause)
	}
	if n := idp.calls.Load(); n != 2 {
		t.Errorf("the IdP verifier was called %d times, want 2", n)
	}
}

// TestCheckTokenCachedPastKeyRetirement: usher's token, cached within
// cache.ttl, is denied at its signing key's retirement, from the cache.
func TestCheckTokenCachedPastKeyRetirement(t *testing.T) {
	w := newWorld(t)
	acme := w.keyring(t)["acme"]
	now := w.clock.Now()
	retire := 30 * time.Second
	if _, _, err := w.st.RotateSigningKey(t.Context(), "acme", retire); err != nil {
		t.Fatal(err)
	}
	r := get("api.example.test", "/me", "authorization", "Bearer "+mint(t, acme, now, time.Hour, nil))
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("within the retirement delay: %s", d.Reason)
	}
	verified := verifications(w)
	w.clock.Set(now.Add(retire - time.Millisecond))
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Errorf("cached, just before the key retires: %s", d.Reason)
	}
	w.clock.Set(now.Add(retire))
	if d := w.check(t, r); d.Status != 401 || d.Reason != authz.ReasonTokenInvalid {
		t.Errorf("cached, key retired: %d %s, want 401 token_invalid", d.Status, d.Reason)
	}
	if n := verifications(w); n != verified {
		t.Errorf("verified %d more times: the cache did not answer", n-verified)
	}
}
