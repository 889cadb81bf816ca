package authz

import "strings"

// Credential headers, in priority order.
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

// Identity headers usher sets on an allowed request.
const (
	HeaderSubject = "x-usher-subject"
	HeaderTenant  = "x-usher-tenant"
	HeaderEmail   = "x-usher-email"
	HeaderAuth    = "x-usher-auth"
	HeaderIssuer  = "x-usher-issuer"
	HeaderSpace   = "x-usher-space"
	HeaderSeats   = "x-usher-seats"
)

// IdentityHeaders lists every identity header usher may set; a proxy in
// front should strip them from client requests on routes usher does not
// check.
var IdentityHeaders = []string{HeaderSubject, HeaderTenant, HeaderEmail, HeaderAuth, HeaderIssuer, HeaderSpace, HeaderSeats}

// Method-override headers: some frameworks run the method they name
// instead of the request's.
var methodOverrideHeaders = []string{"x-http-method-override", "x-http-method", "x-method-override"}

// isIdentityHeader reports whether name (lower-case) reads as an identity
// header to some upstream: "x-usher-" with '_' or '.' in place of any '-',
// as CGI-style servers fold them.
func isIdentityHeader(name string) bool {
	const prefix = "x-usher-"
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		if prefix[i] == '-' {
			if c != '-' && c != '_' && c != '.' {
				return false
			}
		} else if c != prefix[i] && c != prefix[i]-'a'+'A' {
			return false
		}
	}
	return true
}
