package login_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
)

type tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

func jsonPost(target string, body any) *http.Request {
	b, _ := json.Marshal(body)
	r := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func (h *harness) refresh(rt string) *httptest.ResponseRecorder {
	return h.do(jsonPost("/auth/oidc/refresh", map[string]string{"refresh_token": rt}))
}

func decodeTokens(t *testing.T, w *httptest.ResponseRecorder) tokens {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("token endpoint %d %s", w.Code, w.Body)
	}
	var tk tokens
	if err := json.Unmarshal(w.Body.Bytes(), &tk); err != nil {
		t.Fatal(err)
	}
	if tk.TokenType != "Bearer" || tk.AccessToken == "" || tk.RefreshToken == "" || tk.ExpiresIn != int64(login.DefaultAccessTokenTTL/time.Second) {
		t.Fatalf("tokens %+v", tk)
	}
	return tk
}

// accessClaims verifies an access token with the tenant's key.
func (h *harness) accessClaims(t *testing.T, at string) authz.AccessClaims {
	t.Helper()
	var c authz.AccessClaims
	tok, err := jwt.ParseWithClaims(at, &c, func(*jwt.Token) (any, error) { return h.st.key.Secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(h.clock.Now))
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	if tok.Header["typ"] != "at+jwt" || tok.Header["kid"] != h.st.key.ID {
		t.Errorf("header %v", tok.Header)
	}
	return c
}

// validate exchanges a fresh ID token of u for usher's tokens.
func (h *harness) validate(u idpUser) *httptest.ResponseRecorder {
	return h.do(jsonPost("/auth/oidc/validate", map[string]string{"id_token": h.idp.idToken(u, "")}))
}

// family makes a refresh family with a sealed IdP refresh token, as a
// login that got one leaves it, and returns its first refresh token.
func (h *harness) family(u idpUser) (string, authz.Session) {
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
		ID: nh.ID, Tenant: tenant, Issuer: h.idp.URL, Subject: u.Sub, Email: u.Email, Seats: []string{"dev"},
		Groups: u.Groups, Provider: "oidc", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(12 * time.Hour),
		GroupsCheckedAt: now, IDPRefresh: sealed,
	}
	if err := h.st.CreateSession(h.t.Context(), s); err != nil {
		h.t.Fatal(err)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	rt := "ur_" + base64.RawURLEncoding.EncodeToString(b)
	if err := h.st.CreateRefreshToken(h.t.Context(), login.RefreshToken{
		Hash: authz.HashAPIKey(rt), Family: s.ID, Tenant: tenant, CreatedAt: now, ExpiresAt: s.ExpiresAt,
	}); err != nil {
		h.t.Fatal(err)
	}
	return rt, s
}

// TestValidate: an ID token exchanged for usher's tokens, once.
// Catalogue rows 23, 30.
func TestValidate(t *testing.T) {
	h := newHarness(t)
	tk := decodeTokens(t, h.validate(alice))
	c := h.accessClaims(t, tk.AccessToken)
	ss := h.st.snapshot()
	if len(ss) != 1 || ss[0].Hash != (authz.KeyHash{}) {
		t.Fatalf("want one refresh family without a cookie handle, got %+v", ss)
	}
	if c.Subject != alice.Sub || c.TenantID != tenant || c.SessionID != ss[0].ID || !c.IsSSO || c.Email != alice.Email {
		t.Errorf("claims %+v", c)
	}
	if diff := cmp.Diff(map[string]string{"web": "dev"}, c.HashPerm); diff != "" {
		t.Errorf("hash_perm (-want +got):\n%s", diff)
	}
	tests := []struct {
		name   string
		req    *http.Request
		status int
		reason string
	}{
		{"replayed", nil, 400, "id_token_replayed"},
		{"missing", jsonPost("/auth/oidc/validate", map[string]string{}), 400, "request_invalid"},
		{"foreign issuer", jsonPost("/auth/oidc/validate", map[string]string{"id_token": "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2V2aWwudGVzdCJ9."}), 400, "issuer_unknown"},
		{"wrong aud", nil, 400, "id_token_invalid"},
		{"too old", nil, 400, "id_token_invalid"},
		{"unverified email", nil, 403, "email_unverified"},
	}
	h.clock.Advance(time.Second) // another ID token than the one above
	first := h.idp.idToken(alice, "")
	_ = decodeTokens(t, h.do(jsonPost("/auth/oidc/validate", map[string]string{"id_token": first})))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req
			switch tt.name {
			case "replayed":
				r = jsonPost("/auth/oidc/validate", map[string]string{"id_token": first})
			case "wrong aud":
				u := alice
				u.Shape = func(c map[string]any) { c["aud"] = "another-client" }
				r = jsonPost("/auth/oidc/validate", map[string]string{"id_token": h.idp.idToken(u, "")})
			case "too old":
				u := alice
				u.Shape = func(c map[string]any) { c["iat"] = h.clock.Now().Add(-time.Hour).Unix() }
				r = jsonPost("/auth/oidc/validate", map[string]string{"id_token": h.idp.idToken(u, "")})
			case "unverified email":
				u := alice
				u.EmailVerified = false
				r = jsonPost("/auth/oidc/validate", map[string]string{"id_token": h.idp.idToken(u, "")})
			}
			w := h.do(r)
			if w.Code != tt.status || reason(t, w) != tt.reason {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Body, tt.status, tt.reason)
			}
		})
	}
}

