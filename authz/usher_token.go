// Step 3, authenticate usher's own access tokens: HS256 JWTs signed with a
// key of the tenant's keyring, minted at login and verified here with
// their tenant's signing key (cached). The structural checks and the token
// cache are in bearer.go.

package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// usher's access tokens are HS256 JWTs signed with a tenant's key. The
// header carries the key id (kid) and typ "at+jwt" (RFC 9068); the claims
// carry iss and aud, so that no other token usher issues (refresh tokens,
// flow state, device codes: other typ and aud values) can pass as one.
const (
	accessTokenType = "at+jwt"
	// maxKeyIDLen caps the kid header; ids are 16 base32 characters.
	maxKeyIDLen = 64
)

// SigningKey is one key of a tenant's keyring.
type SigningKey struct {
	ID        string
	Tenant    string
	Secret    []byte
	CreatedAt time.Time
	// RetireAt is when the key stops verifying, zero while it is the
	// active key.
	RetireAt time.Time
	// RevokedAt is set when the key was revoked: tokens under it are
	// refused at once.
	RevokedAt time.Time
}

// SigningKeyLookup finds a signing key, with its secret, by id. It returns
// an error wrapping ErrNotFound for an unknown id.
type SigningKeyLookup interface {
	SigningKey(ctx context.Context, kid string) (SigningKey, error)
}

// UserMetadata is what the identity provider said of the user at login.
type UserMetadata struct {
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
	Sub   string `json:"sub,omitempty"`
}

// AccessClaims are the claims of usher's access tokens.
type AccessClaims struct {
	jwt.RegisteredClaims
	Email        string       `json:"email,omitempty"`
	TenantID     string       `json:"tenant_id"`
	IsSSO        bool         `json:"is_sso"`
	UserMetadata UserMetadata `json:"user_metadata"`
	// HashPerm maps each space to the seat that applies there, resolved
	// at login. A check reads that seat's current permissions.
	HashPerm map[string]string `json:"hash_perm"`
	// SessionID names the login session (a refresh family) the token was
	// minted from. While set, the token is refused as soon as that session
	// is revoked or gone (a change-feed tick), whatever its exp says.
	SessionID string `json:"sid,omitempty"`
}

// accessClaimNames are the claim names AccessClaims reads; a token whose
// payload holds one of them twice, or in another case, is refused.
var accessClaimNames = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti",
	"email", "tenant_id", "is_sso", "user_metadata", "hash_perm", "sid"}

// TokenConfig says what usher's access tokens look like.
type TokenConfig struct {
	Issuer   string
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// MaxTTL caps a token's lifetime (exp - iat), at minting and at
	// verification.
	MaxTTL time.Duration
}

// DefaultTokenConfig returns the defaults documented in the README.
func DefaultTokenConfig() TokenConfig {
	return TokenConfig{Issuer: "usher", Audience: "usher", Leeway: 30 * time.Second, MaxTTL: 24 * time.Hour}
}

// Validate reports every problem with c, naming the config field.
func (c TokenConfig) Validate() error {
	var errs []error
	if c.Issuer == "" || len(c.Issuer) > 256 {
		errs = append(errs, errors.New("jwt.issuer: must be 1–256 characters"))
	}
	if c.Audience == "" || len(c.Audience) > 256 {
		errs = append(errs, errors.New("jwt.audience: must be 1–256 characters"))
	}
	// At most a minute (docs/security-catalogue.md row 25): more lets a
	// token outlive its exp, or be used before its nbf, by whole minutes.
	if c.Leeway < 0 || c.Leeway > time.Minute {
		errs = append(errs, errors.New("jwt.leeway: must be between 0 and 1m"))
	}
	if c.MaxTTL < time.Minute || c.MaxTTL > 7*24*time.Hour {
		errs = append(errs, errors.New("jwt.max_ttl: must be between 1m and 168h"))
	}
	return errors.Join(errs...)
}

