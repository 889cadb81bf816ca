package testidp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/usher-dev/usher/internal/testidp"
)

const (
	callback   = "http://127.0.0.1:1/auth/oidc/callback"
	signedOut  = "http://127.0.0.1:1/signed-out"
	scopesWant = "openid email profile offline_access"
)

type idClaims struct {
	Subject       string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
	Nonce         string   `json:"nonce"`
}

// loginClient is a relying party of the real provider: discovery,
// verifier and OAuth configuration.
type loginClient struct {
	real     *testidp.Real
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
}

func newLoginClient(t *testing.T, real *testidp.Real) *loginClient {
	t.Helper()
	p, err := oidc.NewProvider(t.Context(), real.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &loginClient{
		real:     real,
		provider: p,
		verifier: p.Verifier(&oidc.Config{ClientID: testidp.RealLoginClientID}),
		oauth: oauth2.Config{
			ClientID: testidp.RealLoginClientID, ClientSecret: testidp.RealLoginClientSecret,
			RedirectURL: callback, Endpoint: p.Endpoint(), Scopes: strings.Fields(scopesWant),
		},
	}
}

func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// login runs the code flow for user in browser and returns the tokens
// and the verified ID token's claims.
func (c *loginClient) login(t *testing.T, browser *http.Client, user string) (*oauth2.Token, idClaims) {
	t.Helper()
	state, nonce, verifier := "state-"+user, "nonce-"+user, oauth2.GenerateVerifier()
	authURL := c.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	back, err := c.real.LoginForm(browser, authURL, user)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(back)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if !strings.HasPrefix(back, callback+"?") || q.Get("state") != state || q.Get("iss") != c.real.Issuer || q.Get("code") == "" {
		t.Fatalf("redirected back to %q: want %s with the state, the iss parameter and a code", back, callback)
	}
	tok, err := c.oauth.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	claims := c.verify(t, tok)
	if claims.Nonce != nonce {
		t.Errorf("nonce %q, want %q", claims.Nonce, nonce)
	}
	return tok, claims
}

func (c *loginClient) verify(t *testing.T, tok *oauth2.Token) idClaims {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.verifier.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims idClaims
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func (c *loginClient) refresh(ctx context.Context, tok *oauth2.Token) (*oauth2.Token, error) {
	expired := *tok
	expired.Expiry = expired.Expiry.Add(-24 * 3600 * 1e9)
	return c.oauth.TokenSource(ctx, &expired).Token()
}

// TestRealLoginCodeFlow runs the whole authorization code flow against
// the real provider over plain HTTP: authorize, login form, consent,
// redirect with a code, token endpoint, ID token with the email and
// groups claims, refresh, and RP-initiated logout.
func TestRealLoginCodeFlow(t *testing.T) {
	real := testidp.StartRealLogin(t, testidp.LoginOptions{RedirectURIs: []string{callback}, PostLogoutRedirectURIs: []string{signedOut}})
	c := newLoginClient(t, real)

	browser := newBrowser(t)
	tok, claims := c.login(t, browser, testidp.RealAlice)
	want := idClaims{Subject: "alice", Email: "alice@acme.test", EmailVerified: true, Name: "Alice Archer", Groups: []string{"editors"}, Nonce: "nonce-alice"}
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("alice's ID token (-want +got):\n%s", diff)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}

	// Refresh: a new ID token with the groups as they are now.
	real.SetGroups(t, testidp.RealAlice, "editors", "admins")
	fresh, err := c.refresh(t.Context(), tok)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if got := c.verify(t, fresh).Groups; !cmp.Equal(got, []string{"editors", "admins"}) {
		t.Errorf("groups after refresh: %v", got)
	}

	// The provider remembers the session: a second login needs no form.
	if _, again := c.login(t, browser, "ignored"); again.Subject != "alice" {
		t.Errorf("second login: subject %q, want alice from the provider's session", again.Subject)
	}

	// RP-initiated logout returns to the post-logout URI with the state.
	var disc struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := c.provider.Claims(&disc); err != nil || disc.EndSession == "" {
		t.Fatalf("no end_session_endpoint in discovery: %v", err)
	}
	end := disc.EndSession + "?" + url.Values{
		"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {signedOut}, "state": {"bye"},
	}.Encode()
	back, err := real.Logout(browser, end)
	if err != nil {
		t.Fatal(err)
	}
	if back != signedOut+"?state=bye" {
		t.Errorf("after logout: redirected to %q, want %s?state=bye", back, signedOut)
	}
	// Signed out at the provider: the login form is back.
	if _, claims := c.login(t, browser, testidp.RealBob); claims.Subject != "bob" {
		t.Errorf("after logout, logged in as %q, want bob", claims.Subject)
	}
}

// TestRealLoginUsers logs the provider's users in and checks what it
// refuses.
func TestRealLoginUsers(t *testing.T) {
	real := testidp.StartRealLogin(t, testidp.LoginOptions{RedirectURIs: []string{callback}})
	c := newLoginClient(t, real)
	tests := []struct {
		user string
		want idClaims
	}{
		{"bob", idClaims{Subject: "bob", Email: "bob@acme.test", EmailVerified: true, Name: "Bob Baker", Groups: []string{"viewers"}, Nonce: "nonce-bob"}},
		{"mallory@evil.test", idClaims{Subject: "mallory", Email: "mallory@evil.test", EmailVerified: true, Name: "Mallory Moe", Groups: []string{"editors"}, Nonce: "nonce-mallory@evil.test"}},
		{"carol", idClaims{Subject: "carol", Email: "carol@acme.test", EmailVerified: false, Name: "Carol Clay", Groups: []string{"viewers"}, Nonce: "nonce-carol"}},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			_, got := c.login(t, newBrowser(t), tc.user)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ID token (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("refusals", func(t *testing.T) { testRealLoginRefusals(t, real, c) })
}

func testRealLoginRefusals(t *testing.T, real *testidp.Real, c *loginClient) {
	authURL := c.oauth.AuthCodeURL("s", oidc.Nonce("n"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	if _, err := real.LoginFormPassword(newBrowser(t), authURL, testidp.RealAlice, "wrong"); !errors.Is(err, testidp.ErrLoginRefused) {
		t.Errorf("wrong password: %v, want %v", err, testidp.ErrLoginRefused)
	}
	if _, err := real.LoginForm(newBrowser(t), authURL, "nobody"); !errors.Is(err, testidp.ErrLoginRefused) {
		t.Errorf("unknown user: %v, want %v", err, testidp.ErrLoginRefused)
	}
	// PKCE is required: the provider sends the browser back with an
	// error and no code.
	back, err := real.LoginForm(newBrowser(t), c.oauth.AuthCodeURL("s"), testidp.RealAlice)
	if u, perr := url.Parse(back); err != nil || perr != nil || u.Query().Get("error") != "invalid_request" || u.Query().Has("code") {
		t.Errorf("a request without PKCE: back to %q, %v; want error=invalid_request", back, err)
	}

	// A disabled account's refresh token is refused (invalid_grant).
	tok, _ := c.login(t, newBrowser(t), testidp.RealBob)
	real.Disable(t, testidp.RealBob)
	_, err = c.refresh(t.Context(), tok)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refresh of a disabled account: %v, want invalid_grant", err)
	}
	real.Enable(t, testidp.RealBob)
	if _, err := c.refresh(t.Context(), tok); err != nil {
		t.Errorf("refresh after enabling again: %v", err)
	}
}
