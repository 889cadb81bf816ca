package login

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCConfig configures a generic OpenID Connect provider (Entra ID, Okta,
// Auth0, Keycloak, or any compliant IdP). Google reuses it with its own
// issuer and Type.
type OIDCConfig struct {
	// Type is what Provider.Type answers; "oidc" when empty.
	Type string
	// Name is shown on the login button; the issuer's host when empty.
	Name         string
	Tenant       string
	IssuerURL    string
	ClientID     string
	ClientSecret string
	RedirectURL  string
	// Scopes are requested besides openid; default email and profile
	// (and offline_access when discovery lists it, for group refresh).
	Scopes []string
	// GroupsClaim names the ID token claim holding groups, a dotted path
	// for nested claims (realm_access.roles); default "groups".
	GroupsClaim string
	// AuthParams are extra authorization request parameters (Google's
	// access_type=offline, hd).
	AuthParams map[string]string
	// MaxIDTokenAge bounds how old (by iat) an ID token given to POST
	// /auth/oidc/validate may be; default 10 minutes.
	MaxIDTokenAge time.Duration
	// HTTPClient makes every request to the IdP; one with a 10 s timeout
	// when nil.
	HTTPClient *http.Client
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// OIDC is a Provider for an OpenID Connect IdP: discovery and ID token
// verification with go-oidc, the code exchange with PKCE and the refresh
// grant with x/oauth2. Discovery happens on first use and is retried
// (at most every discoveryRetry) while the IdP is unreachable, so that a
// server starts while its IdP is down and login answers 503 meanwhile
// (docs/security-catalogue.md row 72).
type OIDC struct {
	cfg OIDCConfig

	mu        sync.Mutex
	disc      *discovered
	lastTry   time.Time
	lastError error
}

// discovered is what discovery found.
type discovered struct {
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	oauth      oauth2.Config
	endSession string
	issParam   bool
}

const discoveryRetry = 5 * time.Second

// ErrIdPUnavailable wraps failures to reach an IdP (discovery, token
// endpoint down): the login app answers 503.
var ErrIdPUnavailable = errors.New("identity provider unavailable")

// NewOIDC returns a provider; it does not contact the IdP (see Discover).
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	if cfg.Type == "" {
		cfg.Type = "oidc"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = DefaultGroupsClaim
	}
	if cfg.MaxIDTokenAge == 0 {
		cfg.MaxIDTokenAge = 10 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var errs []error
	if cfg.IssuerURL == "" {
		errs = append(errs, errors.New("issuer URL: required"))
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("client id: required"))
	}
	if cfg.RedirectURL == "" {
		errs = append(errs, errors.New("redirect URL: required"))
	}
	if cfg.Name == "" {
		if u, err := url.Parse(cfg.IssuerURL); err == nil {
			cfg.Name = u.Hostname()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("oidc provider: %w", err)
	}
	return &OIDC{cfg: cfg}, nil
}

// Type implements Provider.
func (p *OIDC) Type() string { return p.cfg.Type }

// Name implements Provider.
func (p *OIDC) Name() string { return p.cfg.Name }

// Tenant implements Provider.
func (p *OIDC) Tenant() string { return p.cfg.Tenant }

// Issuer implements Provider: the configured issuer, which discovery must
// state exactly (go-oidc refuses another, row 57).
func (p *OIDC) Issuer() string { return p.cfg.IssuerURL }

// Ready discovers the IdP if that has not succeeded yet. It returns an
// error wrapping ErrIdPUnavailable while the IdP cannot be reached.
func (p *OIDC) Ready(ctx context.Context) error {
	_, err := p.discover(ctx)
	return err
}

// Discover is Ready, for validating a provider when it is written.
func (p *OIDC) Discover(ctx context.Context) error { return p.Ready(ctx) }

// IssParameterRequired reports whether the IdP said in discovery that it
// sends the iss parameter (RFC 9207 section 3): the callback then refuses
// a response without it.
func (p *OIDC) IssParameterRequired() bool {
	d := p.current()
	return d != nil && d.issParam
}

func (p *OIDC) current() *discovered {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.disc
}

func (p *OIDC) discover(ctx context.Context) (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disc != nil {
		return p.disc, nil
	}
	now := p.cfg.Now()
	if p.lastError != nil && now.Sub(p.lastTry) < discoveryRetry {
		return nil, p.lastError
	}
	p.lastTry = now
	d, err := p.doDiscover(ctx)
	if err != nil {
		p.lastError = fmt.Errorf("%w: discovery of %s: %w", ErrIdPUnavailable, p.cfg.IssuerURL, err)
		return nil, p.lastError
	}
	p.disc, p.lastError = d, nil
	return d, nil
}

func (p *OIDC) doDiscover(ctx context.Context) (*discovered, error) {
	ctx = oidc.ClientContext(ctx, p.cfg.HTTPClient)
	prov, err := oidc.NewProvider(ctx, p.cfg.IssuerURL)
	if err != nil {
		return nil, err
	}
	var meta struct {
		EndSession      string   `json:"end_session_endpoint"`
		IssParam        bool     `json:"authorization_response_iss_parameter_supported"`
		ScopesSupported []string `json:"scopes_supported"`
	}
	if err := prov.Claims(&meta); err != nil {
		return nil, fmt.Errorf("read discovery: %w", err)
	}
	scopes := []string{oidc.ScopeOpenID}
	if p.cfg.Scopes != nil {
		scopes = append(scopes, p.cfg.Scopes...)
	} else {
		scopes = append(scopes, oidc.ScopeEmail, oidc.ScopeProfile)
		if slices.Contains(meta.ScopesSupported, oidc.ScopeOfflineAccess) {
			scopes = append(scopes, oidc.ScopeOfflineAccess)
		}
		if p.cfg.GroupsClaim == DefaultGroupsClaim && slices.Contains(meta.ScopesSupported, "groups") {
			scopes = append(scopes, "groups")
		}
	}
	return &discovered{
		provider: prov,
		// go-oidc checks the signature (only the algorithms discovery
		// lists, never none), iss, aud and exp; nonce and azp are ours.
		verifier:   prov.VerifierContext(ctx, &oidc.Config{ClientID: p.cfg.ClientID, Now: p.cfg.Now}),
		endSession: meta.EndSession,
		issParam:   meta.IssParam,
		oauth: oauth2.Config{
			ClientID:     p.cfg.ClientID,
			ClientSecret: p.cfg.ClientSecret,
			Endpoint:     prov.Endpoint(),
			RedirectURL:  p.cfg.RedirectURL,
			Scopes:       scopes,
		},
	}, nil
}

// AuthCodeURL implements Provider. It is "" until discovery succeeded
// (call Ready first).
func (p *OIDC) AuthCodeURL(state, nonce, verifier string) string {
	d := p.current()
	if d == nil {
		return ""
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	for k, v := range p.cfg.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return d.oauth.AuthCodeURL(state, opts...)
}

// Errors of ID token checks that go-oidc leaves to the caller.
var (
	errNonce       = errors.New("ID token nonce does not match this login")
	errAZP         = errors.New("ID token azp is not our client")
	errNoIDToken   = errors.New("token response has no id_token")
	errTokenTooOld = errors.New("ID token is too old")
	errSubChanged  = errors.New("subject changed")
	errGroupsShape = errors.New("groups claim is not a list of strings")
)

// IDTokenError is an ID token that did not verify: bad signature or
// algorithm, another issuer or audience, expired, wrong nonce or azp.
type IDTokenError struct{ Err error }

func (e *IDTokenError) Error() string { return "id token: " + e.Err.Error() }
func (e *IDTokenError) Unwrap() error { return e.Err }

// Exchange implements Provider: the code exchange with the PKCE verifier,
// then the ID token verified (signature, iss, aud, exp, azp, at_hash) and
// its nonce compared with ours.
func (p *OIDC) Exchange(ctx context.Context, code, verifier, nonce string) (Identity, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.cfg.HTTPClient)
	tok, err := d.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Identity{}, exchangeError(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, &IDTokenError{errNoIDToken}
	}
	idt, err := p.verify(ctx, d, raw)
	if err != nil {
		return Identity{}, err
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Identity{}, &IDTokenError{errNonce}
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return Identity{}, &IDTokenError{err}
		}
	}
	id, err := p.identity(idt)
	if err != nil {
		return Identity{}, err
	}
	id.IDToken = raw
	id.RefreshToken = tok.RefreshToken
	return id, nil
}

// ExchangeError is the IdP refusing a code or a refresh token (the OAuth
// error it answered, never its description).
type ExchangeError struct {
	Code string
	Err  error
}

func (e *ExchangeError) Error() string { return "token endpoint refused: " + e.Code }
func (e *ExchangeError) Unwrap() error { return e.Err }

func exchangeError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
		code := re.ErrorCode
		if code == "" {
			code = "http_" + fmt.Sprint(re.Response.StatusCode)
		}
		return &ExchangeError{Code: code, Err: err}
	}
	return fmt.Errorf("%w: token endpoint: %w", ErrIdPUnavailable, err)
}

