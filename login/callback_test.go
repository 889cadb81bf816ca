package login_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/login"
)

// TestCallbackFlowState covers the flow cookie and state: missing, wrong,
// replayed, tampered, expired, absent. Catalogue rows 31, 49, 50.
// Catalogue row 68 (the IdP's error reflected nowhere).
func TestCallbackFlowState(t *testing.T) {
	tests := []struct {
		name   string
		mangle func(h *harness, fc *http.Cookie, q url.Values) (*http.Cookie, url.Values)
		status int
		reason string
	}{
		{"ok", func(_ *harness, fc *http.Cookie, q url.Values) (*http.Cookie, url.Values) { return fc, q }, http.StatusFound, ""},
		{"state missing", func(_ *harness, fc *http.Cookie, q url.Values) (*http.Cookie, url.Values) {
			q.Del("state")
			return fc, q
		}, 400, "state_missing"},
		{"state wrong", func(_ *harness, fc *http.Cookie, q url.Values) (*http.Cookie, url.Values) {
			q.Set("state", "another-browser-state")
			return fc, q
		}, 400, "state_mismatch"},
		{"state twice", func(_ *harness, fc *http.Cookie, q url.Values) (*http.Cookie, url.Values) {
			q.Add("state", q.Get("state"))
			return fc, q
		}, 400, "state_mismatch"},
		{"flow cookie absent", func(_ *harness, _ *http.Cookie, q url.Values) (*http.Cookie, url.Values) { return nil, q }, 400, "flow_missing"},
		{"flow cookie payload tampered", func(_ *harness, fc *http.Cookie, q url.Values) (*http.Cookie, url.Values) {
			p, mac, _ := strings.Cut(fc.Value, ".")
			b, _ := base64.RawURLEncoding.DecodeString(p)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			m["nx"] = "https://evil.test"
			b, _ = json.Marshal(m)
			return &http.Cookie{Name: fc.Name, Value: base64.RawURLEncoding.EncodeToString(b) + "." + mac}, q
		}, 400, "flow_invalid"},
		{"flow cookie MAC flipped", func(_ *harness, fc *http.Cookie, q url.Values) (*http.Cookie, url.Values) {
			v := []byte(fc.Value)
			if v[len(v)-2] == 'A' {
				v[len(v)-2] = 'B'
			} else {
				v[len(v)-2] = 'A'
			}
			return &http.Cookie{Name: fc.Name, Value: string(v)}, q
		}, 400, "flow_invalid"},
		{"flow cookie truncated", func(_ *harness, fc *http.Cookie, q url.Values) (*http.Cookie, url.Values) {
			return &http.Cookie{Name: fc.Name, Value: fc.Value[:len(fc.Value)/2]}, q
		}, 400, "flow_invalid"},
		{"flow cookie expired", func(h *harness, fc *http.Cookie, q url.Values) (*http.Cookie, url.Values) {
			h.clock.Advance(10*time.Minute + time.Second)
			return fc, q
		}, 400, "flow_expired"},
		{"IdP error reflected nowhere", func(_ *harness, fc *http.Cookie, q url.Values) (*http.Cookie, url.Values) {
			q.Del("code")
			q.Set("error", "access_denied")
			q.Set("error_description", "<script>alert(1)</script>")
			return fc, q
		}, 400, "idp_error"},
		{"code missing", func(_ *harness, fc *http.Cookie, q url.Values) (*http.Cookie, url.Values) {
			q.Del("code")
			return fc, q
		}, 400, "code_missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			fc, au := h.start("oidc", "/app")
			_, q := h.idp.issueCode(t, au, alice)
			fc, q = tt.mangle(h, fc, q)
			w := h.callback(q, fc)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.reason != "" {
				if got := reason(t, w); got != tt.reason {
					t.Errorf("reason %q, want %q", got, tt.reason)
				}
				if cookieNamed(w, login.DefaultCookieName) != nil {
					t.Error("a refused callback set a session cookie")
				}
				if strings.Contains(w.Body.String(), "<script>") {
					t.Error("the answer reflects the IdP's error_description")
				}
				if len(h.st.snapshot()) != 0 {
					t.Error("a refused callback created a session")
				}
			}
		})
	}
}

