package login_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
)

// TestPersonalKeysAPI: create, list and revoke one's own keys with the
// session cookie and with a Bearer access token; the key is shown once
// and Check accepts it until it is revoked. Catalogue row 2.
func TestPersonalKeysAPI(t *testing.T) {
	h := newKeysHarness(t)
	cookie := cred{cookie: h.login(keyAlice)}
	bearer := cred{bearer: decodeTokens(t, h.validate(keyAlice)).AccessToken}

	for name, c := range map[string]cred{"cookie": cookie, "bearer": bearer} {
		t.Run(name, func(t *testing.T) {
			k := h.create(c, map[string]any{"name": "laptop-" + name, "expires_in": "30d"})
			if !strings.HasPrefix(k.Key, "sk_") || k.Name != "laptop-"+name || k.ID == "" {
				t.Fatalf("created %+v", k)
			}
			if diff := cmp.Diff([]string{"admin", "dev"}, k.Seats); diff != "" {
				t.Errorf("no seats asked: all the person holds (-want +got):\n%s", diff)
			}
			if want := epoch.Add(30 * 24 * time.Hour).Format(time.RFC3339); k.ExpiresAt != want {
				t.Errorf("expires_at %s, want %s", k.ExpiresAt, want)
			}
			stored, err := h.store.APIKeyRecord(t.Context(), k.ID)
			if err != nil || stored.Owner != "user:alice@acme.test" || !stored.Hash.Equal(authz.HashAPIKey(k.Key)) {
				t.Fatalf("stored key %+v, %v: want owner user:alice@acme.test and the key's hash", stored, err)
			}
			if d := h.check(k.Key, "/ops/x"); d.Status != http.StatusOK || d.Identity.Tenant != tenant {
				t.Fatalf("Check with the new key: %d %s", d.Status, d.Reason)
			}

			l, body := h.list(c)
			if strings.Contains(body, k.Key) || strings.Contains(body, "sk_") || strings.Contains(body, `"key"`) {
				t.Fatalf("the list shows a secret: %s", body)
			}
			i := slices.IndexFunc(l.Keys, func(e struct {
				ID, Name, State string
				Seats           []string
			}) bool {
				return e.ID == k.ID
			})
			if i < 0 || l.Keys[i].Name != k.Name || l.Keys[i].State != "active" {
				t.Fatalf("list %+v lacks %s", l, k.ID)
			}

			if w := h.api(c, http.MethodDelete, "/api/keys/"+k.ID, nil); w.Code != http.StatusNoContent {
				t.Fatalf("DELETE: %d %s", w.Code, w.Body)
			}
			if d := h.check(k.Key, "/me"); d.Status != http.StatusUnauthorized || d.Reason != authz.ReasonAPIKeyRevoked {
				t.Fatalf("Check after revocation: %d %s, want 401 %s", d.Status, d.Reason, authz.ReasonAPIKeyRevoked)
			}
			if w := h.api(c, http.MethodDelete, "/api/keys/nosuchkeyaaaaaaa", nil); w.Code != http.StatusNotFound || errorCode(t, w) != "key_not_found" {
				t.Fatalf("DELETE of no key: %d %s", w.Code, w.Body)
			}
		})
	}
}