// TestRefreshRotation: each refresh consumes its token and hands out a
// new pair of the same family; a form body works as JSON does.
// Catalogue row 40.
func TestRefreshRotation(t *testing.T) {
	h := newHarness(t)
	t1 := decodeTokens(t, h.validate(alice))
	t2 := decodeTokens(t, h.refresh(t1.RefreshToken))
	if t2.RefreshToken == t1.RefreshToken {
		t.Fatal("the refresh token was not rotated")
	}
	w := h.do(form("/auth/oidc/refresh", url.Values{"refresh_token": {t2.RefreshToken}}))
	t3 := decodeTokens(t, w)
	c1, c3 := h.accessClaims(t, t1.AccessToken), h.accessClaims(t, t3.AccessToken)
	if c1.SessionID != c3.SessionID {
		t.Errorf("sid changed across rotation: %s, %s", c1.SessionID, c3.SessionID)
	}
	for _, tt := range []struct{ name, rt, reason string }{
		{"unknown", "ur_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)), "refresh_token_invalid"},
		{"malformed", "not-a-token", "refresh_token_invalid"},
		{"access token as refresh token", t3.AccessToken, "refresh_token_invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := h.refresh(tt.rt)
			var b map[string]string
			_ = json.Unmarshal(w.Body.Bytes(), &b)
			if w.Code != 400 || b["error"] != "invalid_grant" || b["reason"] != tt.reason {
				t.Fatalf("%d %s, want 400 invalid_grant %s", w.Code, w.Body, tt.reason)
			}
		})
	}
}

// TestRefreshReuse: a consumed token presented again within the grace
// window succeeds (two tabs, a retry); after it, the whole family is
// revoked. Catalogue rows 40, 41.
func TestRefreshReuse(t *testing.T) {
	t.Run("within grace both succeed", func(t *testing.T) {
		h := newHarness(t)
		t1 := decodeTokens(t, h.validate(alice))
		a := decodeTokens(t, h.refresh(t1.RefreshToken))
		h.clock.Advance(login.DefaultRefreshReuseGrace)
		b := decodeTokens(t, h.refresh(t1.RefreshToken))
		if len(h.st.revoked) != 0 {
			t.Fatal("an honest race revoked the family")
		}
		decodeTokens(t, h.refresh(a.RefreshToken))
		decodeTokens(t, h.refresh(b.RefreshToken))
	})
	t.Run("after grace the family is revoked", func(t *testing.T) {
		h := newHarness(t)
		t1 := decodeTokens(t, h.validate(alice))
		t2 := decodeTokens(t, h.refresh(t1.RefreshToken))
		h.clock.Advance(login.DefaultRefreshReuseGrace + time.Second)
		w := h.refresh(t1.RefreshToken)
		if w.Code != 400 || reason(t, w) != "refresh_token_reused" {
			t.Fatalf("reuse after grace: %d %s", w.Code, w.Body)
		}
		sid := h.accessClaims(t, t2.AccessToken).SessionID
		if !h.st.isRevoked(sid) {
			t.Fatal("the family was not revoked")
		}
		if w := h.refresh(t2.RefreshToken); w.Code != 400 || reason(t, w) != "session_revoked" {
			t.Fatalf("the successor after revocation: %d %s", w.Code, w.Body)
		}
	})
	t.Run("concurrent honest refreshes", func(t *testing.T) {
		h := newHarness(t)
		t1 := decodeTokens(t, h.validate(alice))
		const n = 8
		var wg sync.WaitGroup
		codes := make([]int, n)
		for i := range n {
			wg.Go(func() { codes[i] = h.refresh(t1.RefreshToken).Code })
		}
		wg.Wait()
		for i, c := range codes {
			if c != http.StatusOK {
				t.Errorf("refresh %d: %d", i, c)
			}
		}
		if len(h.st.revoked) != 0 {
			t.Error("concurrent honest refreshes revoked the family")
		}
	})
}

