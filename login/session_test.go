package login_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
)

// TestSessionCookieAttributes inspects every Set-Cookie of a login.
// Catalogue rows 34, 36.
// Catalogue rows 43, 67 (IdP tokens sealed in the stored session).
func TestSessionCookieAttributes(t *testing.T) {
	h := newHarness(t)
	w := h.do(form("/auth/oidc/login", url.Values{"provider": {"oidc"}, "next": {"/"}}))
	fc := cookieNamed(w, "__Host-usher_flow")
	if fc == nil {
		t.Fatal("no __Host- flow cookie")
	}
	if fc.Domain != "" || fc.Path != "/" || !fc.Secure || !fc.HttpOnly || fc.SameSite != http.SameSiteLaxMode || fc.MaxAge <= 0 || fc.MaxAge > 600 {
		t.Errorf("flow cookie %+v: want host-only, Path=/, Secure, HttpOnly, SameSite=Lax, at most 10 minutes", fc)
	}
	au, _ := url.Parse(w.Header().Get("Location"))
	_, q := h.idp.issueCode(t, au, alice)
	w = h.callback(q, fc)
	if w.Code != http.StatusFound {
		t.Fatalf("callback %d %s", w.Code, w.Body)
	}
	c := cookieNamed(w, login.DefaultCookieName)
	if c == nil {
		t.Fatal("no session cookie")
	}
	if c.Domain != "root.test" || c.Path != "/" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("session cookie %+v: want Domain=root.test, Path=/, Secure, HttpOnly, SameSite=Lax", c)
	}
	if len(c.Value) > 200 || !strings.HasPrefix(c.Value, "us_") {
		t.Errorf("session cookie value %q: want an us_ handle of at most 200 bytes", c.Value)
	}
	if got := time.Duration(c.MaxAge) * time.Second; got != login.DefaultSessionTTL {
		t.Errorf("session cookie Max-Age %s, want %s", got, login.DefaultSessionTTL)
	}
	if cleared := cookieNamed(w, "__Host-usher_flow"); cleared == nil || cleared.MaxAge >= 0 {
		t.Errorf("the callback did not clear the flow cookie: %+v", cleared)
	}
	ss := h.st.snapshot()
	if len(ss) != 1 || ss[0].Hash != authz.HashAPIKey(c.Value) {
		t.Fatal("the store does not hold the session under the handle's hash")
	}
	if strings.Contains(ss[0].IDPRefresh, "refresh") || ss[0].IDPRefresh == "" || ss[0].IDToken == "" || strings.HasPrefix(ss[0].IDToken, "ey") {
		t.Errorf("IdP tokens not sealed in the session: %q %q", ss[0].IDPRefresh, ss[0].IDToken)
	}
}

// TestFixation: a session cookie the browser had before login is never
// adopted; the login gets a new session id and handle. Catalogue row 33.
func TestFixation(t *testing.T) {
	h := newHarness(t)
	planted := h.login(idpUser{Sub: "mallory", Email: "mallory@acme.test", EmailVerified: true, Groups: []string{"engineers"}})
	fc, au := h.start("oidc", "/")
	_, q := h.idp.issueCode(t, au, alice)
	w := h.callback(q, fc, planted)
	c := cookieNamed(w, login.DefaultCookieName)
	if w.Code != http.StatusFound || c == nil {
		t.Fatalf("callback %d, cookie %v", w.Code, c)
	}
	if c.Value == planted.Value {
		t.Fatal("the planted session cookie was adopted")
	}
	pOld, _ := authz.ParseSessionHandle(planted.Value)
	pNew, _ := authz.ParseSessionHandle(c.Value)
	if pOld.ID == pNew.ID {
		t.Fatal("the new session has the planted session's id")
	}
	var who struct{ Subject string }
	_ = json.Unmarshal(h.whoami(c).Body.Bytes(), &who)
	if who.Subject != alice.Sub {
		t.Errorf("whoami with the new cookie: subject %q, want %q", who.Subject, alice.Sub)
	}
}

