package login_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
)

type deviceAuth struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// startDevice asks for a device code with the form v (client_id usher-cli
// unless v names one).
func (h *harness) startDevice(v url.Values) deviceAuth {
	h.t.Helper()
	if v == nil {
		v = url.Values{}
	}
	if v.Get("client_id") == "" {
		v.Set("client_id", login.BuiltinClientID)
	}
	r := form("/oauth/device/code", v)
	r.Header.Set("User-Agent", "usher-cli/test (linux)")
	r.RemoteAddr = "198.51.100.9:4242"
	w := h.do(r)
	if w.Code != http.StatusOK {
		h.t.Fatalf("POST /oauth/device/code: %d %s", w.Code, w.Body)
	}
	var d deviceAuth
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		h.t.Fatal(err)
	}
	return d
}

// poll is the device's POST /oauth/token with the device-code grant.
func (h *harness) poll(deviceCode string, extra ...string) *httptest.ResponseRecorder {
	v := url.Values{"grant_type": {login.GrantDeviceCode}, "device_code": {deviceCode}, "client_id": {login.BuiltinClientID}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return h.do(form("/oauth/token", v))
}

// confirmPage opens /device?user_code= as the signed-in person.
func (h *harness) confirmPage(cookie *http.Cookie, userCode, addr string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/device?"+url.Values{"user_code": {userCode}}.Encode(), nil)
	if addr != "" {
		r.RemoteAddr = addr
	}
	return h.do(r, cookie)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the approval form's CSRF token off the confirmation page.
func (h *harness) csrf(cookie *http.Cookie, userCode string) string {
	h.t.Helper()
	w := h.confirmPage(cookie, userCode, "")
	m := csrfField.FindStringSubmatch(w.Body.String())
	if w.Code != http.StatusOK || m == nil {
		h.t.Fatalf("confirmation page: %d %s", w.Code, w.Body)
	}
	return m[1]
}

// decide posts the approval form.
func (h *harness) decide(cookie *http.Cookie, userCode, action, csrf string) *httptest.ResponseRecorder {
	r := form("/device", url.Values{"user_code": {userCode}, "action": {action}, "csrf": {csrf}})
	r.Header.Set("Accept", "application/json")
	return h.do(r, cookie)
}

func (h *harness) approve(cookie *http.Cookie, userCode string) {
	h.t.Helper()
	if w := h.decide(cookie, userCode, "approve", h.csrf(cookie, userCode)); w.Code != http.StatusOK {
		h.t.Fatalf("approve: %d %s", w.Code, w.Body)
	}
}

// oauthAnswer reads an error answer's OAuth code and reason.
func oauthAnswer(t testing.TB, w *httptest.ResponseRecorder) (string, string) {
	t.Helper()
	var b struct{ Error, Reason string }
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		return "(not JSON: " + w.Body.String() + ")", ""
	}
	return b.Error, b.Reason
}

var bob = idpUser{Sub: "bob-sub", Email: "bob@acme.test", EmailVerified: true, Groups: []string{"ops"}}

// TestDeviceFlow: the whole grant, as a standard client runs it, then
// the refresh token's rotation and reuse through /oauth/token.
// Catalogue rows 75, 76, 78.
// Catalogue rows 43, 52, 74 (S256 only; the device code 32 random bytes,
// stored hashed; a refresh by another client refused).
func TestDeviceFlow(t *testing.T) {
	h := newHarness(t)
	w := h.do(httptest.NewRequest(http.MethodGet, login.MetadataPath, nil))
	var md map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil || w.Code != 200 {
		t.Fatalf("metadata: %d %s", w.Code, w.Body)
	}
	for k, v := range map[string]string{
		"issuer": loginURL, "device_authorization_endpoint": loginURL + "/oauth/device/code",
		"token_endpoint": loginURL + "/oauth/token", "revocation_endpoint": loginURL + "/oauth/revoke",
	} {
		if md[k] != v {
			t.Errorf("metadata %s = %v, want %s", k, md[k], v)
		}
	}
	if b, _ := json.Marshal(md["code_challenge_methods_supported"]); string(b) != `["S256"]` {
		t.Errorf("code_challenge_methods_supported = %s", b)
	}
	if b, _ := json.Marshal(md["grant_types_supported"]); string(b) != `["`+login.GrantDeviceCode+`","refresh_token"]` {
		t.Errorf("grant_types_supported = %s", b)
	}

	d := h.startDevice(nil)
	if !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(d.UserCode) {
		t.Errorf("user code %q", d.UserCode)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(d.DeviceCode); err != nil || len(raw) < 32 {
		t.Errorf("device code %q: %d bytes, %v; want 32 random bytes", d.DeviceCode, len(raw), err)
	}
	if d.VerificationURI != loginURL+"/device" || d.VerificationURIComplete != loginURL+"/device?user_code="+d.UserCode ||
		d.ExpiresIn != 600 || d.Interval != 5 {
		t.Errorf("device authorization %+v", d)
	}
	for _, c := range h.dev.codes {
		if strings.Contains(c.UserCode+c.ClientID+c.Scope+c.RemoteAddr+c.UserAgent, d.DeviceCode) || c.Hash != authz.HashAPIKey(d.DeviceCode) {
			t.Errorf("device code stored other than hashed: %+v", c)
		}
	}

	// Not signed in: through login and back.
	w = h.do(httptest.NewRequest(http.MethodGet, "/device?user_code="+d.UserCode, nil))
	next := url.Values{"next": {"/device?user_code=" + d.UserCode}}.Encode()
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/login?"+next {
		t.Errorf("/device signed out: %d Location %q", w.Code, w.Header().Get("Location"))
	}
	fc, au := h.start("oidc", "/device?user_code="+d.UserCode)
	_, q := h.idp.issueCode(t, au, alice)
	if w := h.callback(q, fc); w.Header().Get("Location") != "/device?user_code="+d.UserCode {
		t.Errorf("after login the browser goes to %q, want back to the device page", w.Header().Get("Location"))
	}

	if e, _ := oauthAnswer(t, h.poll(d.DeviceCode)); e != "authorization_pending" {
		t.Errorf("poll before approval: %s", e)
	}
	cookie := h.login(alice)
	h.clock.Advance(3 * time.Minute)
	page := h.confirmPage(cookie, strings.ToLower(d.UserCode), "").Body.String()
	for _, want := range []string{"usher CLI", "usher-cli", "acme", "<code>dev</code>", "198.51.100.9", "usher-cli/test (linux)", "3 minutes ago", d.UserCode} {
		if !strings.Contains(page, want) {
			t.Errorf("confirmation page lacks %q:\n%s", want, page)
		}
	}
	if e, _ := oauthAnswer(t, h.poll(d.DeviceCode)); e != "authorization_pending" {
		t.Errorf("poll after the page was only shown (never auto-approved): %s", e)
	}
	h.approve(cookie, d.UserCode)
	h.clock.Advance(5 * time.Second)
	tk := decodeTokens(t, h.poll(d.DeviceCode))
	c := h.accessClaims(t, tk.AccessToken)
	fam, err := h.st.Session(t.Context(), c.SessionID)
	if err != nil {
		t.Fatalf("family of sid %q: %v", c.SessionID, err)
	}
	if c.Subject != alice.Sub || c.TenantID != tenant || c.HashPerm["web"] != "dev" || fam.ClientID != login.BuiltinClientID ||
		fam.Email != alice.Email || fam.Hash != (authz.KeyHash{}) {
		t.Errorf("claims %+v, family %+v", c, fam)
	}

	// Refresh through /oauth/token: the same rotation as /auth/oidc/refresh.
	refresh := func(rt string, extra ...string) *httptest.ResponseRecorder {
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {login.BuiltinClientID}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return h.do(form("/oauth/token", v))
	}
	h.dev.clients["other-cli"] = login.Client{ID: "other-cli", Tenant: tenant, Name: "Other", Public: true}
	if e, r := oauthAnswer(t, refresh(tk.RefreshToken, "client_id", "other-cli")); e != "invalid_grant" || r != "refresh_token_invalid" {
		t.Errorf("refresh by another client: %s %s", e, r)
	}
	tk2 := decodeTokens(t, refresh(tk.RefreshToken))
	if sid := h.accessClaims(t, tk2.AccessToken).SessionID; sid != c.SessionID || tk2.RefreshToken == tk.RefreshToken {
		t.Errorf("rotated: sid %s, same refresh token %v", sid, tk2.RefreshToken == tk.RefreshToken)
	}
	h.clock.Advance(time.Minute)
	if e, r := oauthAnswer(t, refresh(tk.RefreshToken)); e != "invalid_grant" || r != "refresh_token_reused" {
		t.Errorf("reuse: %s %s", e, r)
	}
	if !h.st.isRevoked(c.SessionID) {
		t.Error("reuse did not revoke the family")
	}
	if e, r := oauthAnswer(t, refresh(tk2.RefreshToken)); e != "invalid_grant" || r != "session_revoked" {
		t.Errorf("refresh of a revoked family: %s %s", e, r)
	}
}

// TestDeviceTokenAnswers: every answer of the token endpoint to a device,
// by name (RFC 8628 section 3.5; catalogue rows 74, 77, 78, 79).
func TestDeviceTokenAnswers(t *testing.T) {
	tests := []struct {
		name   string
		run    func(h *harness, d deviceAuth, cookie *http.Cookie) *httptest.ResponseRecorder
		status int
		error  string
		reason string
	}{
		{"pending", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			return h.poll(d.DeviceCode)
		}, 400, "authorization_pending", "authorization_pending"},
		{"pending after waiting the interval", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			h.poll(d.DeviceCode)
			h.clock.Advance(5 * time.Second)
			return h.poll(d.DeviceCode)
		}, 400, "authorization_pending", "authorization_pending"},
		{"polling too fast", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			h.poll(d.DeviceCode)
			h.clock.Advance(time.Second)
			return h.poll(d.DeviceCode)
		}, 400, "slow_down", "slow_down"},
		{"slow_down raises the interval by 5 s for later polls", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			h.poll(d.DeviceCode)
			h.clock.Advance(time.Second)
			h.poll(d.DeviceCode) // slow_down: interval now 10 s
			h.clock.Advance(6 * time.Second)
			return h.poll(d.DeviceCode)
		}, 400, "slow_down", "slow_down"},
		{"raised interval kept", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			h.poll(d.DeviceCode)
			h.clock.Advance(time.Second)
			h.poll(d.DeviceCode)
			h.clock.Advance(10 * time.Second)
			return h.poll(d.DeviceCode)
		}, 400, "authorization_pending", "authorization_pending"},
		{"denied", func(h *harness, d deviceAuth, c *http.Cookie) *httptest.ResponseRecorder {
			if w := h.decide(c, d.UserCode, "deny", h.csrf(c, d.UserCode)); w.Code != 200 {
				h.t.Fatalf("deny: %d %s", w.Code, w.Body)
			}
			return h.poll(d.DeviceCode)
		}, 400, "access_denied", "access_denied"},
		{"expired", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			h.clock.Advance(login.DeviceCodeTTL)
			return h.poll(d.DeviceCode)
		}, 400, "expired_token", "expired_token"},
		{"approved then expired before redemption", func(h *harness, d deviceAuth, c *http.Cookie) *httptest.ResponseRecorder {
			h.approve(c, d.UserCode)
			h.clock.Advance(login.DeviceCodeTTL)
			return h.poll(d.DeviceCode)
		}, 400, "expired_token", "expired_token"},
		{"redeemed twice", func(h *harness, d deviceAuth, c *http.Cookie) *httptest.ResponseRecorder {
			h.approve(c, d.UserCode)
			decodeTokens(h.t, h.poll(d.DeviceCode))
			return h.poll(d.DeviceCode)
		}, 400, "invalid_grant", "device_code_redeemed"},
		{"approver signed out before redemption", func(h *harness, d deviceAuth, c *http.Cookie) *httptest.ResponseRecorder {
			h.approve(c, d.UserCode)
			h.do(form("/logout", url.Values{}), c)
			return h.poll(d.DeviceCode)
		}, 400, "invalid_grant", "session_revoked"},
		{"unknown device code", func(h *harness, _ deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			return h.poll(randomString(h.t) + randomString(h.t))
		}, 400, "invalid_grant", "device_code_invalid"},
		{"another client's device code", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			h.dev.clients["other-cli"] = login.Client{ID: "other-cli", Tenant: tenant, Name: "Other", Public: true}
			return h.poll(d.DeviceCode, "client_id", "other-cli")
		}, 400, "invalid_grant", "device_code_invalid"},
		{"public client presenting a secret", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			return h.poll(d.DeviceCode, "client_secret", "hunter2")
		}, 401, "invalid_client", "client_invalid"},
		{"public client presenting a secret with HTTP Basic", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			r := form("/oauth/token", url.Values{"grant_type": {login.GrantDeviceCode}, "device_code": {d.DeviceCode}})
			r.SetBasicAuth(login.BuiltinClientID, "hunter2")
			return h.do(r)
		}, 401, "invalid_client", "client_invalid"},
		{"HTTP Basic with an empty secret is no secret", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			r := form("/oauth/token", url.Values{"grant_type": {login.GrantDeviceCode}, "device_code": {d.DeviceCode}})
			r.SetBasicAuth(login.BuiltinClientID, "")
			return h.do(r)
		}, 400, "authorization_pending", "authorization_pending"},
		{"unknown client", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			return h.poll(d.DeviceCode, "client_id", "nobody")
		}, 401, "invalid_client", "client_invalid"},
		{"no client_id", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			return h.do(form("/oauth/token", url.Values{"grant_type": {login.GrantDeviceCode}, "device_code": {d.DeviceCode}}))
		}, 400, "invalid_request", "request_invalid"},
		{"no device_code", func(h *harness, _ deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			return h.poll("")
		}, 400, "invalid_request", "request_invalid"},
		{"device_code twice in the form", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type="+url.QueryEscape(login.GrantDeviceCode)+
				"&client_id=usher-cli&device_code="+d.DeviceCode+"&device_code=x"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return h.do(r)
		}, 400, "invalid_request", "request_invalid"},
		{"unsupported grant type", func(h *harness, d deviceAuth, _ *http.Cookie) *httptest.ResponseRecorder {
			return h.poll(d.DeviceCode, "grant_type", "password")
		}, 400, "unsupported_grant_type", "grant_type_unsupported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			d := h.startDevice(nil)
			w := tc.run(h, d, h.login(alice))
			e, r := oauthAnswer(t, w)
			if w.Code != tc.status || e != tc.error || r != tc.reason {
				t.Errorf("got %d %s %s, want %d %s %s (%s)", w.Code, e, r, tc.status, tc.error, tc.reason, w.Body)
			}
			if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") != `Basic realm="usher"` {
				t.Errorf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

// TestDeviceRedeemRace: of many polls of one approved code racing,
// exactly one gets tokens (the store's race test proves the claim on
// FerretDB). Catalogue row 78.
// Catalogue row 82 (single use).
func TestDeviceRedeemRace(t *testing.T) {
	h := newHarness(t)
	d := h.startDevice(nil)
	h.approve(h.login(alice), d.UserCode)
	const n = 16
	h.dev.lookups = new(sync.WaitGroup)
	h.dev.lookups.Add(n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			codes[i] = h.poll(d.DeviceCode).Code
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, c := range codes {
		if c == http.StatusOK {
			won++
		} else if c != http.StatusBadRequest {
			t.Errorf("a losing poll answered %d", c)
		}
	}
	if won != 1 {
		t.Errorf("%d polls got tokens, want exactly 1 (%v)", won, codes)
	}
}
