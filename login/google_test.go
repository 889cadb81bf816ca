package login

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/usher-dev/usher/internal/testidp"
)

// googleStandIn is an OpenID issuer (internal/testidp) with a token
// endpoint that answers codes and refresh tokens with ID tokens of the
// claims a test chose.
type googleStandIn struct {
	idp *testidp.Provider
	key testidp.Key

	mu      sync.Mutex
	codes   map[string]googleGrant
	refresh map[string]string // refresh token → the next ID token ("": refused)
}

type googleGrant struct {
	challenge string
	idToken   string
}

const (
	googleClientID = "g-client.apps.googleusercontent.test"
	googleSecret   = "g-secret"
)

func startGoogleStandIn(t *testing.T) *googleStandIn {
	t.Helper()
	s := &googleStandIn{key: testidp.NewRSAKey(t, "g1"), codes: map[string]googleGrant{}, refresh: map[string]string{}}
	s.idp = testidp.Start(t, s.key)
	s.idp.HandleFunc("/token", s.token)
	return s
}

func (s *googleStandIn) provider(t *testing.T, allowed []string) *Google {
	t.Helper()
	g, err := NewGoogle(t.Context(), ProviderConfig{
		Tenant: "acme", Type: "google", ClientID: googleClientID, ClientSecret: googleSecret,
		RedirectURL: "https://auth.acme.test/auth/oidc/callback", IssuerURL: s.idp.URL,
	}, allowed, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// claims are the ID token claims of a Workspace user of acme.test.
func (s *googleStandIn) claims(nonce string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": s.idp.URL, "aud": googleClientID, "azp": googleClientID, "sub": "110169484474386276334",
		"email": "alice@acme.test", "email_verified": true, "hd": "acme.test", "name": "Alice",
		"nonce": nonce, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// authorize plays the browser at Google: it reads the challenge from
// authURL and returns a code for an ID token signed by signer.
func (s *googleStandIn) authorize(t *testing.T, authURL string, idToken string) string {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Query().Get("code_challenge_method") != "S256" {
		t.Fatalf("auth URL %q: no S256 challenge", authURL)
	}
	code := rand.Text()
	s.mu.Lock()
	s.codes[code] = googleGrant{challenge: u.Query().Get("code_challenge"), idToken: idToken}
	s.mu.Unlock()
	return code
}

func (s *googleStandIn) token(w http.ResponseWriter, r *http.Request) {
	fail := func(code string) {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	id, secret, ok := r.BasicAuth()
	if err := r.ParseForm(); err != nil || !ok || id != googleClientID || secret != googleSecret {
		fail("invalid_client")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	body := map[string]any{"access_token": "ya29." + rand.Text(), "token_type": "Bearer", "expires_in": 3599}
	switch r.Form.Get("grant_type") {
	case "authorization_code":
		g, ok := s.codes[r.Form.Get("code")]
		delete(s.codes, r.Form.Get("code"))
		if !ok || oauth2.S256ChallengeFromVerifier(r.Form.Get("code_verifier")) != g.challenge {
			fail("invalid_grant")
			return
		}
		rt := "1//" + rand.Text()
		s.refresh[rt] = ""
		body["id_token"], body["refresh_token"] = g.idToken, rt
	case "refresh_token":
		next := s.refresh[r.Form.Get("refresh_token")]
		if next == "" {
			fail("invalid_grant")
			return
		}
		// Google keeps the refresh token and sends no new one.
		body["id_token"] = next
	default:
		fail("unsupported_grant_type")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func TestGoogleLogin(t *testing.T) {
	s := startGoogleStandIn(t)
	other := testidp.NewRSAKey(t, "g1")
	tests := []struct {
		name    string
		allowed []string
		change  func(claims map[string]any)
		key     *testidp.Key // signer, s.key when nil
		header  map[string]any
		want    Identity
		wantErr error  // a sentinel, or nil with wantMsg
		wantMsg string // a part of the error
	}{
		{name: "workspace user", allowed: []string{"acme.test"}, want: Identity{
			Subject: "110169484474386276334", Email: "alice@acme.test", EmailVerified: true, Name: "Alice", HostedDomain: "acme.test",
		}},
		{name: "hd in upper case", allowed: []string{"acme.test"}, change: func(c map[string]any) { c["hd"] = "ACME.TEST" }, want: Identity{
			Subject: "110169484474386276334", Email: "alice@acme.test", EmailVerified: true, Name: "Alice", HostedDomain: "ACME.TEST",
		}},
		{name: "gmail when domains are not restricted", change: func(c map[string]any) { c["email"] = "alice@gmail.test"; delete(c, "hd") }, want: Identity{
			Subject: "110169484474386276334", Email: "alice@gmail.test", EmailVerified: true, Name: "Alice",
		}},
		// Catalogue row 62.
		{name: "gmail account: no hd", allowed: []string{"acme.test"}, change: func(c map[string]any) { delete(c, "hd") }, wantErr: ErrHostedDomain},
		{name: "another workspace", allowed: []string{"acme.test"}, change: func(c map[string]any) { c["hd"] = "evil.test" }, wantErr: ErrHostedDomain},
		{name: "hd a subdomain", allowed: []string{"acme.test"}, change: func(c map[string]any) { c["hd"] = "eu.acme.test" }, wantErr: ErrHostedDomain},
		// Catalogue row 60.
		{name: "email_verified false", allowed: []string{"acme.test"}, change: func(c map[string]any) { c["email_verified"] = false }, wantErr: ErrEmailUnverified},
		{name: "email_verified missing", allowed: []string{"acme.test"}, change: func(c map[string]any) { delete(c, "email_verified") }, wantErr: ErrEmailUnverified},
		{name: "no email", allowed: []string{"acme.test"}, change: func(c map[string]any) { delete(c, "email") }, wantErr: ErrEmailUnverified},
		{name: "nonce wrong", change: func(c map[string]any) { c["nonce"] = "another" }, wantErr: errGoogleNonce},
		{name: "nonce missing", change: func(c map[string]any) { delete(c, "nonce") }, wantErr: errGoogleNonce},
		{name: "bad signature", key: &other, wantMsg: "failed to verify signature"},
		{name: "unknown key id", header: map[string]any{"kid": "retired"}, wantMsg: "failed to verify signature"},
		{name: "another issuer", change: func(c map[string]any) { c["iss"] = "https://accounts.evil.test" }, wantMsg: "id token issued by a different provider"},
		{name: "another audience", change: func(c map[string]any) { c["aud"] = "other-client" }, wantMsg: "expected audience"},
		{name: "expired", change: func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, wantMsg: "token is expired"},
		{name: "no subject", change: func(c map[string]any) { delete(c, "sub") }, wantMsg: "no subject"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := s.provider(t, tc.allowed)
			verifier := oauth2.GenerateVerifier()
			authURL := g.AuthCodeURL("state-1", "nonce-1", verifier)
			claims := s.claims("nonce-1")
			if tc.change != nil {
				tc.change(claims)
			}
			key := s.key
			if tc.key != nil {
				key = *tc.key
			}
			raw := testidp.Sign(t, key, claims, tc.header)
			got, err := g.Exchange(t.Context(), s.authorize(t, authURL, raw), verifier, "nonce-1")
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Exchange: %v, want %v", err, tc.wantErr)
				}
				return
			case tc.wantMsg != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("Exchange: %v, want an error with %q", err, tc.wantMsg)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			tc.want.Issuer, tc.want.IDToken = s.idp.URL, raw
			if !strings.HasPrefix(got.RefreshToken, "1//") {
				t.Errorf("refresh token %q, want Google's", got.RefreshToken)
			}
			got.RefreshToken = ""
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGoogleAlgNone(t *testing.T) {
	s := startGoogleStandIn(t)
	g := s.provider(t, []string{"acme.test"})
	payload, err := json.Marshal(s.claims(""))
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	raw := enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
	if _, err := g.VerifyIDToken(t.Context(), raw); err == nil {
		t.Fatal("an alg none token was accepted")
	}
}

func TestGoogleAuthCodeURL(t *testing.T) {
	s := startGoogleStandIn(t)
	u, err := url.Parse(s.provider(t, []string{"acme.test"}).AuthCodeURL("st", "no", "verifier"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{
		"state": "st", "nonce": "no", "code_challenge_method": "S256", "code_challenge": oauth2.S256ChallengeFromVerifier("verifier"),
		"access_type": "offline", "prompt": "consent", "hd": "acme.test", "client_id": googleClientID,
		"scope": "openid email profile", "response_type": "code",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("auth URL %s = %q, want %q", k, q.Get(k), v)
		}
	}
	g := s.provider(t, []string{"acme.test", "corp.test"})
	if q, _ := url.ParseQuery(strings.SplitN(g.AuthCodeURL("s", "n", "v"), "?", 2)[1]); q.Has("hd") {
		t.Errorf("hd hint with two allowed domains: %q", q.Get("hd"))
	}
	if g.Type() != "google" || g.Name() != "Google" || g.Tenant() != "acme" || g.Issuer() != s.idp.URL || g.EndSessionURL("a", "b") != "" {
		t.Errorf("type %q name %q tenant %q issuer %q", g.Type(), g.Name(), g.Tenant(), g.Issuer())
	}
}

// Catalogue row 62.
func TestGoogleVerifyIDToken(t *testing.T) {
	s := startGoogleStandIn(t)
	g := s.provider(t, []string{"acme.test"})
	c := s.claims("")
	id, err := g.VerifyIDToken(t.Context(), testidp.Sign(t, s.key, c, nil))
	if err != nil || id.Subject != "110169484474386276334" || id.Email != "alice@acme.test" {
		t.Fatalf("VerifyIDToken: %+v, %v", id, err)
	}
	delete(c, "hd")
	if _, err := g.VerifyIDToken(t.Context(), testidp.Sign(t, s.key, c, nil)); !errors.Is(err, ErrHostedDomain) {
		t.Fatalf("a token without hd: %v, want %v", err, ErrHostedDomain)
	}
}

func TestGoogleRefresh(t *testing.T) {
	s := startGoogleStandIn(t)
	g := s.provider(t, []string{"acme.test"})
	verifier := oauth2.GenerateVerifier()
	code := s.authorize(t, g.AuthCodeURL("s", "n", verifier), testidp.Sign(t, s.key, s.claims("n"), nil))
	id, err := g.Exchange(t.Context(), code, verifier, "n")
	if err != nil {
		t.Fatal(err)
	}

	next := s.claims("")
	next["name"] = "Alice Renamed"
	s.mu.Lock()
	s.refresh[id.RefreshToken] = testidp.Sign(t, s.key, next, nil)
	s.mu.Unlock()
	got, err := g.Refresh(t.Context(), id.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Alice Renamed" || got.Subject != id.Subject || got.RefreshToken != id.RefreshToken {
		t.Errorf("refresh: name %q subject %q refresh token kept %v", got.Name, got.Subject, got.RefreshToken == id.RefreshToken)
	}

	// Catalogue row 42: the account left the Workspace.
	moved := maps.Clone(next)
	delete(moved, "hd")
	s.mu.Lock()
	s.refresh[id.RefreshToken] = testidp.Sign(t, s.key, moved, nil)
	s.mu.Unlock()
	if _, err := g.Refresh(t.Context(), id.RefreshToken); !errors.Is(err, ErrHostedDomain) {
		t.Errorf("refresh without hd: %v, want %v", err, ErrHostedDomain)
	}

	// Google refuses the token (revoked): the family ends.
	s.mu.Lock()
	delete(s.refresh, id.RefreshToken)
	s.mu.Unlock()
	for _, rt := range []string{id.RefreshToken, ""} {
		if _, err := g.Refresh(t.Context(), rt); !errors.Is(err, ErrIdPRefused) {
			t.Errorf("refresh with %q refused by Google: %v, want %v", rt, err, ErrIdPRefused)
		}
	}
}

func TestNewGoogleRefusesBadConfig(t *testing.T) {
	s := startGoogleStandIn(t)
	if _, err := NewGoogle(t.Context(), ProviderConfig{IssuerURL: s.idp.URL}, nil, nil); err == nil ||
		!strings.Contains(err.Error(), "client id is empty") || !strings.Contains(err.Error(), "redirect URL is empty") {
		t.Errorf("empty config: %v", err)
	}
	s.idp.SetDown(true)
	if _, err := NewGoogle(t.Context(), ProviderConfig{ClientID: "c", ClientSecret: "s", RedirectURL: "https://a.test/cb", IssuerURL: s.idp.URL}, nil, nil); err == nil ||
		!strings.Contains(err.Error(), "discovery") {
		t.Errorf("issuer down: %v", err)
	}
}
