package login_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/usher-dev/usher/login"
)

// TestDeviceUserCodeForms: a code typed in lower case, with spaces or
// without the dash finds the request; anything outside the alphabet is
// refused. Catalogue row 80.
func TestDeviceUserCodeForms(t *testing.T) {
	h := newHarness(t)
	d := h.startDevice(nil)
	cookie := h.login(alice)
	bare := strings.ReplaceAll(d.UserCode, "-", "")
	for _, typed := range []string{d.UserCode, strings.ToLower(d.UserCode), bare, strings.ToLower(bare),
		bare[:4] + " " + bare[4:], " " + strings.ToLower(bare[:2]) + " " + bare[2:6] + " - " + bare[6:] + " "} {
		if w := h.confirmPage(cookie, typed, ""); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), d.UserCode) {
			t.Errorf("%q: %d", typed, w.Code)
		}
	}
	for _, typed := range []string{bare[:4] + "\u2013" + bare[4:], "BCDF-GHJA", "BCDF-GHJ1", "ＢＣＤＦＧＨＪＫ", bare[:7], bare + "B"} {
		r := httptest.NewRequest(http.MethodGet, "/device?"+url.Values{"user_code": {typed}}.Encode(), nil)
		r.Header.Set("Accept", "application/json")
		r.RemoteAddr = "203.0.113.50:1"
		if w := h.do(r, cookie); w.Code != http.StatusBadRequest || reason(t, w) != "user_code_invalid" {
			t.Errorf("%q: %d %s, want 400 user_code_invalid", typed, w.Code, reason(t, w))
		}
	}
}

// TestDeviceUserCodeGuessing: wrong codes are limited per session and
// per address; once over the limit even the right code is refused.
// Catalogue row 73.
func TestDeviceUserCodeGuessing(t *testing.T) {
	h := newHarness(t)
	d := h.startDevice(nil)
	mallory := h.login(bob)
	guess := func(c *http.Cookie, addr string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/device?user_code=BBBB-BBBB", nil)
		r.Header.Set("Accept", "application/json")
		r.RemoteAddr = addr
		return h.do(r, c)
	}
	for i := range 10 {
		if w := guess(mallory, "203.0.113.1:1000"); reason(t, w) != "user_code_unknown" {
			t.Fatalf("guess %d: %d %s", i, w.Code, reason(t, w))
		}
	}
	if w := guess(mallory, "203.0.113.1:1000"); w.Code != http.StatusTooManyRequests || reason(t, w) != "rate_limited" {
		t.Errorf("11th guess: %d %s, want 429 rate_limited", w.Code, reason(t, w))
	}
	// The same session from another address: still limited (per session).
	if w := h.confirmPage(mallory, d.UserCode, "203.0.113.2:1000"); w.Code != http.StatusTooManyRequests {
		t.Errorf("right code from the limited session: %d, want 429", w.Code)
	}
	// Another session from the same address: limited (per address).
	alices := h.login(alice)
	if w := h.confirmPage(alices, d.UserCode, "203.0.113.1:1000"); w.Code != http.StatusTooManyRequests {
		t.Errorf("right code from the limited address: %d, want 429", w.Code)
	}
	// Another session from another address goes through.
	if w := h.confirmPage(alices, d.UserCode, "203.0.113.3:1000"); w.Code != http.StatusOK {
		t.Errorf("right code elsewhere: %d", w.Code)
	}
	// The limit also covers the approval POST.
	r := form("/device", url.Values{"user_code": {d.UserCode}, "action": {"approve"}, "csrf": {h.csrf(alices, d.UserCode)}})
	r.Header.Set("Accept", "application/json")
	r.RemoteAddr = "203.0.113.1:1000"
	if w := h.do(r, alices); w.Code != http.StatusTooManyRequests {
		t.Errorf("approval from the limited address: %d", w.Code)
	}
	if e, _ := oauthAnswer(t, h.poll(d.DeviceCode)); e != "authorization_pending" {
		t.Errorf("after refused approvals the code is %s", e)
	}
}