// TestCallbackReplay: a callback used twice (the same flow cookie and
// state), and a code injected into another login. Catalogue rows 50, 51.
// Catalogue row 66 (the state is consumed: a replayed callback is refused).
func TestCallbackReplay(t *testing.T) {
	t.Run("flow replayed", func(t *testing.T) {
		h := newHarness(t)
		fc, au := h.start("oidc", "/")
		_, q := h.idp.issueCode(t, au, alice)
		if w := h.callback(q, fc); w.Code != http.StatusFound {
			t.Fatalf("first callback: %d %s", w.Code, w.Body)
		}
		w := h.callback(q, fc)
		if w.Code != 400 || reason(t, w) != "flow_replayed" {
			t.Fatalf("replay: %d %s, want 400 flow_replayed", w.Code, w.Body)
		}
	})
	t.Run("code replayed in another login", func(t *testing.T) {
		h := newHarness(t)
		fc, au := h.start("oidc", "/")
		code, q := h.idp.issueCode(t, au, alice)
		if w := h.callback(q, fc); w.Code != http.StatusFound {
			t.Fatalf("first callback: %d %s", w.Code, w.Body)
		}
		// The attacker starts their own login and delivers the victim's
		// code to it.
		fc2, au2 := h.start("oidc", "/")
		q2 := url.Values{"code": {code}, "state": {au2.Query().Get("state")}, "iss": {h.idp.URL}}
		w := h.callback(q2, fc2)
		if w.Code != 400 || reason(t, w) != "code_replayed" {
			t.Fatalf("code replay: %d %s, want 400 code_replayed", w.Code, w.Body)
		}
	})
	t.Run("code of another login (PKCE)", func(t *testing.T) {
		h := newHarness(t)
		_, au := h.start("oidc", "/")
		code, _ := h.idp.issueCode(t, au, alice)
		fc2, au2 := h.start("oidc", "/")
		q2 := url.Values{"code": {code}, "state": {au2.Query().Get("state")}, "iss": {h.idp.URL}}
		w := h.callback(q2, fc2)
		if w.Code != 400 || reason(t, w) != "code_exchange_failed" {
			t.Fatalf("injected code: %d %s, want 400 code_exchange_failed", w.Code, w.Body)
		}
	})
}

