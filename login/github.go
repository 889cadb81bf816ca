package login

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// github.com's endpoints; GitHub Enterprise Server has its own
// (https://HOST/login/oauth/authorize, …/access_token, https://HOST/api/v3).
const (
	gitHubAuthURL  = "https://github.com/login/oauth/authorize"
	gitHubTokenURL = "https://github.com/login/oauth/access_token"
	gitHubAPIURL   = "https://api.github.com"
)

// gitHubScopes: the profile, the email addresses (user:email: the
// verified primary one may be hidden from the profile) and org and team
// membership (read:org: private memberships too).
var gitHubScopes = []string{"read:user", "user:email", "read:org"}

// Limits on what usher reads from GitHub's API.
const (
	gitHubMaxBody  = 1 << 20 // bytes of one response
	gitHubMaxPages = 10      // of 100 items: more orgs or teams is an error
	gitHubTimeout  = 15 * time.Second
)

// The forms of the token GitHub logins keep in Identity.RefreshToken:
// an OAuth app's access token does not expire and is kept itself; a
// GitHub App's expiring user token comes with a refresh token, kept
// instead.
const (
	gitHubKeptAccess  = "access:"
	gitHubKeptRefresh = "refresh:"
)

var (
	// ErrGitHubMembership: the person is in none of the provider's
	// allowed organisations and teams.
	ErrGitHubMembership = errors.New("not a member of an allowed GitHub organisation or team")
	// ErrIdPRefused: the identity provider refused a token (GitHub's
	// 401, an OAuth invalid_grant): the person must log in again.
	ErrIdPRefused = errors.New("the identity provider refused the token")
)

// GitHub logs people in with GitHub's OAuth (authorization code + PKCE
// S256) and reads who they are from its REST API: the subject is the
// numeric user id (a login can be renamed and reused, an id cannot), the
// email the verified primary address from /user/emails (never the
// profile's), and the groups the person's teams as "org/team-slug".
type GitHub struct {
	cfg          ProviderConfig
	oauth        oauth2.Config
	api          *url.URL
	client       *http.Client
	allowedOrgs  map[string]bool
	allowedTeams map[string]bool
}

var _ Provider = (*GitHub)(nil)

// NewGitHub makes the GitHub provider of cfg. Empty AuthURL, TokenURL and
// APIURL mean github.com's; each must be https, or http on loopback.
// client makes every request (nil: a client with a 15 s timeout).
func NewGitHub(cfg ProviderConfig, client *http.Client) (*GitHub, error) {
	var errs []error
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("client id is empty"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("client secret is empty"))
	}
	if cfg.RedirectURL == "" {
		errs = append(errs, errors.New("redirect URL is empty"))
	}
	authURL, err := gitHubURL("auth URL", cfg.AuthURL, gitHubAuthURL)
	errs = append(errs, err)
	tokenURL, err := gitHubURL("token URL", cfg.TokenURL, gitHubTokenURL)
	errs = append(errs, err)
	apiURL, err := gitHubURL("API URL", cfg.APIURL, gitHubAPIURL)
	errs = append(errs, err)
	g := &GitHub{
		cfg:          cfg,
		client:       client,
		allowedOrgs:  map[string]bool{},
		allowedTeams: map[string]bool{},
	}
	for _, o := range cfg.AllowedOrgs {
		if o == "" || strings.Contains(o, "/") {
			errs = append(errs, fmt.Errorf("allowed org %q: want an organisation login", o))
		}
		g.allowedOrgs[strings.ToLower(o)] = true
	}
	for _, t := range cfg.AllowedTeams {
		org, slug, ok := strings.Cut(t, "/")
		if !ok || org == "" || slug == "" || strings.Contains(slug, "/") {
			errs = append(errs, fmt.Errorf("allowed team %q: want org/team-slug", t))
		}
		g.allowedTeams[strings.ToLower(t)] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("github provider of tenant %q: %w", cfg.Tenant, err)
	}
	if g.client == nil {
		g.client = &http.Client{Timeout: gitHubTimeout}
	}
	g.api = apiURL
	g.api.Path = strings.TrimSuffix(g.api.Path, "/")
	g.oauth = oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		RedirectURL:  cfg.RedirectURL,
		Scopes:       gitHubScopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   authURL.String(),
			TokenURL:  tokenURL.String(),
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	return g, nil
}

