package login

import (
	"context"
	"errors"
)

// Identity is what a provider verified about the person logging in.
type Identity struct {
	// Issuer and Subject identify the person at the provider (GitHub:
	// its API URL and the numeric user id, never the login).
	Issuer  string
	Subject string
	// Email counts only when EmailVerified.
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	// GroupsOverage: the IdP left groups out (Entra overage); no groups
	// are then believed.
	GroupsOverage bool
	// HostedDomain is Google's hd claim.
	HostedDomain string
	// IDToken and RefreshToken are the IdP's raw tokens, kept sealed on
	// the server (RP-initiated logout, group refresh).
	IDToken      string
	RefreshToken string
}

// Provider is one login provider of one tenant.
type Provider interface {
	// Type is "oidc", "google" or "github"; Name is for the button.
	Type() string
	Name() string
	Tenant() string
	// Issuer is the value the callback's iss parameter (RFC 9207) must
	// equal when the provider sends one ("" when it never does).
	Issuer() string
	// AuthCodeURL is where the browser goes to log in: the authorization
	// code flow with state, nonce and PKCE S256 of verifier.
	AuthCodeURL(state, nonce, verifier string) string
	// Exchange redeems code with verifier and returns the verified
	// identity; for OIDC the ID token's nonce must equal nonce.
	Exchange(ctx context.Context, code, verifier, nonce string) (Identity, error)
	// VerifyIDToken verifies an ID token issued to this provider's
	// client (POST /auth/oidc/validate). ErrUnsupported where the
	// provider has no ID tokens (GitHub).
	VerifyIDToken(ctx context.Context, raw string) (Identity, error)
	// Refresh re-reads the person's identity and groups with the IdP's
	// refresh token (or, for GitHub, the access token kept in its
	// place); an error means the IdP refused and the family ends.
	Refresh(ctx context.Context, refreshToken string) (Identity, error)
	// EndSessionURL is the IdP's RP-initiated logout URL, or "" when it
	// has none.
	EndSessionURL(idTokenHint, postLogoutRedirect string) string
}

// ErrUnsupported: the provider cannot do what was asked.
var ErrUnsupported = errors.New("not supported by this provider")
