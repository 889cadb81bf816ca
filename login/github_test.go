package login

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/oauth2"
)

func ptr[T any](v T) *T { return &v }

// The people of the GitHub stand-in.
func gitHubPeople() []*fakeGitHubUser {
	return []*fakeGitHubUser{
		{ID: 1001, Login: "alice", Name: "Alice", ProfileEmail: ptr("alice@acme.test"),
			Emails: []gitHubEmail{{Email: "alice@acme.test", Primary: true, Verified: true}},
			Orgs:   []string{"Acme"}, Teams: []string{"Acme/editors", "Acme/Platform-Team"}},
		// Email hidden from the profile: /user says null.
		{ID: 1002, Login: "bob", Name: "", ProfileEmail: nil,
			Emails: []gitHubEmail{{Email: "bob@personal.test", Verified: true}, {Email: "bob@acme.test", Primary: true, Verified: true}},
			Orgs:   []string{"acme"}},
		// Catalogue row 61: the victim's address added unverified and
		// made primary; a verified address that is not primary.
		{ID: 1003, Login: "mallory", ProfileEmail: ptr("alice@acme.test"),
			Emails: []gitHubEmail{{Email: "alice@acme.test", Primary: true, Verified: false}, {Email: "mallory@evil.test", Verified: true}},
			Orgs:   []string{"acme"}, Teams: []string{"acme/editors"}},
		// In another org, whose team has an allowed team's slug.
		{ID: 1004, Login: "eve", ProfileEmail: ptr("eve@acme.test"),
			Emails: []gitHubEmail{{Email: "eve@acme.test", Primary: true, Verified: true}},
			Orgs:   []string{"evilcorp"}, Teams: []string{"evilcorp/editors"}},
		// No primary address at all.
		{ID: 1005, Login: "nobody", Emails: []gitHubEmail{{Email: "n@acme.test", Verified: true}}},
	}
}

