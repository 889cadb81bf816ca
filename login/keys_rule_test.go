package login_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
)

// TestPersonalKeysSeatsShrink: when a person's seats shrink, every key of
// theirs carrying a lost seat is revoked (at their next login, and at the
// group re-check of a refresh), and Check refuses it; keys within the
// seats they keep go on working.
// Catalogue rows 42, 71.
func TestPersonalKeysSeatsShrink(t *testing.T) {
	t.Run("next login", func(t *testing.T) {
		h := newKeysHarness(t)
		c := cred{cookie: h.login(keyAlice)} // admin and dev
		all := h.create(c, map[string]any{"name": "all", "expires_in": "365d"})
		dev := h.create(c, map[string]any{"name": "dev", "seats": []string{"dev"}, "expires_in": "8760h"})
		if d := h.check(all.Key, "/ops/x"); d.Status != http.StatusOK {
			t.Fatalf("before: %d %s", d.Status, d.Reason)
		}
		fewer := keyAlice
		fewer.Groups = []string{"engineers"} // dev only
		h.login(fewer)
		if d := h.check(all.Key, "/me"); d.Status != http.StatusUnauthorized || d.Reason != authz.ReasonAPIKeyRevoked {
			t.Fatalf("key with the lost seat admin: %d %s, want 401 %s", d.Status, d.Reason, authz.ReasonAPIKeyRevoked)
		}
		if d := h.check(dev.Key, "/web/x"); d.Status != http.StatusOK {
			t.Fatalf("key within the kept seats: %d %s", d.Status, d.Reason)
		}
	})
	t.Run("group re-check on refresh", func(t *testing.T) {
		h := newKeysHarness(t)
		rt, at := h.keysFamily(keyAlice, []string{"admin", "dev"})
		c := cred{bearer: at}
		adm := h.create(c, map[string]any{"name": "adm", "seats": []string{"admin"}})
		dev := h.create(c, map[string]any{"name": "dev", "seats": []string{"dev"}})
		h.idp.setGroups(keyAlice.Sub, "engineers")
		h.clock.Advance(login.DefaultGroupsRefresh)
		decodeTokens(t, h.refresh(rt))
		if d := h.check(adm.Key, "/me"); d.Status != http.StatusUnauthorized || d.Reason != authz.ReasonAPIKeyRevoked {
			t.Fatalf("key with the lost seat: %d %s, want 401 %s", d.Status, d.Reason, authz.ReasonAPIKeyRevoked)
		}
		if d := h.check(dev.Key, "/web/x"); d.Status != http.StatusOK {
			t.Fatalf("key within the kept seats: %d %s", d.Status, d.Reason)
		}
	})
}

