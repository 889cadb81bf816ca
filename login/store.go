package login

import (
	"context"
	"time"

	"github.com/usher-dev/usher/authz"
)

// The storage the login app needs, in a few methods each. store/
// implements them on MongoDB (and the embedded FerretDB); every lookup
// returns an error wrapping authz.ErrNotFound when nothing matches.

// Sessions stores browser sessions and refresh families (authz.Session).
type Sessions interface {
	authz.SessionLookup
	authz.SessionUsage
	// CreateSession inserts a new session; its ID is never reused.
	CreateSession(ctx context.Context, s authz.Session) error
	// UpdateSessionGroups records groups and seats re-read from the IdP
	// (and a new sealed IdP refresh token when the IdP rotated it).
	UpdateSessionGroups(ctx context.Context, id string, groups, seats []string, idpRefresh string, at time.Time) error
	// RevokeSession revokes one session (and with it its refresh family)
	// and appends a ChangeSession to the change feed, so that every
	// server denies it within the feed's bound. Revoking a revoked
	// session is not an error.
	RevokeSession(ctx context.Context, tenant, id string) error
	// RevokeUserSessions revokes every session of the person with that
	// email in tenant and returns how many it revoked.
	RevokeUserSessions(ctx context.Context, tenant, email string) (int, error)
	// ListSessions lists a tenant's sessions, of one person when email
	// is not empty, newest first.
	ListSessions(ctx context.Context, tenant, email string) ([]authz.Session, error)
}

// RefreshToken is one usher refresh token. Only its hash is stored.
type RefreshToken struct {
	Hash authz.KeyHash
	// Family is the id of the session the token belongs to; revoking
	// the session ends the family.
	Family    string
	Tenant    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Refresh is a consumed refresh token as ClaimRefresh reports it.
type Refresh struct {
	Token RefreshToken
	// ConsumedAt is when the token was consumed: the claim's own time
	// for the winner, the first consumption's time for a loser.
	ConsumedAt time.Time
	// Won is true for exactly one claim of a token.
	Won bool
}

// RefreshTokens stores refresh tokens and consumes them with exactly one
// winner on FerretDB and MongoDB (a marker insert under a unique index).
type RefreshTokens interface {
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// ClaimRefreshToken consumes the token with that hash at now. An
	// unknown hash is an error wrapping authz.ErrNotFound; a token
	// already consumed answers Won false with the first ConsumedAt.
	ClaimRefreshToken(ctx context.Context, hash authz.KeyHash, now time.Time) (Refresh, error)
}

// User is a person who logged in, keyed by (Tenant, Issuer, Subject).
type User struct {
	Tenant     string
	Issuer     string
	Subject    string
	Email      string
	Name       string
	Groups     []string
	FirstLogin time.Time
	LastLogin  time.Time
}

// Invitation lets a person log in when USHER_ALLOW_ALL_USERS is off and
// their groups match no seat; Seats are the seats they get.
type Invitation struct {
	Tenant    string
	Email     string
	Seats     []string
	CreatedAt time.Time
}

// Users stores people and invitations.
type Users interface {
	// UpsertUser records a login: it creates the user (FirstLogin) or
	// updates email, name, groups and LastLogin.
	UpsertUser(ctx context.Context, u User) (User, error)
	ListUsers(ctx context.Context, tenant string) ([]User, error)
	// InviteUser creates or replaces an invitation (email lower-cased).
	InviteUser(ctx context.Context, inv Invitation) error
	Invitation(ctx context.Context, tenant, email string) (Invitation, error)
	// RemoveUser removes the invitation and the user records with that
	// email; it does not revoke sessions (the CLI does that too).
	RemoveUser(ctx context.Context, tenant, email string) error
}

// ProviderConfig is a login provider of a tenant (identity_providers).
// There is at most one of each Type per tenant.
type ProviderConfig struct {
	Tenant string
	// Type is "oidc", "google" or "github".
	Type string
	// Name is shown on the button ("Continue with <Name>").
	Name     string
	ClientID string
	// ClientSecret is sealed with the master key at rest; the store
	// seals and opens it.
	ClientSecret string
	IssuerURL    string
	RedirectURL  string
	GroupsClaim  string
	// GitHub: organisations and teams ("org/team-slug") allowed, and the
	// API base URLs for GitHub Enterprise (empty: github.com).
	AllowedOrgs  []string
	AllowedTeams []string
	AuthURL      string
	TokenURL     string
	APIURL       string
	CreatedAt    time.Time
}

// Providers stores login providers.
type Providers interface {
	// AddProvider inserts p; a second provider of the same type in the
	// same tenant is an error.
	AddProvider(ctx context.Context, p ProviderConfig) error
	// ListProviders lists a tenant's providers, or every tenant's when
	// tenant is empty.
	ListProviders(ctx context.Context, tenant string) ([]ProviderConfig, error)
	RemoveProvider(ctx context.Context, tenant, typ string) error
}

// OnceMarks makes something usable once across every server: the first
// MarkOnce of (kind, key) wins (a marker insert under a unique index, one
// winner on FerretDB and MongoDB); every later one answers false. Used
// for flow states and authorization codes. Marks may be dropped after
// expires.
type OnceMarks interface {
	MarkOnce(ctx context.Context, kind, key string, expires time.Time) (first bool, err error)
}

// SeatLister lists a tenant's seats, to map a person's groups to seats as
// Check maps an IdP token's groups.
type SeatLister interface {
	Seats(ctx context.Context, tenant string) ([]authz.Seat, error)
}
