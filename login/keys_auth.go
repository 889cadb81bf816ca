package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/golang-jwt/jwt/v5"

	"github.com/usher-dev/usher/authz"
)

var (
	errTokenInvalid = &appError{status: http.StatusUnauthorized, code: "token_invalid", msg: "The access token is not valid; run usher login again."}
	errTokenNoSID   = &appError{status: http.StatusUnauthorized, code: "token_invalid", msg: "The access token names no sign-in session."}
)

// maxBearerLen caps an access token before it is parsed.
const maxBearerLen = 8 << 10

// verifyBearer verifies one of usher's access tokens as Check does (HS256
// only, typ at+jwt, the key from kid in the tenant's keyring and not
// retired or revoked, iss, aud, exp required, nbf and iat with leeway,
// the lifetime cap, tenant_id equal to the key's tenant) and returns the
// live session its sid names: the token's person, with the seats they
// hold now. A token without sid, or whose session is revoked, expired,
// of another tenant or of another subject, is refused.
func (a *App) verifyBearer(ctx context.Context, raw string) (authz.Session, error) {
	lookup, ok := a.d.SigningKeys.(authz.SigningKeyLookup)
	if !ok || len(raw) > maxBearerLen {
		return authz.Session{}, errTokenInvalid
	}
	cfg := a.d.Tokens
	var (
		key    authz.SigningKey
		claims authz.AccessClaims
		stored error
	)
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(a.d.Now),
		jwt.WithStrictDecoding(),
	).ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("alg %v is not HS256", t.Header["alg"])
		}
		if typ, _ := t.Header["typ"].(string); typ != "at+jwt" {
			return nil, errors.New("typ is not at+jwt")
		}
		if _, crit := t.Header["crit"]; crit {
			return nil, errors.New("crit header")
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" || len(kid) > 64 {
			return nil, errors.New("kid missing")
		}
		k, err := lookup.SigningKey(ctx, kid)
		if err != nil {
			if !errors.Is(err, authz.ErrNotFound) {
				stored = err
			}
			return nil, fmt.Errorf("signing key %s: %w", kid, err)
		}
		now := a.d.Now()
		if !k.RetireAt.IsZero() && !now.Before(k.RetireAt) || !k.RevokedAt.IsZero() {
			return nil, fmt.Errorf("signing key %s is retired or revoked", kid)
		}
		key = k
		return k.Secret, nil
	})
	if stored != nil {
		return authz.Session{}, storeError(stored)
	}
	if err != nil {
		return authz.Session{}, &appError{status: errTokenInvalid.status, code: errTokenInvalid.code, msg: errTokenInvalid.msg, err: err}
	}
	switch {
	case claims.TenantID != key.Tenant || claims.Subject == "" || claims.IssuedAt == nil:
		return authz.Session{}, errTokenInvalid
	case claims.ExpiresAt.Sub(claims.IssuedAt.Time) > cfg.MaxTTL+cfg.Leeway:
		return authz.Session{}, errTokenInvalid
	case claims.SessionID == "":
		return authz.Session{}, errTokenNoSID
	}
	s, err := a.d.Sessions.Session(ctx, claims.SessionID)
	switch {
	case errors.Is(err, authz.ErrNotFound):
		return authz.Session{}, errSessionRevoked
	case err != nil:
		return authz.Session{}, storeError(err)
	case s.Tenant != key.Tenant || s.Subject != claims.Subject:
		return authz.Session{}, errTokenInvalid
	case !s.RevokedAt.IsZero():
		return authz.Session{}, errSessionRevoked
	case !a.d.Now().Before(s.ExpiresAt):
		return authz.Session{}, errSessionExpired
	}
	return s, nil
}