// TestWhoami: the session as JSON, never a token; 401 JSON otherwise.
// Catalogue rows 35, 39, 67.
func TestWhoami(t *testing.T) {
	h := newHarness(t)
	c := h.login(alice)
	w := h.whoami(c)
	if w.Code != http.StatusOK {
		t.Fatalf("whoami %d %s", w.Code, w.Body)
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["subject"] != alice.Sub || got["email"] != alice.Email || got["tenant"] != tenant || got["expires_at"] == nil {
		t.Errorf("whoami %v", got)
	}
	if seats, _ := got["seats"].([]any); len(seats) != 1 || seats[0] != "dev" {
		t.Errorf("seats %v, want [dev]", got["seats"])
	}
	for _, bad := range []string{"eyJ", "token", c.Value} {
		if strings.Contains(w.Body.String(), bad) {
			t.Errorf("whoami answers %q: %s", bad, w.Body)
		}
	}
	tests := []struct {
		name    string
		cookies func() []*http.Cookie
		before  func()
		reason  string
	}{
		{"no cookie", func() []*http.Cookie { return nil }, nil, "session_missing"},
		{"two cookies", func() []*http.Cookie { return []*http.Cookie{c, c} }, nil, "cookie_duplicate"},
		{"garbage", func() []*http.Cookie { return []*http.Cookie{{Name: login.DefaultCookieName, Value: "us_nope"}} }, nil, "session_invalid"},
		{"wrong secret", func() []*http.Cookie {
			v := []byte(c.Value)
			v[len(v)-1] ^= 1
			return []*http.Cookie{{Name: login.DefaultCookieName, Value: string(v)}}
		}, nil, "session_invalid"},
		{"idle expired", func() []*http.Cookie { return []*http.Cookie{c} }, func() { h.clock.Advance(login.DefaultIdleTTL) }, "session_expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			w := h.whoami(tt.cookies()...)
			if w.Code != http.StatusUnauthorized || reason(t, w) != tt.reason {
				t.Fatalf("%d %s, want 401 %s", w.Code, w.Body, tt.reason)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
		})
	}
}

// TestLogout: the cookie cleared, the session revoked, RP-initiated logout
// with the hint and the post-logout redirect, next carried through it,
// and logout CSRF. Catalogue rows 32, 38, 44.
func TestLogout(t *testing.T) {
	t.Run("RP-initiated logout and next", func(t *testing.T) {
		h := newHarness(t)
		c := h.login(alice)
		w := h.do(httptest.NewRequest(http.MethodGet, "/logout?next="+url.QueryEscape("https://app.root.test/bye"), nil), c)
		if w.Code != http.StatusFound {
			t.Fatalf("logout %d %s", w.Code, w.Body)
		}
		if cl := cookieNamed(w, login.DefaultCookieName); cl == nil || cl.MaxAge >= 0 || cl.Domain != "root.test" {
			t.Errorf("session cookie not cleared on the root domain: %+v", cl)
		}
		ss := h.st.snapshot()
		if len(ss) != 1 || !h.st.isRevoked(ss[0].ID) {
			t.Fatal("the session is not revoked")
		}
		if w := h.whoami(c); w.Code != http.StatusUnauthorized || reason(t, w) != "session_revoked" {
			t.Errorf("whoami after logout: %d %s", w.Code, w.Body)
		}
		loc, _ := url.Parse(w.Header().Get("Location"))
		lq := loc.Query()
		if loc.Scheme+"://"+loc.Host != h.idp.URL || loc.Path != "/session/end" || lq.Get("id_token_hint") == "" ||
			lq.Get("post_logout_redirect_uri") != loginURL+"/signed-out" || lq.Get("state") == "" {
			t.Fatalf("RP-initiated logout URL %s", loc)
		}
		// The IdP sends the browser back with the state.
		back := h.do(httptest.NewRequest(http.MethodGet, "/signed-out?state="+url.QueryEscape(lq.Get("state")), nil))
		if back.Code != http.StatusFound || back.Header().Get("Location") != "https://app.root.test/bye" {
			t.Errorf("signed-out: %d to %q, want 302 to the next URL", back.Code, back.Header().Get("Location"))
		}
		forged := h.do(httptest.NewRequest(http.MethodGet, "/signed-out?state="+url.QueryEscape("eyJueCI6Imh0dHBzOi8vZXZpbC50ZXN0In0.AAAA"), nil))
		if forged.Code != http.StatusOK || !strings.Contains(forged.Body.String(), "signed out") {
			t.Errorf("forged state: %d %q, want the signed-out page", forged.Code, forged.Header().Get("Location"))
		}
	})
	t.Run("no session: next or the signed-out page", func(t *testing.T) {
		h := newHarness(t)
		for _, tt := range []struct{ next, want string }{
			{"https://app.root.test/", "https://app.root.test/"},
			{"https://evil.test/", ""},
			{"/\\evil.test", ""},
		} {
			w := h.do(httptest.NewRequest(http.MethodGet, "/logout?next="+url.QueryEscape(tt.next), nil))
			if got := w.Header().Get("Location"); got != tt.want {
				t.Errorf("logout next=%q: Location %q, want %q", tt.next, got, tt.want)
			}
		}
	})
	t.Run("cross-site GET asks, cross-site POST refused", func(t *testing.T) {
		h := newHarness(t)
		c := h.login(alice)
		r := httptest.NewRequest(http.MethodGet, "/logout", nil)
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		w := h.do(r, c)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `action="/logout"`) {
			t.Fatalf("cross-site GET: %d, want the confirmation page", w.Code)
		}
		r = form("/logout", nil)
		r.Header.Set("Origin", "https://evil.test")
		w = h.do(r, c)
		if w.Code != http.StatusForbidden {
			t.Fatalf("cross-origin POST: %d, want 403", w.Code)
		}
		if len(h.st.revoked) != 0 {
			t.Fatal("a cross-site request revoked the session")
		}
		r = form("/logout", nil)
		r.Header.Set("Origin", "https://app.root.test")
		if w := h.do(r, c); w.Code != http.StatusFound || len(h.st.revoked) != 1 {
			t.Fatalf("same-site POST: %d, revoked %v", w.Code, h.st.revoked)
		}
	})
}

