package login

import (
	"context"
	"errors"
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

// DeviceCode is one device authorization request (RFC 8628). Only the
// device code's hash is stored; the user code is stored in its canonical
// form (8 letters, no dash).
type DeviceCode struct {
	Hash     authz.KeyHash
	UserCode string
	ClientID string
	// Tenant is the tenant the device asked for ("" when it named none:
	// the approver's tenant).
	Tenant string
	Scope  string
	// RemoteAddr and UserAgent describe the device's request, shown on
	// the approval page so that a phished code stands out.
	RemoteAddr string
	UserAgent  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	// Interval is the polling interval the device must keep; slow_down
	// raises it. LastPollAt is the device's last poll (zero: none yet).
	Interval   time.Duration
	LastPollAt time.Time
	// Decision is nil until a person approves or denies the code.
	Decision *DeviceDecision
	// RedeemedAt is when the device redeemed the approved code (zero:
	// not yet).
	RedeemedAt time.Time
}

// DeviceDecision is a person's approval or denial of a device code.
type DeviceDecision struct {
	Approved bool
	// SessionID is the approver's browser session; Tenant, Subject and
	// Email say who they are.
	SessionID string
	Tenant    string
	Subject   string
	Email     string
	At        time.Time
}

// DeviceCodes stores device authorization requests. The decision and
// the redemption of a code each have exactly one winner on FerretDB and
// MongoDB (a marker insert under a unique _id). Expiry is the caller's
// to check on every read.
type DeviceCodes interface {
	// CreateDeviceCode stores a new request; a user code already in use
	// (by any code not yet pruned) is an error wrapping ErrUserCodeTaken.
	CreateDeviceCode(ctx context.Context, d DeviceCode) error
	// DeviceCode and DeviceCodeByUserCode look a request up, with its
	// decision and redemption; nothing matching wraps authz.ErrNotFound.
	DeviceCode(ctx context.Context, hash authz.KeyHash) (DeviceCode, error)
	DeviceCodeByUserCode(ctx context.Context, userCode string) (DeviceCode, error)
	// DecideDeviceCode records a decision: the first decision of a code
	// wins (won true); every later one answers won false and changes
	// nothing.
	DecideDeviceCode(ctx context.Context, hash authz.KeyHash, d DeviceDecision) (won bool, err error)
	// PollDeviceCode records a poll at at and the interval the device
	// must now keep (slow_down raises it).
	PollDeviceCode(ctx context.Context, hash authz.KeyHash, at time.Time, interval time.Duration) error
	// RedeemDeviceCode consumes an approved code at at: exactly one
	// redemption wins, however many race; the others answer false.
	RedeemDeviceCode(ctx context.Context, hash authz.KeyHash, at time.Time) (won bool, err error)
}

// ErrUserCodeTaken is CreateDeviceCode's answer for a user code in use.
var ErrUserCodeTaken = errors.New("user code in use")

// BuiltinClientID is the public OAuth client every install has: usher's
// own CLI.
const BuiltinClientID = "usher-cli"

// Client is an OAuth client of the login app. Every client is public
// (RFC 6749 section 2.1): it has no secret and never authenticates with
// one.
type Client struct {
	ID string
	// Tenant is the tenant whose people may approve the client's
	// requests; "" for the built-in client, which serves every tenant.
	Tenant    string
	Name      string
	Public    bool
	CreatedAt time.Time
}

// BuiltinClient is the usher-cli client.
var BuiltinClient = Client{ID: BuiltinClientID, Name: "usher CLI", Public: true}

// Clients stores the OAuth clients operators register. The built-in
// client (BuiltinClientID) always exists and cannot be added or removed.
type Clients interface {
	// Client finds a client by id; an unknown one wraps
	// authz.ErrNotFound.
	Client(ctx context.Context, id string) (Client, error)
	// AddClient registers a public client; an id in use is an error.
	AddClient(ctx context.Context, c Client) error
	// ListClients lists the built-in client and a tenant's clients
	// (every tenant's when tenant is empty).
	ListClients(ctx context.Context, tenant string) ([]Client, error)
	RemoveClient(ctx context.Context, tenant, id string) error
}
