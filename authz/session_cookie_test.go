package authz_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
)

const datasets = "/spaces/proj1/datasets/7"

func TestSessionCookieAllows(t *testing.T) {
	w := newCookieWorld(t)
	h, _ := w.login(t, "acme", "editors")
	d := w.check(t, get("api.example.test", datasets, "cookie", cookies(h)))
	want := outcome{Status: 200, Reason: authz.ReasonAllowed, Subject: "alice-sub", Tenant: "acme", Auth: authz.AuthCookie, Seats: "editors"}
	if diff := cmp.Diff(want, outcomeOf(d)); diff != "" {
		t.Fatalf("decision (-want +got):\n%s", diff)
	}
	wantHeaders := map[string]string{
		"x-usher-subject": "alice-sub", "x-usher-tenant": "acme", "x-usher-email": "alice@example.test",
		"x-usher-auth": "cookie", "x-usher-issuer": testIssuer, "x-usher-space": "proj1", "x-usher-seats": "editors",
	}
	if diff := cmp.Diff(wantHeaders, identityHeaders(d)); diff != "" {
		t.Errorf("identity headers (-want +got):\n%s", diff)
	}
	if d.Cookie != "theme=dark; lang=en" {
		t.Errorf("upstream cookie = %q, want the other cookies", d.Cookie)
	}
	// The seats apply in the space only where they grant something.
	d = w.check(t, get("api.example.test", "/spaces/proj2/datasets/7", "cookie", cookies(h)))
	if d.Status != 403 || d.Reason != authz.ReasonPermissionDenied || d.Identity.Method != authz.AuthCookie {
		t.Errorf("another space: %d %s, want 403 permission_denied", d.Status, d.Reason)
	}
}