// TestDeviceApprovalCSRF: an approval without the session's CSRF token,
// with another session's, or from another site is refused and decides
// nothing. Catalogue rows 38, 81.
// Catalogue row 82 (a second decision is refused).
func TestDeviceApprovalCSRF(t *testing.T) {
	h := newHarness(t)
	d := h.startDevice(nil)
	alices := h.login(alice)
	bobs := h.login(bob)
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		reason string
	}{
		{"no token", func() *http.Request {
			return form("/device", url.Values{"user_code": {d.UserCode}, "action": {"approve"}})
		}, 403, "csrf"},
		{"another session's token", func() *http.Request {
			return form("/device", url.Values{"user_code": {d.UserCode}, "action": {"approve"}, "csrf": {h.csrf(bobs, d.UserCode)}})
		}, 403, "csrf"},
		{"a made-up token", func() *http.Request {
			return form("/device", url.Values{"user_code": {d.UserCode}, "action": {"approve"}, "csrf": {randomString(t)}})
		}, 403, "csrf"},
		{"from another site", func() *http.Request {
			r := form("/device", url.Values{"user_code": {d.UserCode}, "action": {"approve"}, "csrf": {h.csrf(alices, d.UserCode)}})
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}, 403, "csrf"},
		{"no action", func() *http.Request {
			return form("/device", url.Values{"user_code": {d.UserCode}, "csrf": {h.csrf(alices, d.UserCode)}})
		}, 400, "request_invalid"},
	}
	for _, tc := range tests {
		r := tc.req()
		r.Header.Set("Accept", "application/json")
		if w := h.do(r, alices); w.Code != tc.status || reason(t, w) != tc.reason {
			t.Errorf("%s: %d %s, want %d %s", tc.name, w.Code, reason(t, w), tc.status, tc.reason)
		}
	}
	if e, _ := oauthAnswer(t, h.poll(d.DeviceCode)); e != "authorization_pending" {
		t.Fatalf("refused approvals decided the code: %s", e)
	}
	// Without a session: refused, not a login prompt.
	r := form("/device", url.Values{"user_code": {d.UserCode}, "action": {"approve"}, "csrf": {h.csrf(alices, d.UserCode)}})
	r.Header.Set("Accept", "application/json")
	if w := h.do(r); w.Code != http.StatusUnauthorized {
		t.Errorf("approval without a session: %d", w.Code)
	}
	h.approve(alices, d.UserCode)
	// A code is approved once, by one person.
	if w := h.decide(bobs, d.UserCode, "deny", h.csrfOf(bobs)); w.Code != http.StatusConflict || reason(t, w) != "user_code_used" {
		t.Errorf("second decision: %d %s", w.Code, reason(t, w))
	}
	tk := decodeTokens(t, h.poll(d.DeviceCode))
	if c := h.accessClaims(t, tk.AccessToken); c.Subject != alice.Sub {
		t.Errorf("tokens are %s's, want alice's", c.Subject)
	}
}

// csrfOf reads the CSRF token of a session from a code it may open.
func (h *harness) csrfOf(c *http.Cookie) string {
	h.t.Helper()
	return h.csrf(c, h.startDevice(nil).UserCode)
}

// TestDeviceTenant: a device that asked for a tenant is approved only by
// a person of that tenant; so is a client registered for a tenant; the
// tokens carry the approver's tenant.
func TestDeviceTenant(t *testing.T) {
	h := newHarness(t)
	alices := h.login(alice)
	h.dev.clients["globex-cli"] = login.Client{ID: "globex-cli", Tenant: "globex", Name: "Globex CLI", Public: true}
	for name, v := range map[string]url.Values{
		"tenant requested":         {"tenant": {"globex"}},
		"client of another tenant": {"client_id": {"globex-cli"}},
	} {
		d := h.startDevice(v)
		if !strings.Contains(d.VerificationURIComplete, "tenant=globex") {
			t.Errorf("%s: verification_uri_complete %s does not carry the tenant", name, d.VerificationURIComplete)
		}
		r := httptest.NewRequest(http.MethodGet, "/device?user_code="+d.UserCode, nil)
		r.Header.Set("Accept", "application/json")
		if w := h.do(r, alices); w.Code != http.StatusForbidden || reason(t, w) != "tenant_mismatch" {
			t.Errorf("%s: page %d %s, want 403 tenant_mismatch", name, w.Code, reason(t, w))
		}
		if w := h.decide(alices, d.UserCode, "approve", h.csrfOf(alices)); w.Code != http.StatusForbidden || reason(t, w) != "tenant_mismatch" {
			t.Errorf("%s: approval %d %s, want 403 tenant_mismatch", name, w.Code, reason(t, w))
		}
	}
	// A device asking for another tenant than its client's is refused.
	w := h.do(form("/oauth/device/code", url.Values{"client_id": {"globex-cli"}, "tenant": {tenant}}))
	if e, _ := oauthAnswer(t, w); w.Code != 400 || e != "invalid_request" {
		t.Errorf("client of globex asking for acme: %d %s", w.Code, e)
	}
	// The tenant matching: approved and bound to it.
	d := h.startDevice(url.Values{"tenant": {tenant}})
	h.approve(alices, d.UserCode)
	if c := h.accessClaims(t, decodeTokens(t, h.poll(d.DeviceCode)).AccessToken); c.TenantID != tenant {
		t.Errorf("tenant %s", c.TenantID)
	}
}