// keysFamily makes a refresh family of u with seats on the real store,
// holding a sealed IdP refresh token as a login that got one leaves it,
// and returns its refresh token and an access token from it.
func (h *keysHarness) keysFamily(u idpUser, seats []string) (rt, at string) {
	h.t.Helper()
	now := h.clock.Now()
	nh, err := authz.GenerateSessionHandle(tenant)
	if err != nil {
		h.t.Fatal(err)
	}
	sealed, err := h.seal.Seal([]byte(h.idp.giveRefresh(u)), []byte("login/session/"+nh.ID+"/idp_refresh"))
	if err != nil {
		h.t.Fatal(err)
	}
	s := authz.Session{
		ID: nh.ID, Tenant: tenant, Issuer: h.idp.URL, Subject: u.Sub, Email: strings.ToLower(u.Email), Seats: seats,
		Groups: u.Groups, Provider: "oidc", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(12 * time.Hour),
		GroupsCheckedAt: now, IDPRefresh: sealed,
	}
	if err := h.store.CreateSession(h.t.Context(), s); err != nil {
		h.t.Fatal(err)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	first := "ur_" + base64.RawURLEncoding.EncodeToString(b)
	if err := h.store.CreateRefreshToken(h.t.Context(), login.RefreshToken{
		Hash: authz.HashAPIKey(first), Family: s.ID, Tenant: tenant, CreatedAt: now, ExpiresAt: s.ExpiresAt,
	}); err != nil {
		h.t.Fatal(err)
	}
	tk := decodeTokens(h.t, h.refresh(first))
	return tk.RefreshToken, tk.AccessToken
}

// TestKeysPage: the page's forms need the session's CSRF token and our
// own site; the key is shown once; the page has the strict CSP.
// Catalogue row 38.
func TestKeysPage(t *testing.T) {
	h := newKeysHarness(t)
	if w := h.do(httptest.NewRequest(http.MethodGet, "/keys", nil)); w.Code != http.StatusFound ||
		!strings.HasPrefix(w.Header().Get("Location"), "/login?next=") {
		t.Fatalf("signed out: %d %s, want 302 to /login", w.Code, w.Header().Get("Location"))
	}
	alice := h.login(keyAlice)
	bob := h.login(keyBob)
	_, bobToken := h.page(bob)
	_, token := h.page(alice)
	if bobToken == token {
		t.Fatal("two sessions share a CSRF token")
	}
	post := func(target string, v url.Values, hdr ...string) *httptest.ResponseRecorder {
		r := form(target, v)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return h.do(r, alice)
	}
	create := url.Values{"name": {"ci"}, "expires_in": {"30d"}, "seat": {"dev"}}
	with := func(v url.Values, tok string) url.Values {
		out := url.Values{"csrf": {tok}}
		for k, vs := range v {
			out[k] = vs
		}
		return out
	}
	for name, w := range map[string]*httptest.ResponseRecorder{
		"no token":           post("/keys", create),
		"another's token":    post("/keys", with(create, bobToken)),
		"token twice":        post("/keys", url.Values{"csrf": {token, token}, "name": {"ci"}}),
		"cross-site request": post("/keys", with(create, token), "Sec-Fetch-Site", "cross-site"),
	} {
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "csrf") {
			t.Errorf("create, %s: %d, want 403 csrf", name, w.Code)
		}
	}
	if l, _ := h.list(cred{cookie: alice}); len(l.Keys) != 0 {
		t.Fatalf("a refused form created a key: %+v", l)
	}

	w := post("/keys", with(create, token))
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "form-action 'self';") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
	key := regexpKey.FindString(w.Body.String())
	if key == "" {
		t.Fatalf("the key is not shown:\n%s", w.Body)
	}
	if d := h.check(key, "/web/x"); d.Status != http.StatusOK {
		t.Fatalf("Check with the page's key: %d %s", d.Status, d.Reason)
	}
	again, _ := h.page(alice)
	if strings.Contains(again, key) || strings.Contains(again, "sk_") || !strings.Contains(again, ">ci<") {
		t.Fatal("the page shows the key a second time, or not its name")
	}
	l, _ := h.list(cred{cookie: alice})
	id := l.Keys[0].ID

	if w := post("/keys/"+id+"/revoke", url.Values{}); w.Code != http.StatusForbidden {
		t.Fatalf("revoke without a token: %d", w.Code)
	}
	if w := post("/keys/"+id+"/revoke", url.Values{"csrf": {bobToken}}); w.Code != http.StatusForbidden {
		t.Fatalf("revoke with another session's token: %d", w.Code)
	}
	if d := h.check(key, "/web/x"); d.Status != http.StatusOK {
		t.Fatalf("a refused revocation revoked: %d %s", d.Status, d.Reason)
	}
	if w := post("/keys/"+id+"/revoke", url.Values{"csrf": {token}}); w.Code != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if d := h.check(key, "/web/x"); d.Status != http.StatusUnauthorized {
		t.Fatalf("Check after the page revoked: %d %s", d.Status, d.Reason)
	}
	// Bob's token cannot revoke Alice's key through his own session either.
	r := form("/keys/"+id+"/revoke", url.Values{"csrf": {bobToken}})
	if w := h.do(r, bob); w.Code != http.StatusNotFound {
		t.Fatalf("bob revoking alice's key on the page: %d, want 404", w.Code)
	}
}

// TestPersonalKeysOlderSession: a session from before the person's seats
// shrank cannot mint a key with a lost seat, nor "all seats" including it.
func TestPersonalKeysOlderSession(t *testing.T) {
	h := newKeysHarness(t)
	old := cred{cookie: h.login(keyAlice)} // admin and dev
	h.clock.Advance(time.Minute)
	fewer := keyAlice
	fewer.Groups = []string{"engineers"} // dev only
	h.login(fewer)
	w := h.api(old, http.MethodPost, "/api/keys", map[string]any{"name": "adm", "seats": []string{"admin"}})
	if w.Code != http.StatusForbidden || errorCode(t, w) != "seat_not_held" {
		t.Fatalf("a lost seat through the older session: %d %s, want 403 seat_not_held", w.Code, w.Body)
	}
	if k := h.create(old, map[string]any{"name": "all"}); len(k.Seats) != 1 || k.Seats[0] != "dev" {
		t.Fatalf("all seats through the older session: %v, want [dev]", k.Seats)
	}
}