// TestPersonalKeysRefused: named cases with exact errors. Catalogue row 38
// (cookie requests from another site).
func TestPersonalKeysRefused(t *testing.T) {
	h := newKeysHarness(t)
	bob := cred{cookie: h.login(keyBob)} // seat dev only
	tk := decodeTokens(t, h.validate(keyBob))
	forged := tk.AccessToken[:len(tk.AccessToken)-4] + "AAAA"

	tests := []struct {
		name   string
		c      cred
		method string
		body   any
		header map[string]string
		status int
		code   string
	}{
		{"seat the person lacks", bob, "POST", map[string]any{"name": "x1", "seats": []string{"admin"}}, nil, 403, "seat_not_held"},
		{"seat that does not exist", bob, "POST", map[string]any{"name": "x2", "seats": []string{"nope"}}, nil, 403, "seat_not_held"},
		{"expiry over a year (days)", bob, "POST", map[string]any{"name": "x3", "expires_in": "366d"}, nil, 400, "invalid_request"},
		{"expiry over a year (Go duration)", bob, "POST", map[string]any{"name": "x4", "expires_in": "8761h"}, nil, 400, "invalid_request"},
		{"negative expiry", bob, "POST", map[string]any{"name": "x5", "expires_in": "-1h"}, nil, 400, "invalid_request"},
		{"bad name", bob, "POST", map[string]any{"name": "../x"}, nil, 400, "invalid_request"},
		{"unknown field", bob, "POST", map[string]any{"name": "x6", "owner": "user:alice@acme.test"}, nil, 400, "invalid_request"},
		{"cross-site with the cookie", bob, "POST", map[string]any{"name": "x7"}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "csrf"},
		{"other origin with the cookie", bob, "DELETE", nil, map[string]string{"Origin": "https://evil.test"}, 403, "csrf"},
		{"form body with the cookie", bob, "POST", map[string]any{"name": "x8"}, map[string]string{"Content-Type": "text/plain"}, 415, "invalid_request"},
		{"no credential", cred{}, "GET", nil, nil, 401, "session_missing"},
		{"forged token", cred{bearer: forged}, "GET", nil, nil, 401, "token_invalid"},
		{"Basic credentials", cred{}, "GET", nil, map[string]string{"Authorization": "Basic Ym9iOng="}, 401, "token_invalid"},
		{"an API key as Bearer", cred{bearer: "sk_abc"}, "GET", nil, nil, 401, "token_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := "/api/keys"
			if tt.method == "DELETE" {
				target += "/nosuchkeyaaaaaaa"
			}
			var r *http.Request
			w := func() *httptest.ResponseRecorder {
				if tt.body != nil {
					r = jsonPost(target, tt.body)
				} else {
					r = httptest.NewRequest(tt.method, target, nil)
				}
				r.Method = tt.method
				if tt.c.bearer != "" {
					r.Header.Set("Authorization", "Bearer "+tt.c.bearer)
				}
				for k, v := range tt.header {
					r.Header.Set(k, v)
				}
				return h.do(r, tt.c.cookie)
			}()
			if w.Code != tt.status || errorCode(t, w) != tt.code {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Body, tt.status, tt.code)
			}
		})
	}
	if l, _ := h.list(bob); len(l.Keys) != 0 {
		t.Fatalf("refused requests left keys: %+v", l)
	}

	t.Run("revoked session's token", func(t *testing.T) {
		ss, err := h.store.ListSessions(t.Context(), tenant, "bob@acme.test")
		if err != nil {
			t.Fatal(err)
		}
		sid := h.accessSID(t, tk.AccessToken)
		if !slices.ContainsFunc(ss, func(s authz.Session) bool { return s.ID == sid }) {
			t.Fatalf("no session %s among %d", sid, len(ss))
		}
		if err := h.store.RevokeSession(t.Context(), tenant, sid); err != nil {
			t.Fatal(err)
		}
		w := h.api(cred{bearer: tk.AccessToken}, http.MethodGet, "/api/keys", nil)
		if w.Code != 401 || errorCode(t, w) != "session_revoked" {
			t.Fatalf("%d %s, want 401 session_revoked", w.Code, w.Body)
		}
	})
}

// TestPersonalKeysOthers: a person never sees nor revokes another
// person's keys, and two people may use the same name.
func TestPersonalKeysOthers(t *testing.T) {
	h := newKeysHarness(t)
	alice := cred{cookie: h.login(keyAlice)}
	bob := cred{bearer: decodeTokens(t, h.validate(keyBob)).AccessToken}
	ak := h.create(alice, map[string]any{"name": "laptop", "seats": []string{"dev"}})
	bk := h.create(bob, map[string]any{"name": "laptop"})

	if w := h.api(bob, http.MethodDelete, "/api/keys/"+ak.ID, nil); w.Code != http.StatusNotFound || errorCode(t, w) != "key_not_found" {
		t.Fatalf("bob deleting alice's key: %d %s, want 404 key_not_found", w.Code, w.Body)
	}
	if d := h.check(ak.Key, "/web/x"); d.Status != http.StatusOK {
		t.Fatalf("alice's key after bob's attempt: %d %s", d.Status, d.Reason)
	}
	l, _ := h.list(bob)
	if len(l.Keys) != 1 || l.Keys[0].ID != bk.ID {
		t.Fatalf("bob's list %+v, want only %s", l, bk.ID)
	}
	if w := h.api(alice, http.MethodPost, "/api/keys", map[string]any{"name": "laptop"}); w.Code != http.StatusConflict || errorCode(t, w) != "name_taken" {
		t.Fatalf("alice's second laptop: %d %s, want 409 name_taken", w.Code, w.Body)
	}
}

// TestWhoamiBearer: /whoami answers for an usher access token (the CLI's
// usher whoami) as for the session cookie, and stops once the token's
// session is revoked, so a revoked login shows as such.
func TestWhoamiBearer(t *testing.T) {
	h := newKeysHarness(t)
	at := decodeTokens(t, h.validate(keyAlice)).AccessToken
	w := h.api(cred{bearer: at}, http.MethodGet, "/whoami", nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"email":"alice@acme.test"`) || strings.Contains(w.Body.String(), at) {
		t.Fatalf("whoami with a bearer token: %d %s", w.Code, w.Body)
	}
	if err := h.store.RevokeSession(t.Context(), tenant, h.accessSID(t, at)); err != nil {
		t.Fatal(err)
	}
	if w := h.api(cred{bearer: at}, http.MethodGet, "/whoami", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("whoami after the session was revoked: %d %s", w.Code, w.Body)
	}
	if w := h.api(cred{bearer: "not.a.token"}, http.MethodGet, "/whoami", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("whoami with a forged token: %d", w.Code)
	}
}
