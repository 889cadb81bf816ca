package authz_test

import (
	"net/url"
	"testing"

	"github.com/usher-dev/usher/authz"
)

// TestSessionCookieCSRF: an unsafe request the session cookie
// authenticates is refused when another site may have sent it.
// Catalogue row 38.
func TestSessionCookieCSRF(t *testing.T) {
	w := newCookieWorld(t)
	h, _ := w.login(t, "acme", "editors")
	c := "usher_session=" + h
	for _, tt := range []struct {
		name    string
		method  string
		path    string
		headers []string
		want    authz.Reason
	}{
		{"POST cross-site", "POST", datasets, []string{"cookie", c, "sec-fetch-site", "cross-site"}, authz.ReasonCSRF},
		{"PUT from a foreign origin", "PUT", datasets, []string{"cookie", c, "origin", "https://evil.test"}, authz.ReasonCSRF},
		{"DELETE from a look-alike origin", "DELETE", datasets, []string{"cookie", c, "origin", "https://example.test.evil.test"}, authz.ReasonCSRF},
		{"PATCH from a suffix look-alike", "PATCH", "/me", []string{"cookie", c, "origin", "https://evilexample.test"}, authz.ReasonCSRF},
		{"POST from an opaque origin", "POST", datasets, []string{"cookie", c, "origin", "null"}, authz.ReasonCSRF},
		{"POST from an origin with user info", "POST", datasets, []string{"cookie", c, "origin", "https://example.test@evil.test"}, authz.ReasonCSRF},
		{"POST from a non-http origin", "POST", datasets, []string{"cookie", c, "origin", "ftp://app.example.test"}, authz.ReasonCSRF},
		{"lower-case method", "post", datasets, []string{"cookie", c, "sec-fetch-site", "cross-site"}, authz.ReasonCSRF},
		{"another unsafe method", "PROPFIND", "/me", []string{"cookie", c, "sec-fetch-site", "cross-site"}, authz.ReasonCSRF},
		{"GET overridden to DELETE cross-site", "GET", datasets, []string{"cookie", c, "sec-fetch-site", "cross-site", "x-http-method-override", "DELETE"}, authz.ReasonCSRF},
		{"POST same-site from a subdomain", "POST", datasets, []string{"cookie", c, "sec-fetch-site", "same-site", "origin", "https://app.example.test"}, authz.ReasonAllowed},
		{"POST from the root domain with a port", "POST", datasets, []string{"cookie", c, "origin", "https://EXAMPLE.test:8443"}, authz.ReasonAllowed},
		{"POST same-origin", "POST", datasets, []string{"cookie", c, "sec-fetch-site", "same-origin", "origin", "https://api.example.test"}, authz.ReasonAllowed},
		{"POST without fetch metadata or origin", "POST", datasets, []string{"cookie", c}, authz.ReasonAllowed},
		{"GET cross-site is safe", "GET", datasets, []string{"cookie", c, "sec-fetch-site", "cross-site", "origin", "https://evil.test"}, authz.ReasonAllowed},
		{"API key cross-site is no CSRF", "POST", datasets, []string{"x-api-key", w.keys["acme/ci"], "sec-fetch-site", "cross-site", "origin", "https://evil.test"}, authz.ReasonAllowed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := w.check(t, req(tt.method, "api.example.test", tt.path, tt.headers...))
			if d.Reason != tt.want || d.Status != authz.StatusFor(tt.want) {
				t.Errorf("%d %s, want %d %s", d.Status, d.Reason, authz.StatusFor(tt.want), tt.want)
			}
			if tt.want == authz.ReasonCSRF && d.Identity.Method != authz.AuthCookie {
				t.Errorf("identity %q: want the cookie's, for the logs", d.Identity.Method)
			}
		})
	}
}

