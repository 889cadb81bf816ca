// Step 5, answer: the identity headers an allowed request carries
// upstream, and the headers removed from it: client-sent look-alikes of the
// identity headers and, unless configured otherwise, the credential.

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

var (
	removeAPIKey        = []string{HeaderAPIKey}
	removeAuthorization = []string{HeaderAuthorization}
)

func credentialRemoval(header string, keep bool) []string {
	if keep {
		return nil
	}
	switch header {
	case HeaderAPIKey:
		return removeAPIKey
	case HeaderAuthorization:
		return removeAuthorization
	}
	return nil
}

// removals adds to d.Remove every client-sent header that reads as an
// identity header, except those the decision sets (they are overwritten).
func (a *Authorizer) removals(h map[string]string, d *Decision) []string {
	out := d.Remove
	copied := false
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
