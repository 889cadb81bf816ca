package authz

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// tokenInfo is a verified bearer token, or the reason it failed (cached
// briefly, so a flood of one bad token costs one verification).
type tokenInfo struct {
	reason  Reason
	id      Identity
	expires time.Time
	// keyRetires is when the usher signing key that signed it retires.
	keyRetires time.Time
	// keysUntil is when the IdP keys that verified it stop verifying
	// unless fetched again.
	keysUntil time.Time
	// An usher token names one seat per space (hash_perm).
	spaceSeats map[string]seatRef
	// An IdP token's groups give seats for every space.
	seats    []string
	seatKeys []string
	allSeats string
}

type seatRef struct{ name, key string }

func (t *tokenInfo) cost() int64 {
	n := 256 + len(t.id.Subject) + len(t.id.Email) + 2*len(t.allSeats)
	for sp, s := range t.spaceSeats {
		n += 64 + len(sp) + len(s.key) + len(s.name)
	}
	for _, k := range t.seatKeys {
		n += 32 + 2*len(k)
	}
	return int64(n)
}

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
	g := &groupIndex{seats: map[string][]string{}, names: map[string]bool{}}
	for _, s := range seats {
		g.names[s.Name] = true
		for _, grp := range s.Groups {
			g.seats[grp] = append(g.seats[grp], s.Name)
		}
	}
	return g, nil
}

// authenticateToken verifies a bearer JWT: from the cache when this token
// was verified before (until its exp), else by the verifier its issuer
// selects.
func (a *Authorizer) authenticateToken(ctx context.Context, c credential, now time.Time) (principal, Decision) {
	if len(c.value) > maxTokenLen {
		return principal{}, Deny(ReasonTokenMalformed)
	}
	key := tokenCacheKey(c.value)
	e, ok := a.tokens.lookup(key, now)
	if ok && keysExpired(e.val, now) {
		ok = false // verify again: the IdP's keys may have been fetched since
	}
	if !ok {
		var err error
		token := c.value
		e, err = a.tokens.getWith(ctx, key, func(ctx context.Context, _ string) (*tokenInfo, error) {
			return a.verifyToken(ctx, token)
		})
		if err != nil {
			var ie *issuerError
			if errors.As(err, &ie) {
				err = ie // the IdP failed, not the store the cache wraps it as
			}
			return principal{}, failureFrom(err, Decision{})
		}
	}
	t := e.val
	if keysExpired(t, now) {
		return principal{}, Failure(ReasonIssuerUnavailable, &issuerError{issuer: t.id.Issuer,
			err: fmt.Errorf("its keys could not be fetched again before they stopped verifying at %s", t.keysUntil.UTC().Format(time.RFC3339))})
	}
	if t.reason != "" {
		return principal{}, Deny(t.reason)
	}
	if !now.Before(t.expires.Add(a.tokenCfg.Leeway)) {
		return principal{}, Deny(ReasonTokenExpired)
	}
	if !t.keyRetires.IsZero() && !now.Before(t.keyRetires) {
		return principal{}, Deny(ReasonTokenInvalid)
	}
	return principal{id: t.id, seats: t.seats, seatKeys: t.seatKeys, spaceSeats: t.spaceSeats,
		allSeats: t.allSeats, consumed: c.header}, Decision{}
}

// tokenCacheKey is the SHA-256 of the token. The token itself (its iss
// selects the verifier; its claims name the tenant) is all a verification
// depends on, so its digest is the whole key.
func tokenCacheKey(token string) string {
	var buf [2048]byte
	var sum [sha256.Size]byte
	if len(token) <= len(buf) {
		n := copy(buf[:], token) // a stack copy: converting would allocate
		sum = sha256.Sum256(buf[:n])
	} else {
		sum = sha256.Sum256([]byte(token))
	}
	return string(sum[:])
}

// verifyToken verifies a token not in the cache. A verification failure
// becomes a tokenInfo with its reason, to be cached briefly; only a
// failure to reach the keyring or an issuer is an error.
func (a *Authorizer) verifyToken(ctx context.Context, token string) (*tokenInfo, error) {
	t, err := a.verifyTokenErr(ctx, token)
	var te *TokenError
	switch {
	case errors.As(err, &te):
		return &tokenInfo{reason: te.Reason}, nil
	case err != nil:
		return nil, err
	}
	return t, nil
}

func (a *Authorizer) verifyTokenErr(ctx context.Context, token string) (*tokenInfo, error) {
	header, payload, err := splitToken(token)
	if err != nil {
		return nil, tokenErr(ReasonTokenMalformed, err)
	}
	if err := checkNames(header, headerNames); err != nil {
		return nil, tokenErr(ReasonTokenMalformed, err)
	}
	if err := checkNames(payload, a.claimNames); err != nil {
		return nil, tokenErr(ReasonTokenMalformed, err)
	}
	iss, err := peekIssuer(payload)
	if err != nil {
		return nil, tokenErr(ReasonTokenMalformed, err)
	}
	switch {
	case iss == a.tokenCfg.Issuer && a.signingKeyStore != nil:
		return a.verifyAccessToken(ctx, token, header)
	case iss != a.tokenCfg.Issuer && a.external != nil:
		return a.verifyExternal(ctx, token, iss)
	}
	return nil, tokenErr(ReasonIssuerUnknown, fmt.Errorf("no verifier for issuer %q", iss))
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
		id:        Identity{Subject: x.Subject, Tenant: x.Tenant, Email: x.Email, Method: AuthJWT, Issuer: x.Issuer},
		expires:   x.Expires,
		keysUntil: x.KeysValidUntil,
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
	var seats []string
	for _, g := range x.Groups {
		seats = append(seats, idx.val.seats[g]...)
		if x.GroupsMatchSeatNames && idx.val.names[g] {
			seats = append(seats, g)
		}
	}
	slices.Sort(seats)
	t.seats = slices.Compact(seats)
	t.seatKeys = make([]string, len(t.seats))
	for i, s := range t.seats {
		t.seatKeys[i] = seatKey(x.Tenant, s)
	}
	t.allSeats = strings.Join(t.seats, ",")
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

// distinctSeats joins the seats of a hash_perm, sorted, each once.
func distinctSeats(hashPerm map[string]string) string {
	seats := make([]string, 0, len(hashPerm))
	for _, s := range hashPerm {
		seats = append(seats, s)
	}
	slices.Sort(seats)
	return strings.Join(slices.Compact(seats), ",")
}
