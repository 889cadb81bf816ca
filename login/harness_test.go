package login_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/seal"
	"github.com/usher-dev/usher/internal/testclock"
	"github.com/usher-dev/usher/login"
)

const (
	tenant   = "acme"
	loginURL = "https://auth.root.test"
)

var epoch = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func randomString(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// harness is a login app on https://auth.root.test driven through its
// handler (no browser: the test carries the cookies), with a fake IdP
// over real HTTP, the in-memory store and a fake clock.
type harness struct {
	t     *testing.T
	app   *login.App
	h     http.Handler
	idp   *fakeIdP
	prov  *login.OIDC
	st    *memStore
	dev   *memDevice
	clock *testclock.Clock
	seal  seal.Key
	cfg   login.Config
	extra []login.Provider
}

func testConfig() login.Config {
	return login.Config{
		RootDomain: "root.test", LoginURL: loginURL, SessionKey: []byte(strings.Repeat("k", 32)),
		AllowedDomains: []string{"acme.test"}, AllowAllUsers: true,
		Tenant: tenant, ProviderType: "oidc", ClientID: "usher-web", ClientSecret: "usher-web-secret",
		IssuerURL: "https://idp.example",
	}
}

var testSeats = []authz.Seat{
	{Tenant: tenant, Name: "admin", Groups: []string{"ops"}, Grants: []authz.Grant{{Space: "*", Permissions: []string{"*"}}}},
	{Tenant: tenant, Name: "dev", Groups: []string{"engineers"}, Grants: []authz.Grant{{Space: "web", Permissions: []string{"read", "write"}}}},
}

func newHarness(t *testing.T, edit ...func(*login.Config)) *harness {
	t.Helper()
	cfg := testConfig()
	for _, e := range edit {
		e(&cfg)
	}
	clock := testclock.New(epoch)
	key, err := seal.ParseKey(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("m", 32))))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: clock, seal: key, cfg: cfg}
	h.idp = startFakeIdP(t, clock.Now)
	h.st = newMemStore(authz.SigningKey{ID: "abcdefghijklmnop", Tenant: tenant, Secret: []byte(strings.Repeat("s", 32))}, testSeats...)
	h.dev = newMemDevice()
	h.prov, err = login.NewOIDC(login.OIDCConfig{
		Tenant: tenant, Name: "Acme SSO", IssuerURL: h.idp.URL, ClientID: h.idp.ClientID, ClientSecret: h.idp.Secret,
		RedirectURL: cfg.WithDefaults().RedirectURL, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.app, err = login.New(cfg, login.Deps{
		Sessions: h.st, RefreshTokens: h.st, Users: h.st, Seats: h.st, Once: h.st, SigningKeys: h.st,
		DeviceCodes: h.dev, Clients: h.dev,
		Providers: func(_ context.Context, tn string) ([]login.Provider, error) {
			if tn != tenant {
				return nil, nil
			}
			return append([]login.Provider{h.prov}, h.extra...), nil
		},
		Tokens: authz.DefaultTokenConfig(), Seal: key, Now: clock.Now,
		Log: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.h = h.app.Handler()
	return h
}

// do serves one request with the given cookies.
func (h *harness) do(r *http.Request, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	h.t.Helper()
	for _, c := range cookies {
		if c != nil {
			r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	return w
}

func form(target string, v url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func cookieNamed(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// start posts the login form for the provider type and returns the flow
// cookie and the authorization URL the browser is sent to.
func (h *harness) start(typ, next string) (*http.Cookie, *url.URL) {
	h.t.Helper()
	w := h.do(form("/auth/oidc/login", url.Values{"provider": {typ}, "next": {next}, "tenant": {tenant}}))
	if w.Code != http.StatusFound {
		h.t.Fatalf("POST /auth/oidc/login: %d %s", w.Code, w.Body)
	}
	fc := cookieNamed(w, "__Host-usher_flow")
	if fc == nil {
		h.t.Fatalf("no flow cookie in %v", w.Result().Header["Set-Cookie"])
	}
	u, err := url.Parse(w.Header().Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	return fc, u
}

// callback returns to the callback with query and cookies, asking for
// JSON so that the reason is easy to read.
func (h *harness) callback(q url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	h.t.Helper()
	r := httptest.NewRequest(http.MethodGet, login.CallbackPath+"?"+q.Encode(), nil)
	r.Header.Set("Accept", "application/json")
	return h.do(r, cookies...)
}

var alice = idpUser{Sub: "alice-sub", Email: "alice@acme.test", EmailVerified: true, Groups: []string{"engineers"}}

// login runs a whole login of u and returns the session cookie.
func (h *harness) login(u idpUser) *http.Cookie {
	h.t.Helper()
	fc, au := h.start("oidc", "/")
	_, q := h.idp.issueCode(h.t, au, u)
	w := h.callback(q, fc)
	if w.Code != http.StatusFound {
		h.t.Fatalf("callback: %d %s", w.Code, w.Body)
	}
	c := cookieNamed(w, login.DefaultCookieName)
	if c == nil {
		h.t.Fatal("no session cookie")
	}
	return c
}

// reason reads the reason code of an error answer (JSON).
func reason(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	var b struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		return "(not JSON: " + w.Body.String() + ")"
	}
	return b.Reason
}

func (h *harness) whoami(cookies ...*http.Cookie) *httptest.ResponseRecorder {
	return h.do(httptest.NewRequest(http.MethodGet, "/whoami", nil), cookies...)
}