func newTestGitHub(t *testing.T, f *fakeGitHub, change func(*ProviderConfig)) *GitHub {
	t.Helper()
	cfg := f.config()
	if change != nil {
		change(&cfg)
	}
	g, err := NewGitHub(cfg, f.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// gitHubLogin runs the whole code flow for user id.
func gitHubLogin(t *testing.T, f *fakeGitHub, g *GitHub, id int64) (Identity, error) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	code := f.login(t, g.AuthCodeURL("state-1", "nonce-ignored", verifier), id)
	return g.Exchange(t.Context(), code, verifier, "nonce-ignored")
}

// Catalogue row 61 (an unverified primary email; the email hidden from the profile).
func TestGitHubLogin(t *testing.T) {
	f := startFakeGitHub(t, gitHubPeople()...)
	api := f.srv.URL + "/api/v3"
	tests := []struct {
		name         string
		allowedOrgs  []string
		allowedTeams []string
		user         int64
		want         Identity
		wantErr      error
	}{
		{name: "no restriction", user: 1001, want: Identity{
			Issuer: api, Subject: "1001", Email: "alice@acme.test", EmailVerified: true, Name: "Alice",
			Groups: []string{"acme/editors", "acme/platform-team"},
		}},
		{name: "allowed org, any case", allowedOrgs: []string{"ACME"}, user: 1001, want: Identity{
			Issuer: api, Subject: "1001", Email: "alice@acme.test", EmailVerified: true, Name: "Alice",
			Groups: []string{"acme/editors", "acme/platform-team"},
		}},
		{name: "allowed team", allowedTeams: []string{"acme/platform-team"}, user: 1001, want: Identity{
			Issuer: api, Subject: "1001", Email: "alice@acme.test", EmailVerified: true, Name: "Alice",
			Groups: []string{"acme/editors", "acme/platform-team"},
		}},
		{name: "email hidden from the profile", allowedOrgs: []string{"acme"}, user: 1002, want: Identity{
			Issuer: api, Subject: "1002", Email: "bob@acme.test", EmailVerified: true, Name: "bob",
		}},
		{name: "org member in no allowed team", allowedTeams: []string{"acme/editors"}, user: 1002, wantErr: ErrGitHubMembership},
		{name: "not in the allowed org", allowedOrgs: []string{"acme"}, user: 1004, wantErr: ErrGitHubMembership},
		{name: "same team slug in another org", allowedTeams: []string{"acme/editors"}, user: 1004, wantErr: ErrGitHubMembership},
		{name: "unverified primary email", user: 1003, wantErr: ErrEmailUnverified},
		{name: "no primary email", user: 1005, wantErr: ErrEmailUnverified},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGitHub(t, f, func(c *ProviderConfig) {
				c.AllowedOrgs, c.AllowedTeams = tc.allowedOrgs, tc.allowedTeams
			})
			got, err := gitHubLogin(t, f, g, tc.user)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Exchange: %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got.RefreshToken, gitHubKeptAccess+"gho_") {
				t.Errorf("RefreshToken %q: want the access token kept", got.RefreshToken)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(Identity{}, "RefreshToken")); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGitHubRenamedLoginKeepsSubject: the subject is the numeric id, so a
// renamed account is the same person, and another account taking the old
// login is not (catalogue row 61).
func TestGitHubRenamedLoginKeepsSubject(t *testing.T) {
	f := startFakeGitHub(t, gitHubPeople()...)
	g := newTestGitHub(t, f, nil)
	before, err := gitHubLogin(t, f, g, 1001)
	if err != nil {
		t.Fatal(err)
	}
	f.set(1001, func(u *fakeGitHubUser) { u.Login, u.Name = "alice-renamed", "" })
	f.set(1004, func(u *fakeGitHubUser) { u.Login = "alice" })
	after, err := gitHubLogin(t, f, g, 1001)
	if err != nil {
		t.Fatal(err)
	}
	squatter, err := gitHubLogin(t, f, g, 1004)
	if err != nil {
		t.Fatal(err)
	}
	if before.Subject != "1001" || after.Subject != before.Subject || after.Name != "alice-renamed" {
		t.Errorf("renamed: subject %q then %q (name %q), want 1001 both times", before.Subject, after.Subject, after.Name)
	}
	if squatter.Subject == before.Subject {
		t.Errorf("the account that took the old login got subject %q", squatter.Subject)
	}
}

func TestGitHubRefresh(t *testing.T) {
	f := startFakeGitHub(t, gitHubPeople()...)
	g := newTestGitHub(t, f, func(c *ProviderConfig) { c.AllowedOrgs = []string{"acme"} })
	id, err := gitHubLogin(t, f, g, 1001)
	if err != nil {
		t.Fatal(err)
	}

	// Groups re-read with the kept token.
	f.set(1001, func(u *fakeGitHubUser) { u.Teams = []string{"acme/viewers"} })
	got, err := g.Refresh(t.Context(), id.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"acme/viewers"}, got.Groups); diff != "" || got.Subject != "1001" || got.RefreshToken != id.RefreshToken {
		t.Errorf("refresh: groups (-want +got) %s, subject %q, kept %q", diff, got.Subject, got.RefreshToken)
	}

	// Catalogue row 42: left the allowed org.
	f.set(1001, func(u *fakeGitHubUser) { u.Orgs, u.Teams = []string{"elsewhere"}, nil })
	if _, err := g.Refresh(t.Context(), id.RefreshToken); !errors.Is(err, ErrGitHubMembership) {
		t.Errorf("refresh after leaving the org: %v, want %v", err, ErrGitHubMembership)
	}

	// The person revoked the app: GitHub answers 401.
	f.set(1001, func(u *fakeGitHubUser) { u.Orgs = []string{"acme"} })
	f.revokeAll()
	if _, err := g.Refresh(t.Context(), id.RefreshToken); !errors.Is(err, ErrIdPRefused) {
		t.Errorf("refresh after revocation: %v, want %v", err, ErrIdPRefused)
	}
	for _, kept := range []string{"", "gho_raw", gitHubKeptRefresh, gitHubKeptAccess} {
		if _, err := g.Refresh(t.Context(), kept); err == nil {
			t.Errorf("Refresh(%q) succeeded", kept)
		}
	}
}

// TestGitHubExpiringTokens: a GitHub App's user tokens expire and come
// with a refresh token, which Refresh redeems; GitHub rotates it.
func TestGitHubExpiringTokens(t *testing.T) {
	f := startFakeGitHub(t, gitHubPeople()...)
	f.expiring = true
	g := newTestGitHub(t, f, nil)
	id, err := gitHubLogin(t, f, g, 1001)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id.RefreshToken, gitHubKeptRefresh+"ghr_") {
		t.Fatalf("kept %q, want the refresh token", id.RefreshToken)
	}
	got, err := g.Refresh(t.Context(), id.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "1001" || got.RefreshToken == id.RefreshToken || !strings.HasPrefix(got.RefreshToken, gitHubKeptRefresh+"ghr_") {
		t.Errorf("refresh: subject %q, rotated token %q", got.Subject, got.RefreshToken)
	}
	// The rotated-out refresh token is refused.
	if _, err := g.Refresh(t.Context(), id.RefreshToken); !errors.Is(err, ErrIdPRefused) {
		t.Errorf("reused refresh token: %v, want %v", err, ErrIdPRefused)
	}
}

// Catalogue row 51 (a code redeemed with another PKCE verifier).
func TestGitHubCodeExchangeRefusals(t *testing.T) {
	f := startFakeGitHub(t, gitHubPeople()...)
	g := newTestGitHub(t, f, nil)
	verifier := oauth2.GenerateVerifier()

	code := f.login(t, g.AuthCodeURL("state-1", "", verifier), 1001)
	if _, err := g.Exchange(t.Context(), code, oauth2.GenerateVerifier(), ""); !errors.Is(err, ErrIdPRefused) {
		t.Errorf("another PKCE verifier: %v, want %v", err, ErrIdPRefused)
	}

	code = f.login(t, g.AuthCodeURL("state-1", "", verifier), 1001)
	if _, err := g.Exchange(t.Context(), code, verifier, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Exchange(t.Context(), code, verifier, ""); !errors.Is(err, ErrIdPRefused) {
		t.Errorf("code replayed: %v, want %v", err, ErrIdPRefused)
	}
}

// TestGitHubPagination: orgs and teams spread over pages are all read.
func TestGitHubPagination(t *testing.T) {
	f := startFakeGitHub(t, gitHubPeople()...)
	f.pageSize = 1
	g := newTestGitHub(t, f, func(c *ProviderConfig) { c.AllowedTeams = []string{"acme/platform-team"} })
	id, err := gitHubLogin(t, f, g, 1001)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"acme/editors", "acme/platform-team"}, id.Groups); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
}

