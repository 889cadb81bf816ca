package login_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/usher-dev/usher/internal/testidp"
)

// fakeIdP is a minimal OpenID provider over real HTTP on loopback, with
// keys and signing from internal/testidp: discovery, JWKS, a token
// endpoint for the authorization code (PKCE S256 checked) and refresh
// grants, and an end_session_endpoint. The test plays the browser at the
// authorization endpoint (issueCode), and shapes the ID tokens the token
// endpoint returns, to send what no honest IdP would.
type fakeIdP struct {
	t        testing.TB
	URL      string
	ClientID string
	Secret   string
	Key      testidp.Key
	now      func() time.Time

	// IssParam makes discovery say the iss parameter is always sent.
	IssParam bool

	mu       sync.Mutex
	codes    map[string]codeGrant
	refresh  map[string]idpUser // IdP refresh token → user
	users    map[string]idpUser // by sub: current groups for refresh
	refuse   bool               // the refresh grant answers invalid_grant
	tokenHit int
}

// idpUser is a person at the IdP. Shape, when set, edits the ID token's
// claims (or replaces the token) before it is signed.
type idpUser struct {
	Sub           string
	Email         string
	EmailVerified any // true, false, "true", or nil (absent)
	Groups        []string
	Shape         func(claims map[string]any)
	Raw           func(claims map[string]any) string // the whole token, for forgeries
}

type codeGrant struct {
	user      idpUser
	nonce     string
	challenge string
	redirect  string
}

func startFakeIdP(t testing.TB, now func() time.Time) *fakeIdP {
	t.Helper()
	p := &fakeIdP{
		t: t, ClientID: "usher-web", Secret: "usher-web-secret", Key: testidp.NewRSAKey(t, "k1"), now: now,
		codes: map[string]codeGrant{}, refresh: map[string]idpUser{}, users: map[string]idpUser{},
	}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *fakeIdP) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                p.URL,
			"authorization_endpoint":                p.URL + "/auth",
			"token_endpoint":                        p.URL + "/token",
			"jwks_uri":                              p.URL + "/jwks",
			"end_session_endpoint":                  p.URL + "/session/end",
			"scopes_supported":                      []string{"openid", "email", "profile", "offline_access", "groups"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"authorization_response_iss_parameter_supported": p.IssParam,
		})
	case "/jwks":
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{p.Key.Public()}})
	case "/token":
		p.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

func oauthError(w http.ResponseWriter, code string) {
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func (p *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokenHit++
	id, secret, ok := r.BasicAuth()
	if !ok || id != p.ClientID || secret != p.Secret {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request")
		return
	}
	var (
		user  idpUser
		nonce string
	)
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		// Codes stay valid after use here: usher's own single-use check
		// is what a replay test must meet.
		g, ok := p.codes[r.PostForm.Get("code")]
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || g.redirect != r.PostForm.Get("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			oauthError(w, "invalid_grant")
			return
		}
		user, nonce = g.user, g.nonce
	case "refresh_token":
		u, ok := p.refresh[r.PostForm.Get("refresh_token")]
		if !ok || p.refuse {
			oauthError(w, "invalid_grant")
			return
		}
		delete(p.refresh, r.PostForm.Get("refresh_token"))
		user = p.users[u.Sub]
	default:
		oauthError(w, "unsupported_grant_type")
		return
	}
	rt := randomString(p.t)
	p.refresh[rt] = user
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": randomString(p.t), "token_type": "Bearer", "expires_in": 300,
		"refresh_token": rt, "id_token": p.idToken(user, nonce),
	})
}

func (p *fakeIdP) idToken(u idpUser, nonce string) string {
	now := p.now()
	c := map[string]any{
		"iss": p.URL, "sub": u.Sub, "aud": p.ClientID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"email": u.Email, "groups": u.Groups,
	}
	if u.EmailVerified != nil {
		c["email_verified"] = u.EmailVerified
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	if u.Shape != nil {
		u.Shape(c)
	}
	if u.Raw != nil {
		return u.Raw(c)
	}
	return testidp.Sign(p.t, p.Key, c, nil)
}

// issueCode plays the authorization endpoint: it reads the request usher
// sent the browser to and returns a code for user, with the state and
// iss the IdP would put on the redirect back.
func (p *fakeIdP) issueCode(t testing.TB, authURL *url.URL, u idpUser) (code string, q url.Values) {
	t.Helper()
	aq := authURL.Query()
	// Catalogue row 52: S256 only; the token endpoint checks the verifier.
	if aq.Get("code_challenge_method") != "S256" || aq.Get("response_type") != "code" || aq.Get("client_id") != p.ClientID {
		t.Fatalf("authorization request %s: want code flow, PKCE S256, our client", authURL)
	}
	code = randomString(t)
	p.mu.Lock()
	p.codes[code] = codeGrant{user: u, nonce: aq.Get("nonce"), challenge: aq.Get("code_challenge"), redirect: aq.Get("redirect_uri")}
	p.users[u.Sub] = u
	p.mu.Unlock()
	return code, url.Values{"code": {code}, "state": {aq.Get("state")}, "iss": {p.URL}}
}

// setGroups changes a user's groups as the next refresh reports them.
func (p *fakeIdP) setGroups(sub string, groups ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.users[sub]
	u.Groups = groups
	p.users[sub] = u
}

func (p *fakeIdP) setRefuse(v bool) {
	p.mu.Lock()
	p.refuse = v
	p.mu.Unlock()
}

// giveRefresh registers an IdP refresh token for user, as a login would.
func (p *fakeIdP) giveRefresh(u idpUser) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	rt := randomString(p.t)
	p.refresh[rt] = u
	p.users[u.Sub] = u
	return rt
}
