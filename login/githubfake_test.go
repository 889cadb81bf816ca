package login

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"
)

// fakeGitHub is a stand-in for GitHub (Enterprise Server's URL layout:
// /login/oauth/… and the REST API under /api/v3) with the shapes of its
// OAuth endpoints and of the REST resources usher reads. The authorize
// endpoint logs in the user named by the extra query parameter "login".
type fakeGitHub struct {
	srv *httptest.Server

	mu       sync.Mutex
	users    map[int64]*fakeGitHubUser
	codes    map[string]fakeGitHubCode
	tokens   map[string]fakeGitHubToken // access token → grant
	refresh  map[string]fakeGitHubToken // refresh token → grant
	pageSize int
	// expiring: issue GitHub App style expiring tokens with a refresh
	// token.
	expiring bool
	// nextLink, when set, is sent as the Link rel="next" of /user/teams.
	nextLink string
}

type fakeGitHubUser struct {
	ID           int64
	Login, Name  string
	ProfileEmail *string // /user's email: null when hidden
	Emails       []gitHubEmail
	Orgs         []string
	Teams        []string // org/slug
}

type fakeGitHubCode struct {
	user        int64
	challenge   string
	redirectURI string
	scopes      []string
}

type fakeGitHubToken struct {
	user   int64
	scopes []string
}

const (
	fakeGitHubClientID = "gh-client"
	fakeGitHubSecret   = "gh-secret"
	fakeGitHubRedirect = "https://auth.acme.test/auth/oidc/callback"
)

func startFakeGitHub(t *testing.T, users ...*fakeGitHubUser) *fakeGitHub {
	t.Helper()
	f := &fakeGitHub{
		users:    map[int64]*fakeGitHubUser{},
		codes:    map[string]fakeGitHubCode{},
		tokens:   map[string]fakeGitHubToken{},
		refresh:  map[string]fakeGitHubToken{},
		pageSize: 100,
	}
	for _, u := range users {
		f.users[u.ID] = u
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", f.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", f.token)
	mux.HandleFunc("GET /api/v3/user", f.api("", f.user))
	mux.HandleFunc("GET /api/v3/user/emails", f.api("user:email", f.emails))
	mux.HandleFunc("GET /api/v3/user/orgs", f.api("read:org", f.orgs))
	mux.HandleFunc("GET /api/v3/user/teams", f.api("read:org", f.teams))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// config is a provider config pointing at the stand-in.
func (f *fakeGitHub) config() ProviderConfig {
	return ProviderConfig{
		Tenant:       "acme",
		Type:         "github",
		ClientID:     fakeGitHubClientID,
		ClientSecret: fakeGitHubSecret,
		RedirectURL:  fakeGitHubRedirect,
		AuthURL:      f.srv.URL + "/login/oauth/authorize",
		TokenURL:     f.srv.URL + "/login/oauth/access_token",
		APIURL:       f.srv.URL + "/api/v3",
	}
}

// login follows authURL as user id would in a browser and returns the
// code GitHub redirects back with (after checking state and the
// redirect).
func (f *fakeGitHub) login(t *testing.T, authURL string, id int64) string {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL + "&login=" + strconv.FormatInt(id, 10))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %s", resp.Status)
	}
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(back.String(), fakeGitHubRedirect+"?") || back.Query().Get("state") != "state-1" {
		t.Fatalf("authorize redirected to %q", resp.Header.Get("Location"))
	}
	return back.Query().Get("code")
}

