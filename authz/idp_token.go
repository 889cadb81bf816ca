// Step 3, authenticate a tenant's IdP token: the external verifier checks
// it against the issuers the tenant trusts, and the token's groups map to
// the tenant's seats through a cached index of seat names and group
// aliases. Caching and dispatch by issuer are in bearer.go.

package authz

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ExternalToken is a verified token of an identity provider that a tenant
// trusts.
type ExternalToken struct {
	Tenant  string
	Issuer  string
	Subject string
	Email   string
	Groups  []string
	// Overage is set when the IdP left the groups out of the token
	// (Entra's _claim_names): the token then gets no seats, never all.
	Overage bool
	// GroupsMatchSeatNames says the trust opted in to a group named like a
	// seat giving that seat; otherwise only a seat's group aliases match,
	// or whoever may name a group at the IdP could pick their seats.
	GroupsMatchSeatNames bool
	Expires              time.Time
	// KeysValidUntil, if set, is when the IdP keys that verified the token
	// stop verifying unless fetched again: a cached token is verified
	// again then, and refused issuer_unavailable if that fails.
	KeysValidUntil time.Time
}

// ExternalVerifier verifies bearer tokens from identity providers that
// tenants trust. A *TokenError says the token is bad (or its issuer is
// unknown); any other error says the issuer could not be reached.
type ExternalVerifier interface {
	Verify(ctx context.Context, token, issuer string) (ExternalToken, error)
}

// SeatLister lists a tenant's seats, to map IdP groups to seats.
type SeatLister interface {
	Seats(ctx context.Context, tenant string) ([]Seat, error)
}

// maxGroups bounds the groups of one token that are matched to seats.
const maxGroups = 1024

// groupIndex maps a tenant's group aliases to seat names, and knows its
// seat names (which match groups only where a trust opts in).
type groupIndex struct {
	seats map[string][]string // by group alias
	names map[string]bool
}

func (g *groupIndex) cost() int64 {
	n := 128
	for k, v := range g.seats {
		n += 48 + len(k) + 24*len(v)
	}
	for k := range g.names {
		n += 48 + len(k)
	}
	return int64(n)
}

func (a *Authorizer) loadGroupIndex(ctx context.Context, tenant string) (*groupIndex, error) {
	seats, err := a.seatLister.Seats(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("list seats of %s: %w", tenant, err)
	}
	return newGroupIndex(seats), nil
}

func newGroupIndex(seats []Seat) *groupIndex {
	g := &groupIndex{seats: map[string][]string{}, names: map[string]bool{}}
	for _, s := range seats {
		g.names[s.Name] = true
		for _, grp := range s.Groups {
			g.seats[grp] = append(g.seats[grp], s.Name)
		}
	}
	return g
}

// seatsFor maps groups to seat names (unsorted, possibly repeated): a
// seat's group aliases always, its own name only when matchNames.
func (g *groupIndex) seatsFor(groups []string, matchNames bool) []string {
	var seats []string
	for _, grp := range groups {
		seats = append(seats, g.seats[grp]...)
		if matchNames && g.names[grp] {
			seats = append(seats, grp)
		}
	}
	return seats
}

// SeatsForGroups maps IdP groups to the names of seats, as Check maps an
// IdP token's groups: a seat's group aliases always match, its own name
// only when matchNames. The result is sorted, each seat once.
func SeatsForGroups(seats []Seat, groups []string, matchNames bool) []string {
	return sortSeats(newGroupIndex(seats).seatsFor(groups, matchNames))
}

func (a *Authorizer) verifyExternal(ctx context.Context, token, iss string) (*tokenInfo, error) {
	x, err := a.external.Verify(ctx, token, iss)
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) {
			return nil, err
		}
		return nil, &issuerError{issuer: iss, err: err}
	}
	if len(x.Groups) > maxGroups {
		return nil, tokenErr(ReasonTokenClaimsInvalid, fmt.Errorf("%d groups, more than %d", len(x.Groups), maxGroups))
	}
	t := &tokenInfo{
		expires:   x.Expires,
		keysUntil: x.KeysValidUntil,
		principal: principal{id: Identity{Subject: x.Subject, Tenant: x.Tenant, Email: x.Email, Method: AuthJWT, Issuer: x.Issuer}},
	}
	if x.Overage || len(x.Groups) == 0 {
		return t, nil
	}
	idx, err := a.groups.get(ctx, x.Tenant, a.now())
	if err != nil {
		return nil, err
	}
	if idx.absent {
		return t, nil
	}
	seats := idx.val.seatsFor(x.Groups, x.GroupsMatchSeatNames)
	t.principal.seats = newSeatList(x.Tenant, seats)
	t.principal.allSeats = t.principal.seats.joined
	return t, nil
}

// errIssuerFailed marks a failure to reach an identity provider.
var errIssuerFailed = errors.New("identity provider unreachable")

// issuerError is a failure to reach an identity provider, naming it.
type issuerError struct {
	issuer string
	err    error
}

func (e *issuerError) Error() string {
	return fmt.Sprintf("identity provider %s unavailable: %v", e.issuer, e.err)
}

func (e *issuerError) Unwrap() []error { return []error{errIssuerFailed, e.err} }

// keysExpired reports whether the IdP keys that verified t have stopped
// verifying.
func keysExpired(t *tokenInfo, now time.Time) bool {
	return !t.keysUntil.IsZero() && !now.Before(t.keysUntil)
}