// verify checks an ID token with go-oidc, then azp: when aud has several
// values azp must be our client, and when azp is present it must be ours
// (OpenID Connect Core 3.1.3.7 items 4–5; go-oidc checks aud only).
func (p *OIDC) verify(ctx context.Context, d *discovered, raw string) (*oidc.IDToken, error) {
	idt, err := d.verifier.Verify(oidc.ClientContext(ctx, p.cfg.HTTPClient), raw)
	if err != nil {
		return nil, &IDTokenError{err}
	}
	var c struct {
		AZP *string `json:"azp"`
	}
	if err := idt.Claims(&c); err != nil {
		return nil, &IDTokenError{err}
	}
	if len(idt.Audience) > 1 && c.AZP == nil || c.AZP != nil && *c.AZP != p.cfg.ClientID {
		return nil, &IDTokenError{errAZP}
	}
	return idt, nil
}

// VerifyIDToken implements Provider for POST /auth/oidc/validate: the
// same checks as at the callback except the nonce (the client's own), and
// the token must have been issued within MaxIDTokenAge (row 30).
func (p *OIDC) VerifyIDToken(ctx context.Context, raw string) (Identity, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	idt, err := p.verify(ctx, d, raw)
	if err != nil {
		return Identity{}, err
	}
	if idt.IssuedAt.IsZero() || p.cfg.Now().Sub(idt.IssuedAt) > p.cfg.MaxIDTokenAge {
		return Identity{}, &IDTokenError{errTokenTooOld}
	}
	id, err := p.identity(idt)
	if err != nil {
		return Identity{}, err
	}
	id.IDToken = raw
	return id, nil
}