func (f *fakeGitHub) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, _ := strconv.ParseInt(q.Get("login"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case q.Get("client_id") != fakeGitHubClientID:
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "PKCE S256 expected", http.StatusBadRequest)
		return
	case f.users[id] == nil:
		http.Error(w, "no such user", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	f.codes[code] = fakeGitHubCode{user: id, challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri"), scopes: strings.Fields(q.Get("scope"))}
	back := q.Get("redirect_uri") + "?" + url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, back, http.StatusFound)
}

// token answers as GitHub does: errors with status 200 and an error
// field; JSON when asked for it.
func (f *fakeGitHub) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fail := func(code string) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": code})
	}
	if r.Form.Get("client_id") != fakeGitHubClientID || r.Form.Get("client_secret") != fakeGitHubSecret {
		fail("incorrect_client_credentials")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var grant fakeGitHubToken
	switch r.Form.Get("grant_type") {
	case "authorization_code", "":
		c, ok := f.codes[r.Form.Get("code")]
		delete(f.codes, r.Form.Get("code")) // a code is usable once
		if !ok || c.redirectURI != r.Form.Get("redirect_uri") {
			fail("bad_verification_code")
			return
		}
		if oauth2.S256ChallengeFromVerifier(r.Form.Get("code_verifier")) != c.challenge {
			fail("invalid_grant")
			return
		}
		grant = fakeGitHubToken{user: c.user, scopes: c.scopes}
	case "refresh_token":
		g, ok := f.refresh[r.Form.Get("refresh_token")]
		delete(f.refresh, r.Form.Get("refresh_token")) // GitHub rotates refresh tokens
		if !ok {
			fail("bad_refresh_token")
			return
		}
		grant = g
	default:
		fail("unsupported_grant_type")
		return
	}
	access := "gho_" + rand.Text()
	f.tokens[access] = grant
	body := map[string]any{"access_token": access, "token_type": "bearer", "scope": strings.Join(grant.scopes, ",")}
	if f.expiring {
		rt := "ghr_" + rand.Text()
		f.refresh[rt] = grant
		body["refresh_token"] = rt
		body["expires_in"] = 28800
	}
	if r.Header.Get("Accept") == "application/json" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	form := url.Values{}
	for k, v := range body {
		form.Set(k, fmt.Sprint(v))
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
	_, _ = w.Write([]byte(form.Encode()))
}

// api authenticates a REST request and checks the token's scope.
func (f *fakeGitHub) api(scope string, h func(http.ResponseWriter, *http.Request, *fakeGitHubUser)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		access, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		grant, known := f.tokens[access]
		u := f.users[grant.user]
		f.mu.Unlock()
		if !ok || !known || u == nil {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`))
			return
		}
		if scope != "" && !slices.Contains(grant.scopes, scope) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"message":"Resource not accessible by integration"}`))
			return
		}
		h(w, r, u)
	}
}

func (f *fakeGitHub) user(w http.ResponseWriter, _ *http.Request, u *fakeGitHubUser) {
	_ = json.NewEncoder(w).Encode(map[string]any{
		"login": u.Login, "id": u.ID, "node_id": "U_" + u.Login, "type": "User",
		"name": u.Name, "email": u.ProfileEmail,
	})
}

func (f *fakeGitHub) emails(w http.ResponseWriter, r *http.Request, u *fakeGitHubUser) {
	out := []map[string]any{}
	for _, e := range u.Emails {
		out = append(out, map[string]any{"email": e.Email, "primary": e.Primary, "verified": e.Verified, "visibility": "private"})
	}
	f.paginate(w, r, out)
}

func (f *fakeGitHub) orgs(w http.ResponseWriter, r *http.Request, u *fakeGitHubUser) {
	out := []map[string]any{}
	for _, o := range u.Orgs {
		out = append(out, map[string]any{"login": o, "id": len(o)})
	}
	f.paginate(w, r, out)
}

func (f *fakeGitHub) teams(w http.ResponseWriter, r *http.Request, u *fakeGitHubUser) {
	out := []map[string]any{}
	for _, t := range u.Teams {
		org, slug, _ := strings.Cut(t, "/")
		out = append(out, map[string]any{"slug": slug, "name": slug, "organization": map[string]any{"login": org}})
	}
	f.mu.Lock()
	next := f.nextLink
	f.mu.Unlock()
	if next != "" {
		w.Header().Set("Link", `<`+next+`>; rel="next"`)
	}
	f.paginate(w, r, out)
}

// paginate answers one page as GitHub does: page and per_page in the
// query (per_page capped at the stand-in's page size), a Link header
// with rel="next" while there is more.
func (f *fakeGitHub) paginate(w http.ResponseWriter, r *http.Request, items []map[string]any) {
	f.mu.Lock()
	size := f.pageSize
	f.mu.Unlock()
	q := r.URL.Query()
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n < size {
		size = n
	}
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	from := min((page-1)*size, len(items))
	to := min(from+size, len(items))
	if to < len(items) && w.Header().Get("Link") == "" {
		q.Set("page", strconv.Itoa(page+1))
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?%s>; rel="next"`, f.srv.URL, r.URL.Path, q.Encode()))
	}
	_ = json.NewEncoder(w).Encode(items[from:to])
}

// set changes a user while the test runs.
func (f *fakeGitHub) set(id int64, change func(*fakeGitHubUser)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f.users[id])
}

// revokeAll makes every access token GitHub issued unknown (the person
// revoked the app).
func (f *fakeGitHub) revokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
	clear(f.refresh)
}
