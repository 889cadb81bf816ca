// Step 5, answer: the identity headers an allowed request carries
// upstream, and the headers removed from it: client-sent look-alikes of the
// identity headers, every credential usher did not verify and, unless
// configured otherwise, the one it did (the session cookie is taken out of
// the Cookie header, the other cookies stay).

package authz

import "slices"

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

// Removal lists for the common cases, shared and never appended to.
var (
	removeAPIKey        = []string{HeaderAPIKey}
	removeAuthorization = []string{HeaderAuthorization}
	removeBoth          = []string{HeaderAuthorization, HeaderAPIKey}
)

// credentialRemovals lists the credential headers in h that must not reach
// the upstream: every credential usher understands, except the one it
// verified (verified names its header) when keep is set. An upstream that
// trusts a header "because the gateway checked it" must never see one that
// usher did not check: an x-api-key that decided leaves a forged
// Authorization behind otherwise. An Authorization header of a scheme usher
// does not understand (Basic, Digest, …) is the upstream's own business and
// stays; a Bearer, or one that does not parse at all, is usher's.
func credentialRemovals(h map[string]string, verified string, keep bool) []string {
	_, apiKey := h[HeaderAPIKey]
	apiKey = apiKey && !(keep && verified == HeaderAPIKey)
	auth, authOK := h[HeaderAuthorization]
	authOK = authOK && !(keep && verified == HeaderAuthorization) &&
		(verified == HeaderAuthorization || usherAuthorization(auth))
	switch {
	case apiKey && authOK:
		return removeBoth
	case apiKey:
		return removeAPIKey
	case authOK:
		return removeAuthorization
	}
	return nil
}

// usherAuthorization reports whether an Authorization value is one usher
// reads as its own credential: the Bearer scheme, or no valid scheme at all.
func usherAuthorization(v string) bool {
	c := parseAuthorization(v)
	return c.kind != credUnsupported
}

// removals returns what the upstream must not see of a request usher
// allows: the credentials of credentialRemovals and every client-sent header
// that reads as an identity header, except those the decision sets (they
// are overwritten).
func (a *Authorizer) removals(h map[string]string, d *Decision, verified string, ck *sessionCookies) []string {
	out := credentialRemovals(h, verified, a.keepCredential)
	copied := false
	if a.stripSessionCookie(d, verified, ck) {
		out = append(slices.Clip(out), HeaderCookie) // never append into a shared slice
		copied = true
	}
	for name := range h {
		if !isIdentityHeader(name) || d.sets(name) {
			continue
		}
		if !copied {
			out = slices.Clip(out) // never append into a shared slice
			copied = true
		}
		out = append(out, name)
	}
	if copied {
		slices.Sort(out)
	}
	return out
}

// stripSessionCookie takes the session cookie (every one of them) out of
// the Cookie header the upstream gets, unless it is the credential that
// decided and keep_credential is set; the request's other cookies go
// through as sent. It sets d.Cookie to what is left, or reports that
// nothing is, and the header is to be removed.
func (a *Authorizer) stripSessionCookie(d *Decision, verified string, ck *sessionCookies) (removeHeader bool) {
	if ck.n == 0 || a.keepCredential && verified == HeaderCookie {
		return false
	}
	rest := ck.strip(a.cookie.Name, a.cookieJoins)
	if rest == "" {
		return true
	}
	d.Cookie = rest
	return false
}

// sets reports whether an allowed decision sets header name upstream.
func (d *Decision) sets(name string) bool {
	if d.Identity.Method == AuthNone {
		return false
	}
	switch name {
	case HeaderSubject, HeaderTenant, HeaderAuth:
		return true
	case HeaderEmail:
		return d.Identity.Email != ""
	case HeaderIssuer:
		return d.Identity.Issuer != ""
	case HeaderSpace:
		return d.Space != ""
	case HeaderSeats:
		return d.Seats != ""
	}
	return false
}

// IdentityHeaders calls set for each identity header an allowed decision
// sends upstream, in a fixed order.
func (d *Decision) IdentityHeaders(set func(name, value string)) {
	if !d.Allowed() || d.Identity.Method == AuthNone {
		return
	}
	set(HeaderSubject, d.Identity.Subject)
	set(HeaderTenant, d.Identity.Tenant)
	if d.Identity.Email != "" {
		set(HeaderEmail, d.Identity.Email)
	}
	set(HeaderAuth, string(d.Identity.Method))
	if d.Identity.Issuer != "" {
		set(HeaderIssuer, d.Identity.Issuer)
	}
	if d.Space != "" {
		set(HeaderSpace, d.Space)
	}
	if d.Seats != "" {
		set(HeaderSeats, d.Seats)
	}
}