// TestSessionCookieReasons: every way a session cookie fails, with its
// exact reason. Catalogue rows 31, 32, 35 and 39.
func TestSessionCookieReasons(t *testing.T) {
	w := newCookieWorld(t)
	good, _ := w.login(t, "acme", "editors")
	other, _ := w.login(t, "acme", "editors")
	revoked, revokedID := w.login(t, "acme", "editors")
	w.ms.edit(revokedID, func(s *authz.Session) { s.RevokedAt = w.clock.Now() })
	expired, expiredID := w.login(t, "acme", "editors")
	w.ms.edit(expiredID, func(s *authz.Session) { s.ExpiresAt = w.clock.Now() })
	noExpiry, noExpiryID := w.login(t, "acme", "editors")
	w.ms.edit(noExpiryID, func(s *authz.Session) { s.ExpiresAt = time.Time{} })
	idle, idleID := w.login(t, "acme", "editors")
	w.ms.edit(idleID, func(s *authz.Session) { s.LastSeenAt = w.clock.Now().Add(-authz.DefaultIdleTTL) })
	wrongSecret, wrongSecretID := w.login(t, "acme", "editors")
	w.ms.edit(wrongSecretID, func(s *authz.Session) { s.Hash = authz.HashAPIKey(other) })
	family, familyID := w.login(t, "acme", "editors")
	w.ms.edit(familyID, func(s *authz.Session) { s.Hash = authz.KeyHash{} }) // a refresh family: no cookie
	otherTenant, otherTenantID := w.login(t, "acme", "editors")
	w.ms.edit(otherTenantID, func(s *authz.Session) { s.Tenant = "globex" })
	unknown, err := authz.GenerateSessionHandle("acme")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := authz.GenerateAPIKey("acme")

	for _, tt := range []struct {
		name   string
		cookie string
		want   authz.Reason
	}{
		{"alone", "usher_session=" + good, authz.ReasonAllowed},
		{"with whitespace", " usher_session = " + good + " ;a=b", authz.ReasonAllowed},
		{"garbage", "usher_session=garbage", authz.ReasonSessionInvalid},
		{"empty value", "usher_session=", authz.ReasonSessionInvalid},
		{"quoted", `usher_session="` + good + `"`, authz.ReasonSessionInvalid},
		{"an API key in the cookie", "usher_session=" + key.Key, authz.ReasonSessionInvalid},
		{"one bit off", "usher_session=" + good[:len(good)-1] + flip(good[len(good)-1]), authz.ReasonSessionInvalid},
		{"truncated", "usher_session=" + good[:len(good)-2], authz.ReasonSessionInvalid},
		{"oversized", "usher_session=us_" + strings.Repeat("a", 4000), authz.ReasonSessionInvalid},
		{"unknown session", "usher_session=" + unknown.Handle, authz.ReasonSessionInvalid},
		{"wrong secret", "usher_session=" + wrongSecret, authz.ReasonSessionInvalid},
		{"refresh family has no cookie", "usher_session=" + family, authz.ReasonSessionInvalid},
		{"tenant of the handle is not the session's", "usher_session=" + otherTenant, authz.ReasonSessionInvalid},
		{"revoked", "usher_session=" + revoked, authz.ReasonSessionRevoked},
		{"past absolute expiry", "usher_session=" + expired, authz.ReasonSessionExpired},
		{"no absolute expiry", "usher_session=" + noExpiry, authz.ReasonSessionExpired},
		{"idle too long", "usher_session=" + idle, authz.ReasonSessionExpired},
		// Catalogue row 35: never first wins or last wins.
		{"duplicate, equal values", "usher_session=" + good + "; usher_session=" + good, authz.ReasonSessionDuplicate},
		{"duplicate, another session", "usher_session=" + good + "; a=1; usher_session=" + other, authz.ReasonSessionDuplicate},
		{"duplicate, garbage first", "usher_session=x; usher_session=" + good, authz.ReasonSessionDuplicate},
		{"duplicate, name in another case", "USHER_SESSION=" + other + "; usher_session=" + good, authz.ReasonSessionDuplicate},
		{"duplicate behind a comma", "a=1, usher_session=" + other + "; usher_session=" + good, authz.ReasonSessionDuplicate},
		{"duplicate inside the value", "usher_session=" + good + ",usher_session=" + other, authz.ReasonSessionDuplicate},
		{"only behind a comma", "a=1, usher_session=" + good, authz.ReasonSessionInvalid},
		{"another cookie only", "usher_sessionx=" + good + "; xusher_session=" + good, authz.ReasonCredentialMissing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := w.check(t, get("api.example.test", datasets, "cookie", tt.cookie))
			if d.Reason != tt.want || d.Status != authz.StatusFor(tt.want) {
				t.Errorf("%d %s, want %d %s", d.Status, d.Reason, authz.StatusFor(tt.want), tt.want)
			}
		})
	}
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// TestSessionCookiePriority: the cookie is the last credential; a present
// credential before it decides, valid or not, and every credential usher
// did not verify is stripped. Catalogue row 100.
func TestSessionCookiePriority(t *testing.T) {
	w := newCookieWorld(t)
	h, _ := w.login(t, "acme", "admins") // admins grant nothing in proj1
	tok := mintFor(t, w.keyring(t)["acme"], w.clock.Now(), "bob", map[string]string{"proj1": "editors"})
	for _, tt := range []struct {
		name    string
		headers []string
		want    outcome
		cookie  string
	}{
		{"api key beats cookie", []string{"x-api-key", w.keys["acme/ci"], "cookie", cookies(h)},
			outcome{200, authz.ReasonAllowed, "apikey:ciacmekeyaaaaaaa", "acme", authz.AuthAPIKey, "editors", []string{"x-api-key"}}, "theme=dark; lang=en"},
		{"bad api key does not fall through", []string{"x-api-key", "sk_nope", "cookie", cookies(h)},
			outcome{Status: 401, Reason: authz.ReasonAPIKeyMalformed}, ""},
		{"bearer beats cookie", []string{"authorization", "Bearer " + tok, "cookie", "usher_session=" + h},
			outcome{200, authz.ReasonAllowed, "bob", "acme", authz.AuthJWT, "editors", []string{"authorization", "cookie"}}, ""},
		{"duplicate cookies beside an api key", []string{"x-api-key", w.keys["acme/ci"], "cookie", "usher_session=a; x=1; usher_session=b; y=2"},
			outcome{200, authz.ReasonAllowed, "apikey:ciacmekeyaaaaaaa", "acme", authz.AuthAPIKey, "editors", []string{"x-api-key"}}, "x=1; y=2"},
		{"cookie alone", []string{"cookie", cookies(h)},
			outcome{403, authz.ReasonPermissionDenied, "alice-sub", "acme", authz.AuthCookie, "", nil}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := w.check(t, get("api.example.test", datasets, tt.headers...))
			if diff := cmp.Diff(tt.want, outcomeOf(d)); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
			if d.Cookie != tt.cookie {
				t.Errorf("upstream cookie = %q, want %q", d.Cookie, tt.cookie)
			}
		})
	}
}

