// Step 1, normalise: the request as the proxy saw it, and the host and
// method as the upstream will read them. The path is normalised in path.go.
// A method-override header makes some upstreams run another method, so the
// request must be allowed as that method too.

package authz

import (
	"context"
	"strings"
)

// Request is one request to decide, as the proxy saw it.
type Request struct {
	// Method is the HTTP method in upper case.
	Method string
	// Host is the authority (Host header or :authority), possibly with a port.
	Host string
	// Path is the request target as sent: path and query.
	Path string
	// Headers holds the request headers with lower-case names. Repeated
	// headers arrive merged with "," (as Envoy sends them).
	Headers map[string]string
	// ContextExtensions are the proxy's per-route settings (Envoy's
	// context_extensions); they come from proxy configuration, never from
	// the client.
	ContextExtensions map[string]string
}

// Context extension keys that override the route rules for one route.
const (
	ExtPublic        = "usher.public"        // "true": no credential needed
	ExtAuthenticated = "usher.authenticated" // "true": any valid identity
	ExtPermission    = "usher.permission"    // the permission needed
	ExtSpace         = "usher.space"         // a fixed space
	ExtSpaceHeader   = "usher.space_header"  // the header that names the space
)

// normalizeHost lower-cases host and strips its port and a trailing dot.
// It refuses an authority that is no host: user info ("evil@api..."),
// paths, spaces and other bytes that rules could not match the way the
// upstream's routing reads them. It allocates only when host has upper-case
// letters.
func normalizeHost(host string) (string, bool) {
	if strings.HasPrefix(host, "[") { // [v6]:port
		i := strings.IndexByte(host, ']')
		if i < 0 || (i+1 < len(host) && host[i+1] != ':') {
			return "", false
		}
		host = host[:i+1]
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	upper := false
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		case c == '[' || c == ']' || c == ':':
			if host[0] != '[' {
				return "", false
			}
		default:
			return "", false
		}
	}
	if upper {
		return strings.ToLower(host), true
	}
	return host, true
}

// upperMethod upper-cases an HTTP method: methods are case-sensitive, but an
// upstream that accepts "post" as POST must not slip past a POST rule. It
// allocates only for a method with lower-case letters.
func upperMethod(m string) string {
	for i := 0; i < len(m); i++ {
		if c := m[i]; c >= 'a' && c <= 'z' {
			return strings.ToUpper(m)
		}
	}
	return m
}

// Method-override headers: some frameworks run the method they name
// instead of the request's.
var methodOverrideHeaders = []string{"x-http-method-override", "x-http-method", "x-method-override"}

// checkMethodOverrides decides r again as each method its override headers
// name. It returns the first denial and false, or true when every override
// is allowed too (or none is present).
func (a *Authorizer) checkMethodOverrides(ctx context.Context, r *Request) (Decision, bool) {
	for _, h := range methodOverrideHeaders {
		m, ok := r.Headers[h]
		if !ok {
			continue
		}
		if !validToken(m) {
			return Deny(ReasonRequestInvalid), false
		}
		if m = upperMethod(m); m != upperMethod(r.Method) {
			o := *r
			o.Method = m
			if od, _ := a.decide(ctx, &o); !od.Allowed() {
				return od, false
			}
		}
	}
	return Decision{}, true
}