// TestCallbackMixUp: a flow started at one provider and finished by
// another. Catalogue row 56.
func TestCallbackMixUp(t *testing.T) {
	newTwo := func(t *testing.T) (*harness, *fakeIdP) {
		h := newHarness(t)
		other := startFakeIdP(t, h.clock.Now)
		g, err := login.NewOIDC(login.OIDCConfig{
			Type: "google", Tenant: tenant, Name: "Google", IssuerURL: other.URL, ClientID: other.ClientID,
			ClientSecret: other.Secret, RedirectURL: loginURL + login.CallbackPath, Now: h.clock.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		h.extra = append(h.extra, g)
		return h, other
	}
	t.Run("iss of another provider", func(t *testing.T) {
		h, other := newTwo(t)
		// The person starts at "google" (other); an attacker delivers a
		// response of the oidc provider to the callback.
		fc, au := h.start("google", "/")
		_, aq := h.idp.issueCode(t, au, alice) // code at the wrong IdP
		aq.Set("iss", h.idp.URL)
		w := h.callback(aq, fc)
		if w.Code != 400 || reason(t, w) != "issuer_mismatch" {
			t.Fatalf("%d %s, want 400 issuer_mismatch", w.Code, w.Body)
		}
		if other.tokenHit != 0 || h.idp.tokenHit != 0 {
			t.Error("a token endpoint was called for a mixed-up response")
		}
	})
	t.Run("no iss: the code goes to the starting provider only", func(t *testing.T) {
		h, other := newTwo(t)
		fc, au := h.start("google", "/")
		_, aq := h.idp.issueCode(t, au, alice)
		aq.Del("iss")
		w := h.callback(aq, fc)
		if w.Code != 400 || reason(t, w) != "code_exchange_failed" {
			t.Fatalf("%d %s, want 400 code_exchange_failed", w.Code, w.Body)
		}
		if h.idp.tokenHit != 0 || other.tokenHit == 0 {
			t.Errorf("token endpoint hits: oidc %d google %d, want none at oidc", h.idp.tokenHit, other.tokenHit)
		}
	})
	t.Run("iss required by discovery but absent", func(t *testing.T) {
		h := newHarness(t)
		h.idp.IssParam = true
		fc, au := h.start("oidc", "/")
		_, q := h.idp.issueCode(t, au, alice)
		q.Del("iss")
		w := h.callback(q, fc)
		if w.Code != 400 || reason(t, w) != "issuer_missing" {
			t.Fatalf("%d %s, want 400 issuer_missing", w.Code, w.Body)
		}
	})
}

// TestCallbackIDToken: ID tokens no honest IdP sends. Catalogue rows 14,
// 53, 54, 60.
func TestCallbackIDToken(t *testing.T) {
	otherKey := testidp.NewRSAKey(t, "k1")
	tests := []struct {
		name   string
		user   func(u idpUser) idpUser
		status int
		reason string
	}{
		{"bad signature", func(u idpUser) idpUser {
			u.Raw = func(c map[string]any) string { return testidp.Sign(t, otherKey, c, nil) }
			return u
		}, 401, "id_token_invalid"},
		{"alg none", func(u idpUser) idpUser {
			u.Raw = func(c map[string]any) string {
				b, _ := json.Marshal(c)
				return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
					base64.RawURLEncoding.EncodeToString(b) + "."
			}
			return u
		}, 401, "id_token_invalid"},
		{"another iss", func(u idpUser) idpUser {
			u.Shape = func(c map[string]any) { c["iss"] = "https://evil.test" }
			return u
		}, 401, "id_token_invalid"},
		{"another aud", func(u idpUser) idpUser {
			u.Shape = func(c map[string]any) { c["aud"] = "another-client" }
			return u
		}, 401, "id_token_invalid"},
		{"several aud without azp", func(u idpUser) idpUser {
			u.Shape = func(c map[string]any) { c["aud"] = []string{"usher-web", "another-client"} }
			return u
		}, 401, "id_token_invalid"},
		{"several aud, azp another client", func(u idpUser) idpUser {
			u.Shape = func(c map[string]any) {
				c["aud"] = []string{"usher-web", "another-client"}
				c["azp"] = "another-client"
			}
			return u
		}, 401, "id_token_invalid"},
		{"several aud, azp ours", func(u idpUser) idpUser {
			u.Shape = func(c map[string]any) { c["aud"] = []string{"usher-web", "another-client"}; c["azp"] = "usher-web" }
			return u
		}, 302, ""},
		{"expired", func(u idpUser) idpUser {
			u.Shape = func(c map[string]any) { c["exp"] = epoch.Add(-time.Minute).Unix() }
			return u
		}, 401, "id_token_invalid"},
		{"nonce wrong", func(u idpUser) idpUser {
			u.Shape = func(c map[string]any) { c["nonce"] = "nonce-of-another-login" }
			return u
		}, 401, "nonce_mismatch"},
		{"nonce absent", func(u idpUser) idpUser {
			u.Shape = func(c map[string]any) { delete(c, "nonce") }
			return u
		}, 401, "nonce_mismatch"},
		{"email_verified false", func(u idpUser) idpUser { u.EmailVerified = false; return u }, 403, "email_unverified"},
		{"email_verified missing", func(u idpUser) idpUser { u.EmailVerified = nil; return u }, 403, "email_unverified"},
		{"email_verified string false", func(u idpUser) idpUser { u.EmailVerified = "false"; return u }, 403, "email_unverified"},
		{"email_verified string true", func(u idpUser) idpUser { u.EmailVerified = "true"; return u }, 302, ""},
		{"groups not strings", func(u idpUser) idpUser {
			u.Shape = func(c map[string]any) { c["groups"] = []any{1, 2} }
			return u
		}, 401, "groups_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			fc, au := h.start("oidc", "/")
			_, q := h.idp.issueCode(t, au, tt.user(alice))
			w := h.callback(q, fc)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.reason != "" {
				if got := reason(t, w); got != tt.reason {
					t.Errorf("reason %q, want %q", got, tt.reason)
				}
				if len(h.st.snapshot()) != 0 {
					t.Error("a session was created")
				}
			}
		})
	}
}

// TestCallbackEmailAndAccess: the allowed domains (strict parse) and the
// access rule (all users, invitation, groups matching a seat). Catalogue
// rows 58, 59, 69.
func TestCallbackEmailAndAccess(t *testing.T) {
	tests := []struct {
		name     string
		allowAll bool
		invite   string
		user     func(u idpUser) idpUser
		status   int
		reason   string
		seats    []string
	}{
		{"allowed domain", true, "", func(u idpUser) idpUser { return u }, 302, "", []string{"dev"}},
		{"upper case domain", true, "", func(u idpUser) idpUser { u.Email = "alice@ACME.TEST"; return u }, 302, "", []string{"dev"}},
		{"subdomain of allowed", true, "", func(u idpUser) idpUser { u.Email = "alice@acme.test.evil.test"; return u }, 403, "email_domain_not_allowed", nil},
		{"suffix without dot", true, "", func(u idpUser) idpUser { u.Email = "alice@evilacme.test"; return u }, 403, "email_domain_not_allowed", nil},
		{"two at signs", true, "", func(u idpUser) idpUser { u.Email = "alice@acme.test@evil.test"; return u }, 403, "email_domain_not_allowed", nil},
		{"quoted local part", true, "", func(u idpUser) idpUser { u.Email = `"alice@acme.test"@evil.test`; return u }, 403, "email_domain_not_allowed", nil},
		{"display name", true, "", func(u idpUser) idpUser { u.Email = "Alice <alice@acme.test>"; return u }, 403, "email_domain_not_allowed", nil},
		{"trailing dot", true, "", func(u idpUser) idpUser { u.Email = "alice@acme.test."; return u }, 403, "email_domain_not_allowed", nil},
		{"IDN look-alike", true, "", func(u idpUser) idpUser { u.Email = "alice@аcme.test"; return u }, 403, "email_domain_not_allowed", nil},
		{"no groups, not invited", false, "", func(u idpUser) idpUser { u.Groups = nil; return u }, 403, "not_invited", nil},
		{"groups match a seat alias", false, "", func(u idpUser) idpUser { return u }, 302, "", []string{"dev"}},
		{"groups match a seat name", false, "", func(u idpUser) idpUser { u.Groups = []string{"admin"}; return u }, 302, "", []string{"admin"}},
		{"invited", false, "alice@acme.test", func(u idpUser) idpUser { u.Groups = nil; return u }, 302, "", []string{"viewer"}},
		{"Entra overage means no groups", false, "", func(u idpUser) idpUser {
			u.Shape = func(c map[string]any) {
				delete(c, "groups")
				c["_claim_names"] = map[string]any{"groups": "src1"}
				c["_claim_sources"] = map[string]any{"src1": map[string]any{"endpoint": "https://graph.example/x"}}
			}
			return u
		}, 403, "not_invited", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *login.Config) { c.AllowAllUsers = tt.allowAll })
			if tt.invite != "" {
				if err := h.st.InviteUser(t.Context(), login.Invitation{Tenant: tenant, Email: tt.invite, Seats: []string{"viewer"}}); err != nil {
					t.Fatal(err)
				}
			}
			fc, au := h.start("oidc", "/")
			_, q := h.idp.issueCode(t, au, tt.user(alice))
			w := h.callback(q, fc)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.reason != "" {
				if got := reason(t, w); got != tt.reason {
					t.Errorf("reason %q, want %q", got, tt.reason)
				}
				return
			}
			ss := h.st.snapshot()
			if len(ss) != 1 {
				t.Fatalf("%d sessions, want 1", len(ss))
			}
			if got := strings.Join(ss[0].Seats, ","); got != strings.Join(tt.seats, ",") {
				t.Errorf("seats %q, want %q", got, tt.seats)
			}
		})
	}
}