// TestGitHubNextLinkStaysOnTheAPI: a next-page link to another host is
// refused and the token never sent there.
func TestGitHubNextLinkStaysOnTheAPI(t *testing.T) {
	var leaked atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		_, _ = w.Write([]byte(`[]`))
	}))
	t.Cleanup(other.Close)
	f := startFakeGitHub(t, gitHubPeople()...)
	g := newTestGitHub(t, f, nil)
	for _, next := range []string{other.URL + "/api/v3/user/teams?page=2", f.srv.URL + "/elsewhere?page=2", "//" + strings.TrimPrefix(other.URL, "http://") + "/api/v3/x"} {
		f.nextLink = next
		if _, err := gitHubLogin(t, f, g, 1001); err == nil || !strings.Contains(err.Error(), "leaves the API") {
			t.Errorf("next link %q: %v, want a refusal", next, err)
		}
	}
	if leaked.Load() != 0 {
		t.Errorf("the token was sent off the API %d times", leaked.Load())
	}
}

// Catalogue row 52 (the S256 challenge).
func TestGitHubProviderBasics(t *testing.T) {
	f := startFakeGitHub(t, gitHubPeople()...)
	g := newTestGitHub(t, f, nil)
	if g.Type() != "github" || g.Name() != "GitHub" || g.Tenant() != "acme" || g.Issuer() != "" || g.EndSessionURL("x", "y") != "" {
		t.Errorf("type %q name %q tenant %q issuer %q", g.Type(), g.Name(), g.Tenant(), g.Issuer())
	}
	if _, err := g.VerifyIDToken(t.Context(), "a.b.c"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("VerifyIDToken: %v, want %v", err, ErrUnsupported)
	}
	u := g.AuthCodeURL("s", "n", "verifier")
	for _, want := range []string{"code_challenge_method=S256", "state=s", "scope=read%3Auser+user%3Aemail+read%3Aorg", "client_id=gh-client"} {
		if !strings.Contains(u, want) {
			t.Errorf("AuthCodeURL %q lacks %q", u, want)
		}
	}
	def, err := NewGitHub(ProviderConfig{ClientID: "c", ClientSecret: "s", RedirectURL: "https://auth.acme.test/cb"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if def.APIURL() != "https://api.github.com" || !strings.HasPrefix(def.AuthCodeURL("s", "", "v"), "https://github.com/login/oauth/authorize?") {
		t.Errorf("defaults: API %q, auth %q", def.APIURL(), def.AuthCodeURL("s", "", "v"))
	}
}

func TestNewGitHubRefusesBadConfig(t *testing.T) {
	good := ProviderConfig{ClientID: "c", ClientSecret: "s", RedirectURL: "https://auth.acme.test/cb"}
	tests := []struct {
		name   string
		change func(*ProviderConfig)
		want   string
	}{
		{"no client id", func(c *ProviderConfig) { c.ClientID = "" }, "client id is empty"},
		{"no secret", func(c *ProviderConfig) { c.ClientSecret = "" }, "client secret is empty"},
		{"no redirect", func(c *ProviderConfig) { c.RedirectURL = "" }, "redirect URL is empty"},
		{"plain http API", func(c *ProviderConfig) { c.APIURL = "http://ghe.acme.test/api/v3" }, "want https"},
		{"userinfo in the token URL", func(c *ProviderConfig) { c.TokenURL = "https://u:p@ghe.acme.test/x" }, "without userinfo"},
		{"relative auth URL", func(c *ProviderConfig) { c.AuthURL = "/login/oauth/authorize" }, "absolute URL"},
		{"team without org", func(c *ProviderConfig) { c.AllowedTeams = []string{"editors"} }, "want org/team-slug"},
		{"org with a slash", func(c *ProviderConfig) { c.AllowedOrgs = []string{"acme/editors"} }, "want an organisation login"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.change(&cfg)
			if _, err := NewGitHub(cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewGitHub: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