// TestRedirectAfterLogin: next travels in the flow cookie and is checked
// again; a bad one falls back to "/". Catalogue rows 46–49.
// Catalogue row 66 (the callback answers a redirect).
func TestRedirectAfterLogin(t *testing.T) {
	tests := []struct{ next, want string }{
		{"/app/x?y=1", "/app/x?y=1"},
		{"https://app.root.test/x", "https://app.root.test/x"},
		{"https://evil.test/", "/"},
		{"//evil.test", "/"},
		{"/%2F%2Fevil.test", "/"},
		{"https://root.test@evil.test/", "/"},
		{"javascript:alert(1)", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.next, func(t *testing.T) {
			h := newHarness(t)
			fc, au := h.start("oidc", tt.next)
			_, q := h.idp.issueCode(t, au, alice)
			w := h.callback(q, fc)
			if w.Code != http.StatusFound || w.Header().Get("Location") != tt.want {
				t.Fatalf("%d to %q, want 302 to %q", w.Code, w.Header().Get("Location"), tt.want)
			}
		})
	}
}

// TestLoginPage: the tenant's providers as buttons, the strict headers,
// and a readable error page with status, reason and request id.
// Catalogue rows 68, 81 (the error page; frame-ancestors 'none').
func TestLoginPage(t *testing.T) {
	h := newHarness(t)
	w := h.do(httptest.NewRequest(http.MethodGet, "/login?next="+url.QueryEscape("/a\"><script>"), nil))
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, "Continue with Acme SSO") || !strings.Contains(body, `action="/auth/oidc/login"`) {
		t.Fatalf("login page %d: %s", w.Code, body)
	}
	if strings.Contains(body, "<script") {
		t.Error("the page holds a script or the reflected next")
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self' ", h.idp.URL} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q allows scripts", csp)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	// Catalogue row 66: no page leaks its URL (a code, a state) by Referer.
	if rp := w.Header().Get("Referrer-Policy"); rp != "no-referrer" {
		t.Errorf("Referrer-Policy %q, want no-referrer", rp)
	}
	r := httptest.NewRequest(http.MethodGet, login.CallbackPath+"?state=x&code=y", nil)
	r.Header.Set("Accept", "text/html")
	r.Header.Set("X-Request-Id", "req-12345678")
	w = h.do(r)
	body = w.Body.String()
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("error page CSP %q", csp)
	}
	if w.Code != 400 || !strings.Contains(body, "flow_missing") || !strings.Contains(body, "req-12345678") || !strings.Contains(body, "400") {
		t.Errorf("error page %d: %s", w.Code, body)
	}
	if w := h.do(httptest.NewRequest(http.MethodGet, "/static/style.css", nil)); w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet %d %q", w.Code, w.Header().Get("Content-Type"))
	}
}