// gitHubURL parses an endpoint, def when empty: https, or http only on
// loopback (tests, a local stand-in); no userinfo, query or fragment.
func gitHubURL(what, raw, def string) (*url.URL, error) {
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%s %q: want an absolute URL without userinfo, query or fragment", what, raw)
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return nil, fmt.Errorf("%s %q: want https (http only on loopback)", what, raw)
	}
	return u, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Type is "github".
func (g *GitHub) Type() string { return "github" }

// Name is the provider's display name, "GitHub" by default.
func (g *GitHub) Name() string {
	if g.cfg.Name != "" {
		return g.cfg.Name
	}
	return "GitHub"
}

// Tenant is the tenant the provider logs people into.
func (g *GitHub) Tenant() string { return g.cfg.Tenant }

// Issuer is "": GitHub sends no iss parameter (RFC 9207) to check.
func (g *GitHub) Issuer() string { return "" }

// APIURL is the API base identities name as their Issuer: (APIURL,
// numeric id) identifies a person across renames.
func (g *GitHub) APIURL() string { return g.api.String() }

// AuthCodeURL is GitHub's authorize URL with state and the S256
// challenge of verifier; GitHub has no nonce.
func (g *GitHub) AuthCodeURL(state, _, verifier string) string {
	return g.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
}

// Exchange redeems code with verifier and reads the person from the API.
// There is no ID token, so nonce is not used: the code is bound to the
// flow by state and PKCE.
func (g *GitHub) Exchange(ctx context.Context, code, verifier, _ string) (Identity, error) {
	tok, err := g.oauth.Exchange(g.clientContext(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("github code exchange: %w", refused(err))
	}
	id, err := g.identity(ctx, tok.AccessToken)
	if err != nil {
		return Identity{}, err
	}
	id.RefreshToken = gitHubKeptAccess + tok.AccessToken
	if tok.RefreshToken != "" {
		id.RefreshToken = gitHubKeptRefresh + tok.RefreshToken
	}
	return id, nil
}

// VerifyIDToken is ErrUnsupported: GitHub issues no ID tokens.
func (g *GitHub) VerifyIDToken(context.Context, string) (Identity, error) {
	return Identity{}, fmt.Errorf("github: verify an ID token: %w", ErrUnsupported)
}

// Refresh re-reads the person, their email and teams with the token
// Exchange kept: the access token itself, or a GitHub App's refresh
// token, redeemed for a new one (GitHub rotates it: the new one is in the
// result). A token GitHub refuses is an error wrapping ErrIdPRefused.
func (g *GitHub) Refresh(ctx context.Context, kept string) (Identity, error) {
	if access, ok := strings.CutPrefix(kept, gitHubKeptAccess); ok && access != "" {
		id, err := g.identity(ctx, access)
		if err != nil {
			return Identity{}, fmt.Errorf("github refresh: %w", err)
		}
		id.RefreshToken = kept
		return id, nil
	}
	rt, ok := strings.CutPrefix(kept, gitHubKeptRefresh)
	if !ok || rt == "" {
		return Identity{}, fmt.Errorf("github refresh: %w: not a token this provider kept", ErrIdPRefused)
	}
	src := g.oauth.TokenSource(g.clientContext(ctx), &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		return Identity{}, fmt.Errorf("github refresh: %w", refused(err))
	}
	id, err := g.identity(ctx, tok.AccessToken)
	if err != nil {
		return Identity{}, fmt.Errorf("github refresh: %w", err)
	}
	id.RefreshToken = gitHubKeptRefresh + tok.RefreshToken
	return id, nil
}

// EndSessionURL is "": GitHub has no RP-initiated logout.
func (g *GitHub) EndSessionURL(string, string) string { return "" }

// clientContext carries g's HTTP client to x/oauth2, which takes it only
// from a context.
func (g *GitHub) clientContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, g.client)
}

// refused wraps an OAuth error response (bad_verification_code,
// invalid_grant, …) with ErrIdPRefused; transport errors stay as they
// are.
func refused(err error) error {
	if _, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		return fmt.Errorf("%w: %w", ErrIdPRefused, err)
	}
	return err
}
