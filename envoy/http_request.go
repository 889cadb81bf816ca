// HTTP check mode, step 1: the original request, read from a check request
// in one of the dialects.

package envoy

import (
	"net/http"
	"strings"

	"github.com/usher-dev/usher/authz"
)

// Headers that name the original request at [PathAuth].
const (
	// nginx auth_request (set by proxy_set_header in the auth location).
	hdrOriginalURI    = "X-Original-Uri"
	hdrOriginalMethod = "X-Original-Method"
	// Traefik forwardAuth and Caddy forward_auth.
	hdrForwardedURI    = "X-Forwarded-Uri"
	hdrForwardedMethod = "X-Forwarded-Method"
	// Both.
	hdrForwardedHost  = "X-Forwarded-Host"
	hdrForwardedProto = "X-Forwarded-Proto"
)

// dialectHeaders are the headers that describe the check request itself,
// not the original request: they are not handed to the decision.
var dialectHeaders = map[string]bool{
	"x-original-uri": true, "x-original-method": true,
	"x-forwarded-uri": true, "x-forwarded-method": true,
}

// requestFrom reads the original request from a check request. found is
// false for a path that is no check; reason is set when the request cannot
// be decided as sent.
func (s *HTTPServer) requestFrom(hr *http.Request) (r authz.Request, reason authz.Reason, found bool) {
	// The raw request target: net/http's URL.Path is decoded, and every
	// spelling of the path (escapes, "//", dot segments) must reach the
	// decision as sent.
	target := hr.RequestURI
	switch {
	case strings.HasPrefix(target, PathExtAuthz+"/"):
		return authz.Request{
			Method:  hr.Method,
			Host:    hr.Host,
			Path:    target[len(PathExtAuthz):],
			Headers: headersFrom(hr.Header),
		}, "", true
	case target == PathAuth || strings.HasPrefix(target, PathAuth+"?"):
		r, reason = s.forwardedRequest(hr)
		return r, reason, true
	}
	return authz.Request{}, "", false
}

// forwardedRequest reads the original request of nginx (X-Original-URI,
// X-Original-Method) or Traefik and Caddy (X-Forwarded-Uri,
// X-Forwarded-Method), with X-Forwarded-Host, from a trusted proxy. A
// request that names the original in both ways, differently, repeats one
// of the headers, or lacks the method, URI or host, cannot be decided.
func (s *HTTPServer) forwardedRequest(hr *http.Request) (authz.Request, authz.Reason) {
	if s.trusted(hr.RemoteAddr) != nil {
		return authz.Request{}, authz.ReasonForwardedUntrusted
	}
	h := hr.Header
	uri, ok := either(h, hdrOriginalURI, hdrForwardedURI)
	if !ok || uri == "" {
		return authz.Request{}, authz.ReasonRequestInvalid
	}
	method, ok := either(h, hdrOriginalMethod, hdrForwardedMethod)
	if !ok || !isToken(method) {
		return authz.Request{}, authz.ReasonRequestInvalid
	}
	host, ok := single(h, hdrForwardedHost)
	if !ok || host == "" || strings.ContainsRune(host, ',') {
		return authz.Request{}, authz.ReasonRequestInvalid
	}
	if proto, ok := single(h, hdrForwardedProto); !ok || (proto != "" && !strings.EqualFold(proto, "http") && !strings.EqualFold(proto, "https")) {
		return authz.Request{}, authz.ReasonRequestInvalid
	}
	return authz.Request{Method: method, Host: host, Path: uri, Headers: headersFrom(h)}, ""
}

// single returns the one value of header name ("" if absent); ok is false
// when it is repeated.
func single(h http.Header, name string) (string, bool) {
	switch v := h[name]; len(v) {
	case 0:
		return "", true
	case 1:
		return v[0], true
	}
	return "", false
}

// either returns the value of header a or b: ok is false when either is
// repeated, or when both are present and differ.
func either(h http.Header, a, b string) (string, bool) {
	va, oka := single(h, a)
	vb, okb := single(h, b)
	_, hasA := h[a]
	_, hasB := h[b]
	switch {
	case !oka || !okb:
		return "", false
	case hasA && hasB && va != vb:
		return "", false
	case hasA:
		return va, true
	}
	return vb, true
}

// isToken reports whether m is a non-empty RFC 9110 token, as a method is.
func isToken(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// headersFrom converts the check request's headers into the decision's:
// lower-case names, repeated headers joined with "," ("; " for cookie, RFC
// 9113 §8.2.3), as Envoy sends them over gRPC; without the check request's
// dialect headers. The check request's own hop-by-hop headers stay: a
// proxy never forwards the client's, and its own (Connection: close,
// keep-alive) name nothing usher reads.
func headersFrom(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for name, values := range h {
		k := strings.ToLower(name)
		if dialectHeaders[k] || len(values) == 0 {
			continue
		}
		sep := ","
		if k == "cookie" {
			sep = "; "
		}
		m[k] = strings.Join(values, sep)
	}
	return m
}