// TestRefreshGroups: the IdP is asked again after GroupsRefresh; new
// groups give new seats; refusal or lost access ends the family.
// Catalogue rows 42, 71.
func TestRefreshGroups(t *testing.T) {
	t.Run("not before groups_refresh", func(t *testing.T) {
		h := newHarness(t)
		rt, _ := h.family(alice)
		h.clock.Advance(login.DefaultGroupsRefresh - time.Second)
		decodeTokens(t, h.refresh(rt))
		if h.idp.tokenHit != 0 {
			t.Errorf("the IdP was asked %d times before groups_refresh", h.idp.tokenHit)
		}
	})
	t.Run("new groups, new seats", func(t *testing.T) {
		h := newHarness(t)
		rt, s := h.family(alice)
		h.idp.setGroups(alice.Sub, "ops")
		h.clock.Advance(login.DefaultGroupsRefresh)
		tk := decodeTokens(t, h.refresh(rt))
		if diff := cmp.Diff(map[string]string{"*": "admin"}, h.accessClaims(t, tk.AccessToken).HashPerm); diff != "" {
			t.Errorf("hash_perm (-want +got):\n%s", diff)
		}
		got, _ := h.st.Session(t.Context(), s.ID)
		if diff := cmp.Diff([]string{"admin"}, got.Seats); diff != "" || got.IDPRefresh == s.IDPRefresh || !got.GroupsCheckedAt.Equal(h.clock.Now()) {
			t.Errorf("session after refresh: seats %v, IdP token re-sealed %v, checked %v", got.Seats, got.IDPRefresh != s.IDPRefresh, got.GroupsCheckedAt)
		}
	})
	t.Run("IdP refuses: family ends", func(t *testing.T) {
		h := newHarness(t)
		rt, s := h.family(alice)
		h.idp.setRefuse(true)
		h.clock.Advance(login.DefaultGroupsRefresh)
		w := h.refresh(rt)
		if w.Code != 400 || reason(t, w) != "idp_refresh_refused" {
			t.Fatalf("%d %s, want 400 idp_refresh_refused", w.Code, w.Body)
		}
		if !h.st.isRevoked(s.ID) {
			t.Fatal("the family was not revoked")
		}
	})
	t.Run("access lost: family ends", func(t *testing.T) {
		h := newHarness(t, func(c *login.Config) { c.AllowAllUsers = false })
		rt, s := h.family(alice)
		h.idp.setGroups(alice.Sub, "nothing-mapped")
		h.clock.Advance(login.DefaultGroupsRefresh)
		w := h.refresh(rt)
		if w.Code != 400 || reason(t, w) != "access_revoked" || !h.st.isRevoked(s.ID) {
			t.Fatalf("%d %s, want 400 access_revoked and the family revoked", w.Code, w.Body)
		}
	})
}

// TestHashPerm: one seat per space, the widest grant winning.
func TestHashPerm(t *testing.T) {
	seats := []authz.Seat{
		{Name: "reader", Grants: []authz.Grant{{Space: "web", Permissions: []string{"read"}}, {Space: "docs", Permissions: []string{"read"}}}},
		{Name: "writer", Grants: []authz.Grant{{Space: "web", Permissions: []string{"read", "write"}}}},
		{Name: "owner", Grants: []authz.Grant{{Space: "docs", Permissions: []string{"*"}}}},
		{Name: "all", Grants: []authz.Grant{{Space: "*", Permissions: []string{"read"}}}},
	}
	tests := []struct {
		name  string
		seats []string
		want  map[string]string
	}{
		{"none", nil, map[string]string{}},
		{"more permissions win", []string{"reader", "writer"}, map[string]string{"web": "writer", "docs": "reader"}},
		{"a * permission wins", []string{"owner", "reader"}, map[string]string{"web": "reader", "docs": "owner"}},
		{"every space", []string{"all", "writer"}, map[string]string{"*": "all", "web": "writer"}},
		{"unknown seat ignored", []string{"ghost"}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, login.HashPerm(seats, tt.seats)); diff != "" {
				t.Errorf("hash_perm (-want +got):\n%s", diff)
			}
		})
	}
}
