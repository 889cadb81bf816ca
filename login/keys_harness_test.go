package login_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/testclock"
	"github.com/usher-dev/usher/login"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// keysHarness is the login app on the real embedded store (FerretDB), as
// usher serve runs it, with the fake IdP; checks run through a real
// Authorizer on the same store.
type keysHarness struct {
	*harness
	store *store.Store
}

// Seats of the keys tests: alice's groups engineers and ops give her dev
// and admin.
func newKeysHarness(t *testing.T) *keysHarness {
	t.Helper()
	clock := testclock.New(epoch)
	st := storetest.Open(t, clock.Now)
	ctx := t.Context()
	if _, err := st.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSpace(ctx, tenant, "web"); err != nil {
		t.Fatal(err)
	}
	for _, s := range testSeats {
		if _, err := st.CreateSeat(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := st.RotateSigningKey(ctx, tenant, 0); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: clock, seal: storetest.MasterKey(t), cfg: testConfig()}
	h.idp = startFakeIdP(t, clock.Now)
	var err error
	h.prov, err = login.NewOIDC(login.OIDCConfig{
		Tenant: tenant, Name: "Acme SSO", IssuerURL: h.idp.URL, ClientID: h.idp.ClientID, ClientSecret: h.idp.Secret,
		RedirectURL: h.cfg.WithDefaults().RedirectURL, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.app, err = login.New(h.cfg, login.Deps{
		Sessions: st, RefreshTokens: st, Users: st, Seats: st, Once: st, SigningKeys: st, APIKeys: st, DeviceCodes: st, Clients: st,
		Providers: func(_ context.Context, tn string) ([]login.Provider, error) {
			if tn != tenant {
				return nil, nil
			}
			return []login.Provider{h.prov}, nil
		},
		Tokens: authz.DefaultTokenConfig(), Seal: h.seal, Now: clock.Now,
		Log: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.h = h.app.Handler()
	return &keysHarness{harness: h, store: st}
}

var (
	keyAlice = idpUser{Sub: "alice-sub", Email: "Alice@acme.test", EmailVerified: true, Groups: []string{"engineers", "ops"}}
	keyBob   = idpUser{Sub: "bob-sub", Email: "bob@acme.test", EmailVerified: true, Groups: []string{"engineers"}}
)

// cred is how a request authenticates: a session cookie or a Bearer
// access token.
type cred struct {
	cookie *http.Cookie
	bearer string
}

func (h *keysHarness) api(c cred, method, target string, body any) *httptest.ResponseRecorder {
	h.t.Helper()
	var r *http.Request
	if body != nil {
		r = jsonPost(target, body)
		r.Method = method
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	if c.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	return h.do(r, c.cookie)
}

type created struct {
	ID, Name, Key string
	Seats         []string
	ExpiresAt     string `json:"expires_at"`
}

func (h *keysHarness) create(c cred, body map[string]any) created {
	h.t.Helper()
	w := h.api(c, http.MethodPost, "/api/keys", body)
	if w.Code != http.StatusCreated {
		h.t.Fatalf("POST /api/keys %v: %d %s", body, w.Code, w.Body)
	}
	var k created
	if err := json.Unmarshal(w.Body.Bytes(), &k); err != nil {
		h.t.Fatal(err)
	}
	return k
}

type listed struct {
	Keys []struct {
		ID, Name, State string
		Seats           []string
	}
}

func (h *keysHarness) list(c cred) (listed, string) {
	h.t.Helper()
	w := h.api(c, http.MethodGet, "/api/keys", nil)
	if w.Code != http.StatusOK {
		h.t.Fatalf("GET /api/keys: %d %s", w.Code, w.Body)
	}
	var l listed
	if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil {
		h.t.Fatal(err)
	}
	return l, w.Body.String()
}

// check runs Check for GET /me (any identity) or path with key in
// x-api-key, through a fresh Authorizer (no cache) on the store.
func (h *keysHarness) check(key, path string) authz.Decision {
	h.t.Helper()
	rules, err := authz.ParseRules("keys", []byte("default: deny\nrules:\n  - path: /me\n    authenticated: true\n  - path: /web/**\n    permission: read\n    space: web\n  - path: /ops/**\n    permission: admin\n    space: ops\n"))
	if err != nil {
		h.t.Fatal(err)
	}
	a, err := authz.New(authz.Config{Rules: rules, Keys: h.store, Seats: h.store, Usage: h.store, SigningKeys: h.store,
		Cache: authz.DefaultCacheConfig(), Now: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	defer a.Close()
	return a.Check(h.t.Context(), &authz.Request{Method: http.MethodGet, Host: "api.acme.test", Path: path,
		Headers: map[string]string{authz.HeaderAPIKey: key}})
}

var regexpKey = regexp.MustCompile(`sk_[0-9A-Za-z]+`)

// page reads GET /keys and its CSRF token.
func (h *keysHarness) page(c *http.Cookie) (string, string) {
	h.t.Helper()
	w := h.do(httptest.NewRequest(http.MethodGet, "/keys", nil), c)
	if w.Code != http.StatusOK {
		h.t.Fatalf("GET /keys: %d %s", w.Code, w.Body)
	}
	m := csrfField.FindStringSubmatch(w.Body.String())
	if m == nil {
		h.t.Fatalf("no CSRF token on the page:\n%s", w.Body)
	}
	return w.Body.String(), m[1]
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var b struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Description == "" {
		return "(not an error object: " + strings.TrimSpace(w.Body.String()) + ")"
	}
	return b.Error
}

// accessSID reads the sid of an access token (verified by the app
// already; here only read).
func (h *keysHarness) accessSID(t *testing.T, at string) string {
	t.Helper()
	var c authz.AccessClaims
	if _, _, err := jwt.NewParser().ParseUnverified(at, &c); err != nil {
		t.Fatal(err)
	}
	return c.SessionID
}
