// Step 5, answer: the [Decision], its [Reason] codes and the HTTP status of
// each. The headers an answer sets and removes are in headers.go.

package authz

import (
	"log/slog"
)

// Reason is a stable, documented code that says why a request was allowed or
// denied. Clients see it in the deny body; operators in logs and metrics.
// Never rename one: scripts and dashboards match on them.
type Reason string

// Reasons for allowing.
const (
	ReasonAllowed Reason = "allowed" // a credential with the needed permission
	ReasonPublic  Reason = "public"  // a public route: no credential needed
)

// Reasons for a 400: the request cannot be decided as sent.
const (
	ReasonRequestInvalid Reason = "request_invalid" // no HTTP request attributes, an authority that is no host, a bad method override, a reserved header nominated hop-by-hop
	ReasonPathInvalid    Reason = "path_invalid"    // ambiguous or malformed path
	ReasonSpaceMissing   Reason = "space_missing"   // the route takes the space from a header that is absent
	ReasonSpaceInvalid   Reason = "space_invalid"   // the space is not a valid space name
	// ReasonForwardedUntrusted: in HTTP check mode, a request that names
	// the original request in forwarded headers (X-Original-URI,
	// X-Forwarded-Uri, …) from a peer that is not a trusted proxy.
	ReasonForwardedUntrusted Reason = "forwarded_untrusted"
)

// Reasons for a 401: no usable credential.
const (
	ReasonCredentialMissing     Reason = "credential_missing"     // no credential at all
	ReasonAPIKeyMalformed       Reason = "apikey_malformed"       // not an sk_ key: empty, merged duplicates, bad characters, wrong length
	ReasonAPIKeyInvalid         Reason = "apikey_invalid"         // well-formed but unknown, wrong secret or wrong tenant
	ReasonAPIKeyExpired         Reason = "apikey_expired"         // the key's expiry has passed
	ReasonAPIKeyRevoked         Reason = "apikey_revoked"         // the key was revoked
	ReasonBearerMalformed       Reason = "bearer_malformed"       // Authorization is not "Bearer <token>"
	ReasonUnsupportedCredential Reason = "unsupported_credential" // a credential usher cannot check (another Authorization scheme)
	ReasonTokenMalformed        Reason = "token_malformed"        // not a compact JWS of JSON objects, too long, or a repeated or case-variant name
	ReasonTokenInvalid          Reason = "token_invalid"          // bad signature, algorithm not allowed, unknown or retired key, wrong typ
	ReasonTokenExpired          Reason = "token_expired"          // exp has passed (with leeway)
	ReasonTokenNotYetValid      Reason = "token_not_yet_valid"    // nbf or iat in the future (with leeway)
	ReasonTokenClaimsInvalid    Reason = "token_claims_invalid"   // wrong iss or aud, exp missing, tenant mismatch, lifetime too long
	ReasonTokenRevoked          Reason = "token_revoked"          // signed with a revoked key
	ReasonIssuerUnknown         Reason = "issuer_unknown"         // no tenant trusts the token's issuer (for this audience)
	ReasonSessionInvalid        Reason = "session_invalid"        // the session cookie holds no session handle, or an unknown session, a wrong secret or tenant
	ReasonSessionExpired        Reason = "session_expired"        // past the session's absolute expiry, or unused longer than the idle TTL
	ReasonSessionRevoked        Reason = "session_revoked"        // signed out or revoked; also an usher token whose session (sid) is revoked or gone
	ReasonSessionDuplicate      Reason = "session_duplicate"      // two session cookies in one request (never "first wins")
)

// Reasons for a 403: a valid identity without the permission, or no route.
const (
	ReasonPermissionDenied Reason = "permission_denied" // no seat grants the permission in the space
	ReasonNoRoute          Reason = "no_route"          // no rule matches and the default is deny
	ReasonTenantMismatch   Reason = "tenant_mismatch"   // the route names a tenant ({tenant} or tenant_header) other than the caller's
	ReasonSpaceMismatch    Reason = "space_mismatch"    // the path names one space ({space}), a context extension or header another
	ReasonCSRF             Reason = "csrf"              // the session cookie on an unsafe method, cross-site or from a foreign Origin
)

// Reasons for a 5xx: usher could not decide, so it denies.
const (
	ReasonStoreUnavailable  Reason = "store_unavailable"  // the store failed and nothing usable was cached
	ReasonIssuerUnavailable Reason = "issuer_unavailable" // an IdP's discovery or keys could not be fetched, and none was cached
	ReasonTimeout           Reason = "timeout"            // the per-Check deadline passed
	ReasonCanceled          Reason = "canceled"           // the caller went away
	ReasonConfigInvalid     Reason = "config_invalid"     // a route's context extensions make no sense
	ReasonInternal          Reason = "internal"           // a bug: an unexpected error or panic
)

