// Not a step: the records a decision reads (keys, seats, grants), the
// change records that purge them from the caches, and the small store
// interfaces authz needs.

package authz

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped or as is) by lookups when a record does
// not exist. Stores must use it so that the caches can tell absence from
// failure.
var ErrNotFound = errors.New("not found")

// APIKey is the part of a stored API key that a decision needs. The plaintext
// key is never stored; only the SHA-256 digest of the whole key string.
type APIKey struct {
	ID        string
	Tenant    string
	Name      string
	Hash      KeyHash
	Seats     []string
	ExpiresAt time.Time
	// RevokedAt is the zero time unless the key was revoked.
	RevokedAt time.Time
}

// Seat grants permissions per space to whoever holds it. Groups are the IdP
// group names (memberOf values) that map to this seat besides its own name.
type Seat struct {
	Tenant string
	Name   string
	Grants []Grant
	Groups []string
}

// Grant is the set of permissions a seat has in one space. The space "*"
// applies to every space of the tenant and the permission "*" to every
// permission.
type Grant struct {
	Space       string
	Permissions []string
}

// Change is one record of the change feed: something a cache may hold
// changed in the store.
type Change struct {
	Seq    int64
	Kind   ChangeKind
	Tenant string
	// Key identifies the changed record within its kind: the API key id,
	// the seat name, the space name.
	Key string
	At  time.Time
}

// ChangeKind says what kind of record a [Change] is about.
type ChangeKind string

// The kinds of change records.
const (
	ChangeAPIKey ChangeKind = "apikey"
	ChangeSeat   ChangeKind = "seat"
	ChangeSpace  ChangeKind = "space"
	ChangeTenant ChangeKind = "tenant"
	// ChangeSigningKey: a tenant's keyring changed (Key is the kid).
	ChangeSigningKey ChangeKind = "signing_key"
	// ChangeIssuer: the IdP issuers a tenant trusts changed (Key is the
	// issuer URL).
	ChangeIssuer ChangeKind = "issuer"
)

// KeyLookup finds an API key by its id. It returns an error wrapping
// [ErrNotFound] when no key has that id.
type KeyLookup interface {
	APIKey(ctx context.Context, id string) (APIKey, error)
}

// SeatLookup finds a seat by tenant and name. It returns an error wrapping
// [ErrNotFound] when the tenant has no such seat.
type SeatLookup interface {
	Seat(ctx context.Context, tenant, name string) (Seat, error)
}

// ChangeFeed reads the change feed in order.
type ChangeFeed interface {
	// ChangesAfter returns up to limit changes with Seq > after, in Seq order.
	ChangesAfter(ctx context.Context, after int64, limit int) ([]Change, error)
	// LastChange returns the highest Seq written so far, or 0.
	LastChange(ctx context.Context) (int64, error)
}

// KeyUsage records when API keys were last used.
type KeyUsage interface {
	TouchAPIKeys(ctx context.Context, used map[string]time.Time) error
}