// TestDeviceAuthorizationRequest: the device endpoint's refusals.
// Catalogue row 84.
func TestDeviceAuthorizationRequest(t *testing.T) {
	h := newHarness(t)
	for name, tc := range map[string]struct {
		v      url.Values
		basic  bool
		status int
		error  string
	}{
		"no client":      {url.Values{}, false, 400, "invalid_request"},
		"unknown client": {url.Values{"client_id": {"nobody"}}, false, 401, "invalid_client"},
		"secret":         {url.Values{"client_id": {login.BuiltinClientID}, "client_secret": {"s"}}, false, 401, "invalid_client"},
		"basic secret":   {url.Values{}, true, 401, "invalid_client"},
		"bad tenant":     {url.Values{"client_id": {login.BuiltinClientID}, "tenant": {"Not A Tenant"}}, false, 400, "invalid_request"},
		"bad scope":      {url.Values{"client_id": {login.BuiltinClientID}, "scope": {"a\"b"}}, false, 400, "invalid_scope"},
	} {
		r := form("/oauth/device/code", tc.v)
		if tc.basic {
			r.SetBasicAuth(login.BuiltinClientID, "secret")
		}
		w := h.do(r)
		if e, _ := oauthAnswer(t, w); w.Code != tc.status || e != tc.error {
			t.Errorf("%s: %d %s, want %d %s", name, w.Code, e, tc.status, tc.error)
		}
	}
	var last *httptest.ResponseRecorder
	for range 61 {
		r := form("/oauth/device/code", url.Values{"client_id": {login.BuiltinClientID}})
		r.RemoteAddr = "192.0.2.99:1"
		last = h.do(r)
	}
	if last.Code != http.StatusTooManyRequests || last.Header().Get("Retry-After") == "" {
		t.Errorf("61st request in a minute from one address: %d", last.Code)
	}
}

// TestOAuthRevoke: revoking a refresh token ends its family (and the
// access tokens carrying its sid); unknown tokens are a 200 as RFC 7009
// says; a secret is refused.
// Catalogue row 121 (a refresh family revoked).
func TestOAuthRevoke(t *testing.T) {
	h := newHarness(t)
	d := h.startDevice(nil)
	h.approve(h.login(alice), d.UserCode)
	tk := decodeTokens(t, h.poll(d.DeviceCode))
	sid := h.accessClaims(t, tk.AccessToken).SessionID
	revoke := func(v url.Values) *httptest.ResponseRecorder { return h.do(form("/oauth/revoke", v)) }
	for name, tc := range map[string]struct {
		v      url.Values
		status int
		error  string
	}{
		"unknown refresh token": {url.Values{"token": {"ur_" + randomString(t) + randomString(t)[:21]}, "client_id": {login.BuiltinClientID}}, 200, ""},
		"garbage":               {url.Values{"token": {"nonsense"}}, 200, ""},
		"access token":          {url.Values{"token": {tk.AccessToken}, "client_id": {login.BuiltinClientID}}, 400, "unsupported_token_type"},
		"secret":                {url.Values{"token": {tk.RefreshToken}, "client_id": {login.BuiltinClientID}, "client_secret": {"x"}}, 401, "invalid_client"},
		"no token":              {url.Values{"client_id": {login.BuiltinClientID}}, 400, "invalid_request"},
	} {
		w := revoke(tc.v)
		e := ""
		if w.Code != 200 {
			e, _ = oauthAnswer(t, w)
		}
		if w.Code != tc.status || e != tc.error {
			t.Errorf("%s: %d %s, want %d %s", name, w.Code, e, tc.status, tc.error)
		}
	}
	if h.st.isRevoked(sid) {
		t.Fatal("family revoked before its token was")
	}
	if w := revoke(url.Values{"token": {tk.RefreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {login.BuiltinClientID}}); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if !h.st.isRevoked(sid) {
		t.Error("revocation did not revoke the family")
	}
	if w := revoke(url.Values{"token": {tk.RefreshToken}}); w.Code != 200 {
		t.Errorf("revoking again: %d", w.Code)
	}
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.RefreshToken}, "client_id": {login.BuiltinClientID}}
	if e, r := oauthAnswer(t, h.do(form("/oauth/token", v))); e != "invalid_grant" || r == "" {
		t.Errorf("refresh after revocation: %s %s", e, r)
	}
}

// TestDevicePageWrongCodeHTML: a person who mistypes the code gets the
// entry form again with what was wrong, and a long user agent is cut.
func TestDevicePageWrongCodeHTML(t *testing.T) {
	h := newHarness(t)
	cookie := h.login(alice)
	w := h.confirmPage(cookie, "BBBB-BBBB", "")
	if body := w.Body.String(); w.Code != http.StatusBadRequest || !strings.Contains(body, `data-reason="user_code_unknown"`) ||
		!strings.Contains(body, `name="user_code"`) {
		t.Errorf("wrong code: %d\n%s", w.Code, body)
	}
	r := form("/oauth/device/code", url.Values{"client_id": {login.BuiltinClientID}})
	r.Header.Set("User-Agent", strings.Repeat("é", 300))
	if w := h.do(r); w.Code != http.StatusOK {
		t.Fatalf("device code: %d", w.Code)
	}
	for _, d := range h.dev.codes {
		if len(d.UserAgent) > 200 || !utf8.ValidString(d.UserAgent) {
			t.Errorf("user agent kept: %d bytes, valid UTF-8 %v", len(d.UserAgent), utf8.ValidString(d.UserAgent))
		}
	}
}