// TestStartLoginRefuses: an unknown provider and a cross-site POST.
func TestStartLoginRefuses(t *testing.T) {
	h := newHarness(t)
	r := form("/auth/oidc/login", url.Values{"provider": {"github"}})
	r.Header.Set("Accept", "application/json")
	if w := h.do(r); w.Code != 400 || reason(t, w) != "provider_unknown" {
		t.Errorf("unknown provider: %d %s", w.Code, w.Body)
	}
	r = form("/auth/oidc/login", url.Values{"provider": {"oidc"}})
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	if w := h.do(r); w.Code != 403 || reason(t, w) != "csrf" {
		t.Errorf("cross-site: %d %s", w.Code, w.Body)
	}
	// Catalogue row 38. Origin: null (a sandboxed or opaque origin) is
	// refused unless the browser says the form is the login app's own
	// page: Chromium sends null on a same-origin POST from a page with
	// Referrer-Policy: no-referrer (TestLoginEndToEndBrowser).
	for _, site := range []string{"", "cross-site", "same-site", "none"} {
		r = form("/auth/oidc/login", url.Values{"provider": {"oidc"}})
		r.Header.Set("Accept", "application/json")
		r.Header.Set("Origin", "null")
		if site != "" {
			r.Header.Set("Sec-Fetch-Site", site)
		}
		if w := h.do(r); w.Code != 403 || reason(t, w) != "csrf" {
			t.Errorf("Origin: null, Sec-Fetch-Site %q: %d %s", site, w.Code, w.Body)
		}
	}
	r = form("/auth/oidc/login", url.Values{"provider": {"oidc"}})
	r.Header.Set("Origin", "null")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if w := h.do(r); w.Code != http.StatusFound {
		t.Errorf("Origin: null from the login page itself: %d %s, want 302 to the IdP", w.Code, w.Body)
	}
}

// TestRedirectURIFromConfig: a Host or X-Forwarded-Host naming another
// site changes nothing in the redirect_uri sent to the IdP. Catalogue row 65.
func TestRedirectURIFromConfig(t *testing.T) {
	h := newHarness(t)
	r := form("/auth/oidc/login", url.Values{"provider": {"oidc"}, "next": {"/app"}, "tenant": {tenant}})
	r.Host = "evil.example"
	r.Header.Set("X-Forwarded-Host", "evil.example")
	r.Header.Set("X-Forwarded-Proto", "http")
	w := h.do(r)
	u, err := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || err != nil {
		t.Fatalf("POST /auth/oidc/login: %d %s (%v)", w.Code, w.Body, err)
	}
	if got, want := u.Query().Get("redirect_uri"), loginURL+login.CallbackPath; got != want {
		t.Errorf("redirect_uri %q, want %q from the configuration", got, want)
	}
}