// Reasons lists every reason code, for documentation and metrics.
var Reasons = []Reason{
	ReasonAllowed, ReasonPublic,
	ReasonRequestInvalid, ReasonPathInvalid, ReasonSpaceMissing, ReasonSpaceInvalid, ReasonForwardedUntrusted,
	ReasonCredentialMissing, ReasonAPIKeyMalformed, ReasonAPIKeyInvalid, ReasonAPIKeyExpired, ReasonAPIKeyRevoked,
	ReasonBearerMalformed, ReasonUnsupportedCredential,
	ReasonTokenMalformed, ReasonTokenInvalid, ReasonTokenExpired, ReasonTokenNotYetValid, ReasonTokenClaimsInvalid,
	ReasonTokenRevoked, ReasonIssuerUnknown,
	ReasonSessionInvalid, ReasonSessionExpired, ReasonSessionRevoked, ReasonSessionDuplicate,
	ReasonPermissionDenied, ReasonNoRoute, ReasonTenantMismatch, ReasonSpaceMismatch, ReasonCSRF,
	ReasonConfigInvalid, ReasonInternal,
	ReasonStoreUnavailable, ReasonIssuerUnavailable, ReasonTimeout, ReasonCanceled,
}

// AuthMethod says which credential authenticated a request.
type AuthMethod string

// The credential kinds, in priority order.
const (
	AuthNone   AuthMethod = ""
	AuthAPIKey AuthMethod = "apikey"
	AuthJWT    AuthMethod = "jwt"
	AuthCookie AuthMethod = "cookie"
)

// Identity is who a request comes from.
type Identity struct {
	Subject string
	Tenant  string
	Email   string
	Method  AuthMethod
	// Issuer is the token's issuer when Method is AuthJWT (usher's, or
	// the IdP's), and the IdP that logged the person in when Method is
	// AuthCookie. Subjects are unique only within an issuer.
	Issuer string
	// KeyID is the API key id when Method is AuthAPIKey.
	KeyID string
}

// Decision is the answer to one [Request].
type Decision struct {
	// Status is the HTTP status the caller should get: 200 allows, anything
	// else denies (302, 400, 401, 403, 500, 503). A 302 sends a browser to
	// log in; its Reason is the 401's it stands for.
	Status int
	Reason Reason
	// Identity is set when a credential was verified (also on a 403).
	Identity Identity
	// Seats are the identity's seats that matter for this request, comma
	// separated and sorted: those granting anything in the request's space,
	// or all of them when the route names no space.
	Seats string
	// Remove lists request headers the upstream must not see: client-sent
	// identity headers and, unless configured otherwise, the credential.
	Remove []string
	// Cookie, when not empty, is the Cookie header the upstream gets in
	// place of the client's: the client's without the session cookie.
	// When the session cookie was the only cookie, "cookie" is in Remove.
	Cookie string
	// Location is where a 302 sends the browser: the login app.
	Location string
	// Space and Permission are what the route asked for, for logs.
	Space      string
	Permission string
	// Rule names the matching rule, for logs.
	Rule string
	// Cause is the internal reason for a 5xx. It is logged, never sent.
	Cause error
}

// Allowed reports whether the request may proceed.
func (d Decision) Allowed() bool { return d.Status == 200 }

// LogValue makes a decision log as a group of its facts; no secret is part
// of a decision.
func (d Decision) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.Int("status", d.Status),
		slog.String("reason", string(d.Reason)),
	}
	if d.Identity.Method != AuthNone {
		attrs = append(attrs,
			slog.String("auth", string(d.Identity.Method)),
			slog.String("subject", d.Identity.Subject),
			slog.String("tenant", d.Identity.Tenant))
	}
	if d.Rule != "" {
		attrs = append(attrs, slog.String("rule", d.Rule))
	}
	if d.Permission != "" {
		attrs = append(attrs, slog.String("permission", d.Permission), slog.String("space", d.Space))
	}
	if d.Cause != nil {
		attrs = append(attrs, slog.String("cause", d.Cause.Error()))
	}
	return slog.GroupValue(attrs...)
}

// StatusFor returns the HTTP status a denial for reason gets.
func StatusFor(r Reason) int {
	switch r {
	case ReasonAllowed, ReasonPublic:
		return 200
	case ReasonRequestInvalid, ReasonPathInvalid, ReasonSpaceMissing, ReasonSpaceInvalid, ReasonForwardedUntrusted:
		return 400
	case ReasonPermissionDenied, ReasonNoRoute, ReasonTenantMismatch, ReasonSpaceMismatch, ReasonCSRF:
		return 403
	case ReasonStoreUnavailable, ReasonIssuerUnavailable, ReasonTimeout, ReasonCanceled:
		return 503
	case ReasonConfigInvalid, ReasonInternal:
		return 500
	default:
		return 401
	}
}

// Deny returns a denial for reason with its status.
func Deny(r Reason) Decision { return Decision{Status: StatusFor(r), Reason: r} }

// Failure returns a denial for an internal cause.
func Failure(r Reason, cause error) Decision {
	d := Deny(r)
	d.Cause = cause
	return d
}
