// Step 3, authenticate a bearer JWT: what every token meets, whoever
// issued it. A verified token (or the reason it failed) is cached under its
// SHA-256; a token not in the cache passes the structural checks (three
// strict base64url segments of JSON objects without a repeated or
// case-variant name) and goes, by its iss, to the verifier of usher's own
// tokens (usher_token.go) or to that of the tenants' IdPs (idp_token.go).

package authz

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// maxTokenLen caps a bearer token before any parsing.
const maxTokenLen = 24 << 10

// Errors of the structural checks every token meets.
var (
	errTokenShape  = errors.New("not a compact JWS with three segments")
	errTokenJSON   = errors.New("header or payload is not one JSON object")
	errTokenDupKey = errors.New("header or payload repeats a name, or spells a known one in another case")
)

// headerNames are the JOSE header names whose case variants or repeats are
// refused.
var headerNames = []string{"alg", "kid", "typ", "cty", "crit", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"}

// tokenInfo is a verified bearer token, or the reason it failed (cached
// briefly, so a flood of one bad token costs one verification).
type tokenInfo struct {
	reason  Reason
	expires time.Time
	// keyRetires is when the usher signing key that signed it retires
	// (zero for an IdP token, or an usher key not retiring).
	keyRetires time.Time
	// keysUntil is when the IdP keys that verified it stop verifying
	// unless fetched again.
	keysUntil time.Time
	// principal is who the token authenticates: an usher token names one
	// seat per space (hash_perm), an IdP token's groups give seats for
	// every space. Its consumed header is set per request.
	principal principal
}

// failed reports whether t is a verification failure: the token cache
// remembers it for cache.negative_ttl.
func (t *tokenInfo) failed() bool { return t.reason != "" }

// end is when a verified token stops authenticating, for the token cache:
// at its exp plus leeway, or when its signing key retires if that comes
// first; from then on it is a token that failed for that reason. The cache
// uses no entry past its end.
func (t *tokenInfo) end(leeway time.Duration) (time.Time, *tokenInfo) {
	at, reason := t.expires.Add(leeway), ReasonTokenExpired
	if !t.keyRetires.IsZero() && t.keyRetires.Before(at) {
		at, reason = t.keyRetires, ReasonTokenInvalid
	}
	return at, &tokenInfo{reason: reason}
}

func (t *tokenInfo) cost() int64 {
	p := &t.principal
	n := 256 + len(p.id.Subject) + len(p.id.Email) + 2*len(p.allSeats)
	for sp, s := range p.spaceSeats {
		n += 64 + len(sp) + len(s.key) + len(s.name)
	}
	for _, k := range p.seats.keys {
		n += 32 + 2*len(k)
	}
	return int64(n)
}

// authenticateToken verifies a bearer JWT: from the cache when this token
// was verified before, else by the verifier its issuer selects. The cache
// never answers a token past its end (see tokenInfo.end) as valid, and
// never serves one stale.
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
		return principal{}, Failure(ReasonIssuerUnavailable, &issuerError{issuer: t.principal.id.Issuer,
			err: fmt.Errorf("its keys could not be fetched again before they stopped verifying at %s", t.keysUntil.UTC().Format(time.RFC3339))})
	}
	if t.failed() {
		return principal{}, Deny(t.reason)
	}
	if t.principal.sid != "" && a.sessions != nil {
		if d := a.sessionLive(ctx, t.principal.sid, t.principal.id.Tenant, now); d.Status != 0 {
			return principal{}, d
		}
	}
	p := t.principal
	p.consumed = c.header
	return p, Decision{}
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

// TokenError is a verification failure and the reason to answer with. A
// verifier of external tokens returns it so that authz can tell an invalid
// token from an unreachable issuer.
type TokenError struct {
	Reason Reason
	Err    error
}

func (e *TokenError) Error() string { return string(e.Reason) + ": " + e.Err.Error() }
func (e *TokenError) Unwrap() error { return e.Err }

func tokenErr(r Reason, err error) *TokenError { return &TokenError{Reason: r, Err: err} }

// splitToken checks that token is a compact JWS of three base64url
// segments and decodes its header and payload. It does not look at the
// signature.
func splitToken(token string) (header, payload []byte, err error) {
	if len(token) > maxTokenLen {
		return nil, nil, errTokenShape
	}
	h, rest, ok1 := strings.Cut(token, ".")
	p, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || h == "" || p == "" || sig == "" || strings.Contains(sig, ".") {
		return nil, nil, errTokenShape
	}
	if header, err = base64.RawURLEncoding.Strict().DecodeString(h); err != nil {
		return nil, nil, errTokenShape
	}
	if payload, err = base64.RawURLEncoding.Strict().DecodeString(p); err != nil {
		return nil, nil, errTokenShape
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(sig); err != nil {
		return nil, nil, errTokenShape
	}
	return header, payload, nil
}

// checkNames reads a JSON object's top-level names and refuses a name that
// appears twice, or a case variant of one of known: encoding/json would
// take the last one, or bind "Tenant_ID" to tenant_id.
func checkNames(obj []byte, known []string) error {
	dec := json.NewDecoder(strings.NewReader(string(obj)))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return errTokenJSON
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errTokenJSON
		}
		name, ok := tok.(string)
		if !ok || seen[name] {
			return errTokenDupKey
		}
		seen[name] = true
		for _, k := range known {
			if name != k && strings.EqualFold(name, k) {
				return errTokenDupKey
			}
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return errTokenJSON
		}
	}
	if _, err := dec.Token(); err != nil {
		return errTokenJSON
	}
	if dec.More() {
		return errTokenJSON
	}
	if _, err := dec.Token(); err == nil {
		return errTokenJSON // trailing data
	}
	return nil
}

// peekIssuer reads the iss claim of a well-formed token without verifying
// anything: it only chooses the verifier, and nothing else is read before
// verification.
func peekIssuer(payload []byte) (string, error) {
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", errTokenJSON
	}
	return c.Iss, nil
}