// MintAccessToken signs an access token with key. It sets iss, aud, iat,
// nbf and exp (iat + ttl, ttl capped by cfg.MaxTTL) and tenant_id itself.
func MintAccessToken(cfg TokenConfig, key SigningKey, c AccessClaims, now time.Time, ttl time.Duration) (string, error) {
	var errs []error
	if ttl <= 0 || ttl > cfg.MaxTTL {
		errs = append(errs, fmt.Errorf("ttl: must be positive and at most %s", cfg.MaxTTL))
	}
	if c.Subject == "" || len(c.Subject) > 256 {
		errs = append(errs, errors.New("sub: must be 1–256 characters"))
	}
	if len(key.Secret) < 32 || key.ID == "" {
		errs = append(errs, errors.New("signing key: needs an id and a secret of at least 32 bytes"))
	}
	for space, seat := range c.HashPerm {
		if space != "*" && !validName(space) || !validName(seat) {
			errs = append(errs, fmt.Errorf("hash_perm: %q=%q is not space=seat", space, seat))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	now = now.Truncate(time.Second)
	c.Issuer = cfg.Issuer
	c.Audience = jwt.ClaimStrings{cfg.Audience}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	c.TenantID = key.Tenant
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["kid"] = key.ID
	t.Header["typ"] = accessTokenType
	return t.SignedString(key.Secret)
}

// Errors of verifying usher's tokens; each maps to a reason.
var (
	errTokenType    = errors.New("typ is not at+jwt")
	errTokenCrit    = errors.New("crit header: no extension is understood")
	errKeyID        = errors.New("kid missing or not a key id")
	errKeyUnknown   = errors.New("kid names no signing key")
	errKeyRetired   = errors.New("signing key is retired")
	errTenantClaim  = errors.New("tenant_id is not the tenant of the signing key")
	errClaimMissing = errors.New("sub, iat or tenant_id missing")
	errTokenTTL     = errors.New("lifetime exceeds jwt.max_ttl")
	errHashPerm     = errors.New("hash_perm holds a value that is not space=seat")
	errSessionID    = errors.New("sid is not a session id")
)

// tokenReason maps a golang-jwt error to a reason. A signature problem
// wins over any claim problem: claims of a token that did not verify are
// never looked at.
func tokenReason(err error) Reason {
	switch {
	case errors.Is(err, errTokenShape), errors.Is(err, errTokenJSON), errors.Is(err, errTokenDupKey),
		errors.Is(err, jwt.ErrTokenMalformed):
		return ReasonTokenMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ReasonTokenInvalid
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonTokenNotYetValid
	default:
		return ReasonTokenClaimsInvalid
	}
}

// verifyAccessToken verifies one of usher's access tokens: HS256 only, the
// key from the kid in its tenant's keyring, typ, iss, aud, exp (required),
// nbf and iat with leeway, the lifetime cap, and tenant_id equal to the
// key's tenant. header and payload are the decoded segments (already
// checked for repeated and case-variant names).
func (a *Authorizer) verifyAccessToken(ctx context.Context, token string, header []byte) (*tokenInfo, error) {
	var h struct {
		Kid  any    `json:"kid"`
		Typ  string `json:"typ"`
		Crit any    `json:"crit"`
	}
	if err := json.Unmarshal(header, &h); err != nil {
		return nil, tokenErr(ReasonTokenMalformed, errTokenJSON)
	}
	if h.Crit != nil {
		return nil, tokenErr(ReasonTokenInvalid, errTokenCrit)
	}
	if h.Typ != accessTokenType {
		return nil, tokenErr(ReasonTokenInvalid, errTokenType)
	}
	kid, ok := h.Kid.(string)
	if !ok || !validKeyID(kid) {
		return nil, tokenErr(ReasonTokenInvalid, errKeyID)
	}
	e, err := a.signingKeys.get(ctx, kid, a.now())
	if err != nil {
		return nil, err // a context or store error: decided by the caller
	}
	if e.absent {
		return nil, tokenErr(ReasonTokenInvalid, errKeyUnknown)
	}
	key := e.val
	now := a.now()
	if !key.RetireAt.IsZero() && !now.Before(key.RetireAt) {
		return nil, tokenErr(ReasonTokenInvalid, errKeyRetired)
	}
	cfg := a.tokenCfg
	var claims AccessClaims
	_, err = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(a.now),
		jwt.WithStrictDecoding(),
	).ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		// A second pin beside WithValidMethods (docs/security-catalogue.md
		// row 15): the secret is only ever an HS256 key.
		if t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("alg %v is not HS256", t.Header["alg"])
		}
		return key.Secret, nil
	})
	if err != nil {
		return nil, tokenErr(tokenReason(err), err)
	}
	// Verified: the claims may be read now, and only now.
	if !key.RevokedAt.IsZero() {
		return nil, tokenErr(ReasonTokenRevoked, fmt.Errorf("signing key %s was revoked", key.ID))
	}
	switch {
	case claims.TenantID != key.Tenant:
		return nil, tokenErr(ReasonTokenClaimsInvalid, errTenantClaim)
	case claims.Subject == "" || claims.IssuedAt == nil:
		return nil, tokenErr(ReasonTokenClaimsInvalid, errClaimMissing)
	case claims.ExpiresAt.Sub(claims.IssuedAt.Time) > cfg.MaxTTL+cfg.Leeway:
		return nil, tokenErr(ReasonTokenClaimsInvalid, errTokenTTL)
	case claims.SessionID != "" && !validKeyID(claims.SessionID):
		return nil, tokenErr(ReasonTokenClaimsInvalid, errSessionID)
	}
	spaceSeats := make(map[string]seatRef, len(claims.HashPerm))
	seats := make([]string, 0, len(claims.HashPerm))
	for space, seat := range claims.HashPerm {
		if space != "*" && !validName(space) || !validName(seat) {
			return nil, tokenErr(ReasonTokenClaimsInvalid, errHashPerm)
		}
		spaceSeats[space] = seatRef{name: seat, key: seatKey(key.Tenant, seat)}
		seats = append(seats, seat)
	}
	return &tokenInfo{
		expires:    claims.ExpiresAt.Time,
		keyRetires: key.RetireAt,
		principal: principal{
			id:         Identity{Subject: claims.Subject, Tenant: key.Tenant, Email: claims.Email, Method: AuthJWT, Issuer: claims.Issuer},
			spaceSeats: spaceSeats,
			allSeats:   joinSeats(seats),
			sid:        claims.SessionID,
		},
	}, nil
}

// validKeyID accepts the ids usher generates: lower-case base32. The kid is
// an opaque map key: anything else is refused before any lookup.
func validKeyID(kid string) bool {
	if kid == "" || len(kid) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(kid); i++ {
		if c := kid[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// NewKeyID returns a random signing key id, in the alphabet validKeyID
// accepts.
func NewKeyID() (string, error) { return newID() }

func (a *Authorizer) loadSigningKey(ctx context.Context, kid string) (*SigningKey, error) {
	if a.signingKeyStore == nil {
		return nil, ErrNotFound
	}
	k, err := a.signingKeyStore.SigningKey(ctx, kid)
	if err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", kid, err)
	}
	if k.ID != kid {
		return nil, fmt.Errorf("load signing key %s: store returned key %s", kid, k.ID)
	}
	return &k, nil
}
