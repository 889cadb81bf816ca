package authz_test

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/usher-dev/usher/authz"
)

func (w *cookieWorld) reason(t *testing.T, handle string) authz.Reason {
	t.Helper()
	return w.check(t, get("api.example.test", datasets, "cookie", "usher_session="+handle)).Reason
}

// TestSessionIdleExpiry: each use slides the idle expiry (on this server
// at once, and in the store at the next flush); a session left alone for
// the idle TTL is expired. Catalogue row 39.
func TestSessionIdleExpiry(t *testing.T) {
	w := newCookieWorld(t)
	h, id := w.login(t, "acme", "editors")
	step := 90 * time.Minute // less than the idle TTL, more than half of it
	for i := range 3 {
		w.clock.Advance(step)
		if got := w.reason(t, h); got != authz.ReasonAllowed {
			t.Fatalf("use %d after %s: %s, want allowed (the idle expiry slides)", i+1, step, got)
		}
	}
	if err := w.a.FlushUsage(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := w.ms.get(id).LastSeenAt, w.clock.Now(); !got.Equal(want) {
		t.Fatalf("stored last seen %s, want %s", got, want)
	}
	// Another server (a fresh cache) reads the slid time from the store.
	w.a.Apply(authz.Change{Kind: authz.ChangeSession, Tenant: "acme", Key: id})
	w.clock.Advance(step)
	if got := w.reason(t, h); got != authz.ReasonAllowed {
		t.Fatalf("after a reload: %s, want allowed", got)
	}
	w.clock.Advance(authz.DefaultIdleTTL)
	if got := w.reason(t, h); got != authz.ReasonSessionExpired {
		t.Fatalf("idle for the idle TTL: %s, want session_expired", got)
	}
	// A denied use slides nothing.
	w.clock.Advance(time.Second)
	if got := w.reason(t, h); got != authz.ReasonSessionExpired {
		t.Fatalf("after the denial: %s, want session_expired", got)
	}
}

// TestSessionIdleTTLConfigured: the idle TTL is the config's.
func TestSessionIdleTTLConfigured(t *testing.T) {
	w := newCookieWorld(t, func(c *authz.Config) { c.Cookie.IdleTTL = 10 * time.Minute })
	h, _ := w.login(t, "acme", "editors")
	w.clock.Advance(9 * time.Minute)
	if got := w.reason(t, h); got != authz.ReasonAllowed {
		t.Fatalf("after 9m: %s", got)
	}
	w.clock.Advance(10 * time.Minute)
	if got := w.reason(t, h); got != authz.ReasonSessionExpired {
		t.Fatalf("idle 10m: %s, want session_expired", got)
	}
}

// TestSessionAbsoluteExpiry: however busy, a session ends at its absolute
// expiry, also while cached. Catalogue row 39.
func TestSessionAbsoluteExpiry(t *testing.T) {
	w := newCookieWorld(t)
	h, id := w.login(t, "acme", "editors")
	w.ms.edit(id, func(s *authz.Session) { s.ExpiresAt = w.clock.Now().Add(3*time.Hour + 30*time.Second) })
	for i := range 3 {
		w.clock.Advance(time.Hour)
		if got := w.reason(t, h); got != authz.ReasonAllowed {
			t.Fatalf("hour %d: %s", i+1, got)
		}
	}
	w.clock.Advance(30 * time.Second) // the cache entry is fresh: no reload
	if got := w.reason(t, h); got != authz.ReasonSessionExpired {
		t.Fatalf("at the absolute expiry: %s, want session_expired", got)
	}
}

// TestSessionRevokedThroughChange: a cached session keeps working until
// its change arrives; then it is refused at once. Catalogue rows 32, 121.
func TestSessionRevokedThroughChange(t *testing.T) {
	w := newCookieWorld(t)
	h, id := w.login(t, "acme", "editors")
	if got := w.reason(t, h); got != authz.ReasonAllowed {
		t.Fatal(got)
	}
	w.ms.edit(id, func(s *authz.Session) { s.RevokedAt = w.clock.Now() })
	if got := w.reason(t, h); got != authz.ReasonAllowed {
		t.Fatalf("before the change: %s, want the cached session allowed", got)
	}
	w.a.Apply(authz.Change{Kind: authz.ChangeSession, Tenant: "acme", Key: id})
	if got := w.reason(t, h); got != authz.ReasonSessionRevoked {
		t.Fatalf("after the change: %s, want session_revoked", got)
	}
}

// TestSessionNegativeCache: an unknown session is read once per negative
// TTL, however often it is presented; a session created meanwhile is seen
// once that passes (or at once with its change).
func TestSessionNegativeCache(t *testing.T) {
	w := newCookieWorld(t)
	n, err := authz.GenerateSessionHandle("acme")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if got := w.reason(t, n.Handle); got != authz.ReasonSessionInvalid {
			t.Fatalf("unknown session: %s", got)
		}
	}
	if got := w.ms.loads.Load(); got != 1 {
		t.Fatalf("%d store reads for one unknown session, want 1", got)
	}
	w.clock.Advance(authz.DefaultCacheConfig().NegativeTTL)
	w.reason(t, n.Handle)
	if got := w.ms.loads.Load(); got != 2 {
		t.Fatalf("%d store reads after the negative TTL, want 2", got)
	}
	now := w.clock.Now()
	w.ms.edit(n.ID, func(s *authz.Session) {
		*s = authz.Session{ID: n.ID, Tenant: "acme", Subject: "s", Seats: []string{"editors"}, Hash: n.Hash,
			CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
	})
	w.a.Apply(authz.Change{Kind: authz.ChangeSession, Tenant: "acme", Key: n.ID})
	if got := w.reason(t, n.Handle); got != authz.ReasonAllowed {
		t.Fatalf("created: %s, want allowed", got)
	}
	for range 20 {
		w.reason(t, n.Handle)
	}
	if got := w.ms.loads.Load(); got != 3 {
		t.Fatalf("%d store reads, want 3 (a cached session is read once)", got)
	}
}

// TestTokenSessionRevoked: usher's access token minted from a session
// (sid) stops when the session is revoked or gone, at the change.
// Catalogue row 40.
// Catalogue row 121.
func TestTokenSessionRevoked(t *testing.T) {
	w := newCookieWorld(t)
	key := w.keyring(t)["acme"]
	_, id := w.login(t, "acme", "editors")
	_, otherTenantID := w.login(t, "acme", "editors")
	w.ms.edit(otherTenantID, func(s *authz.Session) { s.Tenant = "globex" })
	mintSID := func(sid string) *authz.Request {
		tok, err := authz.MintAccessToken(authz.DefaultTokenConfig(), key, authz.AccessClaims{
			RegisteredClaims: jwt.RegisteredClaims{Subject: "alice-sub"}, HashPerm: map[string]string{"proj1": "editors"}, SessionID: sid,
		}, w.clock.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return get("api.example.test", datasets, "authorization", "Bearer "+tok)
	}
	live := mintSID(id)
	for _, tt := range []struct {
		name string
		r    *authz.Request
		want authz.Reason
	}{
		{"live session", live, authz.ReasonAllowed},
		{"no sid", mintSID(""), authz.ReasonAllowed},
		{"unknown session", mintSID("aaaaaaaaaaaaaaaa"), authz.ReasonSessionRevoked},
		{"another tenant's session", mintSID(otherTenantID), authz.ReasonSessionRevoked},
		{"sid that is no session id", mintSID("../x"), authz.ReasonTokenClaimsInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if d := w.check(t, tt.r); d.Reason != tt.want {
				t.Errorf("%d %s, want %s", d.Status, d.Reason, tt.want)
			}
		})
	}
	w.ms.edit(id, func(s *authz.Session) { s.RevokedAt = w.clock.Now() })
	w.a.Apply(authz.Change{Kind: authz.ChangeSession, Tenant: "acme", Key: id})
	if d := w.check(t, live); d.Status != 401 || d.Reason != authz.ReasonSessionRevoked {
		t.Errorf("after revocation: %d %s, want 401 session_revoked", d.Status, d.Reason)
	}
	// Without session lookups (no login app), a sid is not checked.
	plain := newWorld(t)
	plainKey := plain.keyring(t)["acme"]
	tok, err := authz.MintAccessToken(authz.DefaultTokenConfig(), plainKey, authz.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: "alice-sub"}, HashPerm: map[string]string{"proj1": "editors"}, SessionID: id,
	}, plain.clock.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if d := plain.check(t, get("api.example.test", datasets, "authorization", "Bearer "+tok)); !d.Allowed() {
		t.Errorf("no sessions configured: %s, want allowed", d.Reason)
	}
}
