// Step 1, normalise: the request as the proxy saw it, and the host and
// method as the upstream will read them. The path is normalised in path.go.
// A method-override header makes some upstreams run another method, so the
// request must be allowed as that method too.

package authz

import (
	"strings"
)

// Request is one request to decide, as the proxy saw it.
type Request struct {
	// Method is the HTTP method in upper case.
	Method string
	// Scheme is the request's scheme ("https" or "http") as the proxy saw
	// it; "" falls back to the :scheme header, then to https. Only the
	// login redirect's next URL uses it.
	Scheme string
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

// nominatesReserved reports whether a Connection header value names as
// hop-by-hop one of the headers usher sets or reads: an identity header (in
// any of its spellings) or a credential. A proxy between Envoy and the
// upstream that honours it would drop usher's identity headers, or let the
// client's spoofed ones through in their place (docs/security-catalogue.md
// row 98), so such a request is refused.
func nominatesReserved(connection string) bool {
	for connection != "" {
		var name string
		name, connection, _ = strings.Cut(connection, ",")
		name = strings.ToLower(strings.TrimSpace(name))
		if isIdentityHeader(name) || name == HeaderAPIKey || name == HeaderAuthorization {
			return true
		}
	}
	return false
}

// Method-override headers: some frameworks run the method they name
// instead of the request's.
var methodOverrideHeaders = []string{"x-http-method-override", "x-http-method", "x-method-override"}

// methodOverride returns the method the request asks an upstream to run
// instead of its own, upper-cased, or "" when it asks for none. Some
// frameworks obey an override header (X-HTTP-Method-Override, X-HTTP-Method,
// X-Method-Override) or a "_method" query parameter (Laravel and Symfony,
// Express's method-override): each is read here the way the most lenient of
// them reads it. ok is false when an override is no method, or when two
// overrides name different methods: which one an upstream obeys depends on
// the upstream, so the request is ambiguous.
func methodOverride(r *Request) (method string, ok bool) {
	add := func(m string) bool {
		if !validToken(m) {
			return false
		}
		m = upperMethod(m)
		if method != "" && m != method {
			return false
		}
		method = m
		return true
	}
	for _, h := range methodOverrideHeaders {
		if m, present := r.Headers[h]; present && !add(m) {
			return "", false
		}
	}
	_, query, _ := strings.Cut(r.Path, "?")
	for query != "" {
		var pair string
		if i := strings.IndexAny(query, "&;"); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			pair, query = query, ""
		}
		name, value, _ := strings.Cut(pair, "=")
		if isMethodParam(queryUnescape(name)) && !add(queryUnescape(value)) {
			return "", false
		}
	}
	return method, true
}

// isMethodParam reports whether a decoded query parameter name reads as
// "_method" to some framework: in any case; with leading spaces, which PHP
// drops; with '.', ' ' or '[' for the '_', as PHP folds them; and in the
// array forms "_method[]" and "_method[0]", whose first element
// method-override takes.
func isMethodParam(name string) bool {
	name = strings.TrimLeft(name, " ")
	if len(name) < len("_method") || !strings.ContainsRune("_. [", rune(name[0])) ||
		!strings.EqualFold(name[1:len("_method")], "method") {
		return false
	}
	rest := name[len("_method"):]
	return rest == "" || rest[0] == '['
}

// queryUnescape decodes a query component the way form decoders do: '+' is
// a space, and a malformed escape stays as it is. It allocates only when s
// holds a '%' or '+'.
func queryUnescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if v, ok := unhex2(s, i+1); ok {
				b = append(b, v)
				i += 2
				continue
			}
			b = append(b, c)
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
