// Not a step: the login session as a decision reads it, and the session
// handle, the opaque value of the session cookie. The handle has the API
// key's shape with its own prefix: "us_" + base62 of
// "{tenant}_{sessionid}_{secret}", the secret 32 bytes from crypto/rand,
// at most 155 bytes whatever the IdP's tokens weigh. Only SHA-256 of the
// whole handle is stored ([HashAPIKey]). The login app (login/) creates
// sessions; Check verifies the cookie like an API key.

package authz

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"
)

const sessionPrefix = "us_"

// Session is a person's login session: a browser session behind the
// session cookie, or a refresh-token family of an API client (the CLI, a
// SPA), whose access tokens carry its id in the "sid" claim.
type Session struct {
	ID     string
	Tenant string
	// Issuer and Subject identify the person at the IdP that logged them
	// in; Subject is what goes upstream as x-usher-subject.
	Issuer  string
	Subject string
	// Email is the verified email address; Name is for display only.
	Email string
	Name  string
	// Seats are the seats resolved at login (from IdP groups or an
	// operator's invitation); Groups the IdP groups they came from.
	Seats  []string
	Groups []string
	// Hash is the digest of the whole session handle; zero for a session
	// that has no cookie (an API client's refresh family).
	Hash KeyHash
	// Provider names the login provider (for RP-initiated logout).
	Provider   string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute expiry (login.session_ttl after login).
	// Idle expiry is LastSeenAt + login.idle_ttl, enforced on every
	// request.
	ExpiresAt time.Time
	// RevokedAt is the zero time unless the session was revoked (logout,
	// `usher session revoke`, refresh-token reuse).
	RevokedAt time.Time
	// ClientID is the OAuth client of an API family ("" for a browser
	// session).
	ClientID string
	// IDPRefresh and IDToken are the IdP's refresh token and ID token,
	// sealed with the master key (internal/seal); they never leave the
	// server. GroupsCheckedAt is when groups were last read from the IdP.
	IDPRefresh      string
	IDToken         string
	GroupsCheckedAt time.Time
}

// SessionLookup finds a session by id. It returns an error wrapping
// [ErrNotFound] when no session has that id.
type SessionLookup interface {
	Session(ctx context.Context, id string) (Session, error)
}

// SessionUsage records when sessions were last used, which slides their
// idle expiry.
type SessionUsage interface {
	TouchSessions(ctx context.Context, used map[string]time.Time) error
}

// ChangeSession: a session was revoked or changed (Key is the session id).
const ChangeSession ChangeKind = "session"

// NewSessionHandle is a freshly generated session handle. Handle is the
// cookie's value, given to the browser once and never stored.
type NewSessionHandle struct {
	Handle string
	ID     string
	Hash   KeyHash
}

// GenerateSessionHandle makes a new session id and handle for tenant from
// crypto/rand. Every login gets a new one: a handle a browser already had
// is never adopted.
func GenerateSessionHandle(tenant string) (NewSessionHandle, error) {
	if err := ValidateTenant(tenant); err != nil {
		return NewSessionHandle{}, err
	}
	id, err := newID()
	if err != nil {
		return NewSessionHandle{}, err
	}
	var secret [apiKeySecretLen]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return NewSessionHandle{}, fmt.Errorf("generate session secret: %w", err)
	}
	h := formatHandle(sessionPrefix, tenant, id, secret[:])
	return NewSessionHandle{Handle: h, ID: id, Hash: HashAPIKey(h)}, nil
}

var errSessionPrefix = errors.New(`session handle must start with "us_"`)

// ParseSessionHandle checks the format of a session handle and reads its
// tenant and session id. It does not say whether the session exists.
func ParseSessionHandle(h string) (ParsedAPIKey, error) {
	if !strings.HasPrefix(h, sessionPrefix) {
		return ParsedAPIKey{}, errSessionPrefix
	}
	return parseHandle(h[len(sessionPrefix):])
}
