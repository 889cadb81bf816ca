package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// GoogleIssuer is Google's OpenID issuer.
const GoogleIssuer = "https://accounts.google.com"

// ErrHostedDomain: the Google account is not in an allowed Workspace
// domain (its ID token's hd claim is missing or another domain).
var ErrHostedDomain = errors.New("the Google account is not in an allowed Workspace domain")

// errGoogleNonce: the ID token's nonce is not the flow's.
var errGoogleNonce = errors.New("ID token nonce does not match the login flow")

// Google logs people in with Google's OpenID provider. Google ID tokens
// carry no groups; the person's email must be verified and, when the
// tenant restricts domains, the token's hd claim (the Workspace domain;
// the hd request parameter is only a hint the user can remove) must be an
// allowed domain (catalogue row 62).
//
// It repeats, for Google's needs, what the generic OIDC provider does
// with go-oidc and x/oauth2.
type Google struct {
	cfg      ProviderConfig
	allowed  []string
	issuer   string
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	client   *http.Client
}

var _ Provider = (*Google)(nil)

// NewGoogle makes the Google provider of cfg, reading the issuer's
// discovery document (cfg.IssuerURL, GoogleIssuer when empty; tests
// point it at their own issuer). allowedDomains are the tenant's email
// domains: when not empty, hd must be one of them. client makes every
// request (nil: a client with a 15 s timeout).
func NewGoogle(ctx context.Context, cfg ProviderConfig, allowedDomains []string, client *http.Client) (*Google, error) {
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
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("google provider of tenant %q: %w", cfg.Tenant, err)
	}
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	issuer := cfg.IssuerURL
	if issuer == "" {
		issuer = GoogleIssuer
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), issuer)
	if err != nil {
		return nil, fmt.Errorf("google provider of tenant %q: discovery: %w", cfg.Tenant, err)
	}
	return &Google{
		cfg:     cfg,
		allowed: allowedDomains,
		issuer:  issuer,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Endpoint:     p.Endpoint(),
			Scopes:       []string{oidc.ScopeOpenID, "email", "profile"},
		},
		// Google signs with RS256 only; go-oidc checks iss, aud (our
		// client id), exp and the signature.
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID, SupportedSigningAlgs: []string{oidc.RS256}}),
		client:   client,
	}, nil
}

// Type is "google".
func (g *Google) Type() string { return "google" }

// Name is the provider's display name, "Google" by default.
func (g *Google) Name() string {
	if g.cfg.Name != "" {
		return g.cfg.Name
	}
	return "Google"
}

// Tenant is the tenant the provider logs people into.
func (g *Google) Tenant() string { return g.cfg.Tenant }

// Issuer is Google's issuer, the iss parameter Google adds to its
// authorization responses (RFC 9207).
func (g *Google) Issuer() string { return g.issuer }

// AuthCodeURL asks Google for a code with state, nonce and the S256
// challenge of verifier; offline access with consent, so that Google
// returns the refresh token Refresh needs; and the hd hint when the
// tenant allows exactly one domain.
func (g *Google) AuthCodeURL(state, nonce, verifier string) string {
	opts := []oauth2.AuthCodeOption{
		oidc.Nonce(nonce),
		oauth2.S256ChallengeOption(verifier),
		oauth2.AccessTypeOffline,
		oauth2.SetAuthURLParam("prompt", "consent"),
	}
	if len(g.allowed) == 1 {
		opts = append(opts, oauth2.SetAuthURLParam("hd", g.allowed[0]))
	}
	return g.oauth.AuthCodeURL(state, opts...)
}

// Exchange redeems code with verifier, verifies the ID token Google
// returns, and checks its nonce, email_verified and hd.
func (g *Google) Exchange(ctx context.Context, code, verifier, nonce string) (Identity, error) {
	tok, err := g.oauth.Exchange(g.clientContext(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("google code exchange: %w", refused(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, errors.New("google code exchange: no ID token in the response")
	}
	id, idt, err := g.verify(ctx, raw)
	if err != nil {
		return Identity{}, err
	}
	if nonce == "" || idt.Nonce != nonce {
		return Identity{}, fmt.Errorf("google: %w", errGoogleNonce)
	}
	id.RefreshToken = tok.RefreshToken
	return id, nil
}

// VerifyIDToken verifies an ID token Google issued to this client, with
// the same email and hd rules as a login.
func (g *Google) VerifyIDToken(ctx context.Context, raw string) (Identity, error) {
	id, _, err := g.verify(ctx, raw)
	return id, err
}

// Refresh redeems Google's refresh token and verifies the new ID token,
// re-checking email_verified and hd. A refused token wraps
// ErrIdPRefused.
func (g *Google) Refresh(ctx context.Context, refreshToken string) (Identity, error) {
	if refreshToken == "" {
		return Identity{}, fmt.Errorf("google refresh: %w: no refresh token", ErrIdPRefused)
	}
	src := g.oauth.TokenSource(g.clientContext(ctx), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		return Identity{}, fmt.Errorf("google refresh: %w", refused(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, errors.New("google refresh: no ID token in the response")
	}
	id, _, err := g.verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("google refresh: %w", err)
	}
	id.RefreshToken = tok.RefreshToken // Google keeps it; x/oauth2 carries it over
	return id, nil
}

// EndSessionURL is "": Google has no RP-initiated logout.
func (g *Google) EndSessionURL(string, string) string { return "" }

// verify checks raw and turns its claims into an identity.
func (g *Google) verify(ctx context.Context, raw string) (Identity, *oidc.IDToken, error) {
	idt, err := g.verifier.Verify(oidc.ClientContext(ctx, g.client), raw)
	if err != nil {
		return Identity{}, nil, fmt.Errorf("google ID token: %w", err)
	}
	var c struct {
		Email         string `json:"email"`
		EmailVerified *bool  `json:"email_verified"`
		Name          string `json:"name"`
		HD            string `json:"hd"`
	}
	if err := idt.Claims(&c); err != nil {
		return Identity{}, nil, fmt.Errorf("google ID token claims: %w", err)
	}
	if idt.Subject == "" {
		return Identity{}, nil, errors.New("google ID token: no subject")
	}
	if c.Email == "" || c.EmailVerified == nil || !*c.EmailVerified {
		return Identity{}, nil, fmt.Errorf("google ID token of %s: %w", idt.Subject, ErrEmailUnverified)
	}
	if len(g.allowed) > 0 && !DomainAllowed(c.HD, g.allowed) {
		return Identity{}, nil, fmt.Errorf("google ID token of %s: %w: hd %q", idt.Subject, ErrHostedDomain, c.HD)
	}
	return Identity{
		Issuer:        g.issuer,
		Subject:       idt.Subject,
		Email:         c.Email,
		EmailVerified: true,
		Name:          c.Name,
		HostedDomain:  c.HD,
		IDToken:       raw,
	}, idt, nil
}

func (g *Google) clientContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, g.client)
}
