// Step 3, authenticate: find the one credential that decides the request
// (the first present, in priority order) and hand it to the verifier of its
// kind: apikey_auth.go for API keys, bearer.go for JWTs, session_auth.go
// for the session cookie. A present but bad
// credential is a 401 and never falls through to the next.

package authz

import (
	"context"
	"strings"
	"time"
)

// Credential headers, in priority order; the session cookie, when
// enabled, comes last, in the Cookie header.
const (
	HeaderAPIKey        = "x-api-key"
	HeaderAuthorization = "authorization"
)

// maxAuthorizationLen caps the Authorization header before it is parsed:
// room for an IdP token with a few hundred groups, far below Envoy's 60 KiB
// header limit.
const maxAuthorizationLen = 32 << 10

type credKind uint8

const (
	credNone credKind = iota
	credAPIKey
	credBearerJWT
	credSession     // the session cookie
	credUnsupported // present but of a kind usher cannot check
	credMalformed   // present but unparseable
)

// credential is the one credential that decides a request: the first
// present in priority order. A present but bad credential never falls
// through to the next.
type credential struct {
	kind   credKind
	value  string
	header string // where it came from
	reason Reason // for credMalformed and credUnsupported
}

func findCredential(h map[string]string) credential {
	if v, ok := h[HeaderAPIKey]; ok {
		return credential{kind: credAPIKey, value: v, header: HeaderAPIKey}
	}
	if v, ok := h[HeaderAuthorization]; ok {
		return parseAuthorization(v)
	}
	return credential{}
}

// credentialOf is findCredential with the session cookie, when enabled,
// as the last credential (ck is what the Cookie header holds of it).
func (a *Authorizer) credentialOf(h map[string]string, ck *sessionCookies) credential {
	c := findCredential(h)
	if c.kind == credNone && a.cookie.Enabled {
		return sessionCredential(ck)
	}
	return c
}

// parseAuthorization reads "Bearer <token>" (RFC 6750 §2.1): the scheme is
// case-insensitive, one or more spaces follow it, and the token is one
// b64token. Anything else is malformed; another scheme is unsupported. An
// "sk_" token is an API key.
func parseAuthorization(v string) credential {
	c := credential{kind: credMalformed, header: HeaderAuthorization, reason: ReasonBearerMalformed}
	if len(v) > maxAuthorizationLen {
		return c
	}
	scheme, rest, found := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "bearer") {
		if scheme == "" || !validToken(scheme) {
			return c
		}
		c.kind, c.reason = credUnsupported, ReasonUnsupportedCredential
		return c
	}
	if !found {
		return c
	}
	token := strings.TrimLeft(rest, " ")
	if token == "" || !isB64Token(token) {
		return c
	}
	if strings.HasPrefix(token, apiKeyPrefix) {
		return credential{kind: credAPIKey, value: token, header: HeaderAuthorization}
	}
	return credential{kind: credBearerJWT, value: token, header: HeaderAuthorization}
}

// b64tokenChar marks the characters of RFC 6750's b64token before its
// trailing '=': a table, because every bearer token is scanned on every
// request.
var b64tokenChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

// isB64Token reports whether s matches RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && b64tokenChar[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// principal is an authenticated caller: what the authorise step needs.
type principal struct {
	id Identity
	// seats apply in every space: an API key's, or an IdP token's groups.
	seats seatList
	// spaceSeats, for usher's tokens, name one seat per space (or "*").
	spaceSeats map[string]seatRef
	// allSeats is every seat of the caller, joined: x-usher-seats on a
	// route that names no space.
	allSeats string
	consumed string // the credential's header
	// sid, for usher's tokens minted from a login session, is that
	// session's id: checked on every request (session_auth.go).
	sid string
}

// authenticate verifies the request's credential. A zero Decision status
// means success.
func (a *Authorizer) authenticate(ctx context.Context, r *Request, now time.Time, ck *sessionCookies) (principal, Decision) {
	c := a.credentialOf(r.Headers, ck)
	switch c.kind {
	case credNone:
		return principal{}, Deny(ReasonCredentialMissing)
	case credAPIKey:
		return a.authenticateKey(ctx, c, now)
	case credBearerJWT:
		return a.authenticateToken(ctx, c, now)
	case credSession:
		return a.authenticateSession(ctx, c, now)
	default:
		return principal{}, Deny(c.reason)
	}
}