// TestSessionCookieStrippedUpstream: the session cookie never reaches the
// upstream (unless keep_credential keeps the verified one); the other
// cookies go through as sent.
func TestSessionCookieStrippedUpstream(t *testing.T) {
	w := newCookieWorld(t)
	h, _ := w.login(t, "acme", "editors")
	s := "usher_session=" + h
	for _, tt := range []struct {
		name, path, cookie string
		upstream           string // "" with removed: the header goes
		removed            bool
	}{
		{"between two", datasets, "a=1; " + s + "; b=2", "a=1; b=2", false},
		{"first", datasets, s + "; b=2", "b=2", false},
		{"last", datasets, "a=1; " + s, "a=1", false},
		{"last with a trailing separator", datasets, "a=1; " + s + "; ", "a=1", false},
		{"no spaces", datasets, "a=1;" + s + ";b=2", "a=1;b=2", false},
		{"others keep their odd spelling", datasets, `a="q v"; ` + s + "; b=x,y", `a="q v"; b=x,y`, false},
		{"alone", datasets, s, "", true},
		{"public route strips it too", "/public/x", "a=1; " + s, "a=1", false},
		{"public route, alone", "/public/x", s, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := w.check(t, get("api.example.test", tt.path, "cookie", tt.cookie))
			if !d.Allowed() {
				t.Fatalf("denied: %s", d.Reason)
			}
			if d.Cookie != tt.upstream {
				t.Errorf("upstream cookie = %q, want %q", d.Cookie, tt.upstream)
			}
			var want []string
			if tt.removed {
				want = []string{"cookie"}
			}
			if diff := cmp.Diff(want, d.Remove); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("no session cookie: untouched", func(t *testing.T) {
		d := w.check(t, get("api.example.test", "/public/x", "cookie", "a=1; b=2"))
		if d.Cookie != "" || d.Remove != nil {
			t.Errorf("cookie %q, removed %q: want the header untouched", d.Cookie, d.Remove)
		}
	})
	t.Run("keep_credential keeps the verified cookie", func(t *testing.T) {
		k := newCookieWorld(t, func(c *authz.Config) { c.KeepCredential = true })
		h, _ := k.login(t, "acme", "editors")
		d := k.check(t, get("api.example.test", datasets, "cookie", cookies(h)))
		if !d.Allowed() || d.Cookie != "" || d.Remove != nil {
			t.Errorf("%s: cookie %q, removed %q: want it kept", d.Reason, d.Cookie, d.Remove)
		}
	})
}

// TestSessionCookieDisabled: with the cookie off (the default), a cookie
// is no credential and the Cookie header is none of usher's business.
func TestSessionCookieDisabled(t *testing.T) {
	ms := newMemSessions()
	w := newWorld(t, func(c *authz.Config) { c.Sessions = ms })
	cw := &cookieWorld{world: w, ms: ms}
	h, _ := cw.login(t, "acme", "editors")
	d := w.check(t, get("api.example.test", datasets, "cookie", cookies(h), "sec-fetch-mode", "navigate"))
	if d.Status != 401 || d.Reason != authz.ReasonCredentialMissing || d.Location != "" {
		t.Errorf("%d %s %q, want 401 credential_missing", d.Status, d.Reason, d.Location)
	}
	d = w.check(t, get("api.example.test", "/public/x", "cookie", cookies(h)))
	if d.Cookie != "" || d.Remove != nil {
		t.Errorf("cookie %q, removed %q: want the header untouched", d.Cookie, d.Remove)
	}
}

func TestCookieConfigValidate(t *testing.T) {
	ms := newMemSessions()
	for _, tt := range []struct {
		name string
		cfg  authz.Config
		want string
	}{
		{"no sessions", authz.Config{Cookie: authz.CookieConfig{Enabled: true, RootDomain: "example.test"}}, "Sessions is required"},
		{"no root domain", authz.Config{Sessions: ms, Cookie: authz.CookieConfig{Enabled: true}}, "login.root_domain"},
		{"root domain in upper case", authz.Config{Sessions: ms, Cookie: authz.CookieConfig{Enabled: true, RootDomain: "Example.test"}}, "login.root_domain"},
		{"bad cookie name", authz.Config{Sessions: ms, Cookie: authz.CookieConfig{Enabled: true, RootDomain: "example.test", Name: "a b"}}, "login.cookie_name"},
		{"bad login url", authz.Config{Sessions: ms, Cookie: authz.CookieConfig{Enabled: true, RootDomain: "example.test", LoginURL: "auth.example.test"}}, "login.url"},
		{"login url with a query", authz.Config{Sessions: ms, Cookie: authz.CookieConfig{Enabled: true, RootDomain: "example.test", LoginURL: "https://a.example.test/?x=1"}}, "login.url"},
		{"idle ttl too short", authz.Config{Sessions: ms, Cookie: authz.CookieConfig{Enabled: true, RootDomain: "example.test", IdleTTL: time.Second}}, "login.idle_ttl"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			cfg := tt.cfg
			cfg.Keys, cfg.Seats, cfg.Cache = w.st, w.st, authz.DefaultCacheConfig()
			a, err := authz.New(cfg)
			if err == nil {
				a.Close()
				t.Fatal("New accepted the config")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
		})
	}
}