// Refresh implements Provider: the refresh token grant. The groups come
// from the new ID token, or from userinfo when the IdP sends none; the
// subject must not change. The returned RefreshToken is the IdP's new one
// when it rotated it, else the one given.
func (p *OIDC) Refresh(ctx context.Context, refreshToken string) (Identity, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.cfg.HTTPClient)
	tok, err := d.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return Identity{}, exchangeError(err)
	}
	var id Identity
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		idt, err := p.verify(ctx, d, raw)
		if err != nil {
			return Identity{}, err
		}
		if id, err = p.identity(idt); err != nil {
			return Identity{}, err
		}
		id.IDToken = raw
	} else {
		ui, err := d.provider.UserInfo(oidc.ClientContext(ctx, p.cfg.HTTPClient), oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, fmt.Errorf("%w: userinfo: %w", ErrIdPUnavailable, err)
		}
		var claims map[string]any
		if err := ui.Claims(&claims); err != nil {
			return Identity{}, fmt.Errorf("userinfo claims: %w", err)
		}
		if id, err = p.claimsIdentity(p.cfg.IssuerURL, ui.Subject, claims); err != nil {
			return Identity{}, err
		}
	}
	id.RefreshToken = refreshToken
	if tok.RefreshToken != "" {
		id.RefreshToken = tok.RefreshToken
	}
	return id, nil
}

// EndSessionURL implements Provider: RP-initiated logout (OpenID Connect
// RP-Initiated Logout 1.0) when discovery listed an end_session_endpoint.
func (p *OIDC) EndSessionURL(idTokenHint, postLogoutRedirect string) string {
	d := p.current()
	if d == nil || d.endSession == "" {
		return ""
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	q.Set("client_id", p.cfg.ClientID)
	u.RawQuery = q.Encode()
	return u.String()
}

func (p *OIDC) identity(idt *oidc.IDToken) (Identity, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, &IDTokenError{err}
	}
	return p.claimsIdentity(idt.Issuer, idt.Subject, claims)
}

// claimsIdentity reads the person from verified claims. Only a boolean
// true (or the string "true" some IdPs send) makes an email verified;
// absent means unverified (row 60).
func (p *OIDC) claimsIdentity(iss, sub string, claims map[string]any) (Identity, error) {
	id := Identity{Issuer: iss, Subject: sub}
	id.Email, _ = claims["email"].(string)
	switch v := claims["email_verified"].(type) {
	case bool:
		id.EmailVerified = v
	case string:
		id.EmailVerified = v == "true"
	}
	id.Name, _ = claims["name"].(string)
	id.HostedDomain, _ = claims["hd"].(string)
	groups, overage, err := groupsClaim(claims, p.cfg.GroupsClaim)
	if err != nil {
		return Identity{}, err
	}
	id.Groups, id.GroupsOverage = groups, overage
	return id, nil
}

// maxLoginGroups bounds the groups read from one token.
const maxLoginGroups = 1024

// groupsClaim reads groups at a dotted path. A claim listed in
// _claim_names (Entra's overage: too many groups to include) is overage:
// no groups are believed, never "no claim = unrestricted" (row 69).
func groupsClaim(claims map[string]any, path string) ([]string, bool, error) {
	first, _, _ := strings.Cut(path, ".")
	if names, ok := claims["_claim_names"].(map[string]any); ok {
		if _, over := names[first]; over {
			return nil, true, nil
		}
	}
	var v any = claims
	for _, part := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		if v, ok = m[part]; !ok {
			return nil, false, nil
		}
	}
	switch g := v.(type) {
	case nil:
		return nil, false, nil
	case string:
		return []string{g}, false, nil
	case []any:
		if len(g) > maxLoginGroups {
			return nil, false, fmt.Errorf("%w: %d groups, more than %d", errGroupsShape, len(g), maxLoginGroups)
		}
		out := make([]string, 0, len(g))
		for _, x := range g {
			s, ok := x.(string)
			if !ok {
				return nil, false, errGroupsShape
			}
			out = append(out, s)
		}
		return out, false, nil
	}
	return nil, false, errGroupsShape
}