// TestLoginRedirect: a browser navigation without a usable session gets a
// 302 to the login app with the original URL as next; anything else keeps
// the 401.
func TestLoginRedirect(t *testing.T) {
	w := newCookieWorld(t)
	h, _ := w.login(t, "acme", "editors")
	revoked, revokedID := w.login(t, "acme", "editors")
	w.ms.edit(revokedID, func(s *authz.Session) { s.RevokedAt = w.clock.Now() })
	expired, expiredID := w.login(t, "acme", "editors")
	w.ms.edit(expiredID, func(s *authz.Session) { s.ExpiresAt = w.clock.Now() })
	const path = "/spaces/proj1/datasets/7?page=2&q=a%20b"
	location := "https://auth.example.test/login?next=" + url.QueryEscape("https://api.example.test"+path)
	nav := []string{"sec-fetch-mode", "navigate"}
	html := []string{"accept", "text/html,application/xhtml+xml,*/*;q=0.8"}
	with := func(a []string, more ...string) []string { return append(append([]string{}, a...), more...) }
	for _, tt := range []struct {
		name     string
		method   string
		headers  []string
		status   int
		reason   authz.Reason
		location string
	}{
		{"navigation, no credential", "GET", nav, 302, authz.ReasonCredentialMissing, location},
		{"HEAD navigation", "HEAD", nav, 302, authz.ReasonCredentialMissing, location},
		{"accept text/html", "GET", html, 302, authz.ReasonCredentialMissing, location},
		{"accept TEXT/HTML with parameters", "GET", []string{"accept", "application/json, Text/HTML ; charset=utf-8"}, 302, authz.ReasonCredentialMissing, location},
		{"invalid session", "GET", with(nav, "cookie", "usher_session=nope"), 302, authz.ReasonSessionInvalid, location},
		{"expired session", "GET", with(html, "cookie", "usher_session="+expired), 302, authz.ReasonSessionExpired, location},
		{"revoked session", "GET", with(nav, "cookie", "usher_session="+revoked), 302, authz.ReasonSessionRevoked, location},
		{"duplicate cookies", "GET", with(nav, "cookie", "usher_session="+h+"; usher_session="+h), 401, authz.ReasonSessionDuplicate, ""},
		{"XHR asking for html", "GET", with(html, "x-requested-with", "XMLHttpRequest"), 401, authz.ReasonCredentialMissing, ""},
		{"text/html refused (q=0)", "GET", []string{"accept", "text/html;q=0, application/json"}, 401, authz.ReasonCredentialMissing, ""},
		{"JSON client", "GET", []string{"accept", "application/json"}, 401, authz.ReasonCredentialMissing, ""},
		{"no accept", "GET", nil, 401, authz.ReasonCredentialMissing, ""},
		{"POST navigation (a form)", "POST", nav, 401, authz.ReasonCredentialMissing, ""},
		{"bad API key", "GET", with(nav, "x-api-key", "sk_nope"), 401, authz.ReasonAPIKeyMalformed, ""},
		{"valid session", "GET", with(nav, "cookie", "usher_session="+h), 200, authz.ReasonAllowed, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := w.check(t, req(tt.method, "api.example.test", path, tt.headers...))
			if d.Status != tt.status || d.Reason != tt.reason || d.Location != tt.location {
				t.Errorf("%d %s %q\nwant %d %s %q", d.Status, d.Reason, d.Location, tt.status, tt.reason, tt.location)
			}
		})
	}
	t.Run("scheme and host as the proxy saw them", func(t *testing.T) {
		r := get("App.Example.test:8080", "/me", nav...)
		r.Scheme = "http"
		d := w.check(t, r)
		want := "https://auth.example.test/login?next=" + url.QueryEscape("http://app.example.test:8080/me")
		if d.Status != 302 || d.Location != want {
			t.Errorf("%d %q, want 302 %q", d.Status, d.Location, want)
		}
		r = get("app.example.test", "/me", with(nav, ":scheme", "http")...)
		if d := w.check(t, r); d.Location != "https://auth.example.test/login?next="+url.QueryEscape("http://app.example.test/me") {
			t.Errorf(":scheme header: %q", d.Location)
		}
	})
	t.Run("no login url: 401", func(t *testing.T) {
		k := newCookieWorld(t, func(c *authz.Config) { c.Cookie.LoginURL = "" })
		if d := k.check(t, get("api.example.test", path, nav...)); d.Status != 401 || d.Location != "" {
			t.Errorf("%d %q, want 401", d.Status, d.Location)
		}
	})
}
