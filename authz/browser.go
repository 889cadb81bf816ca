// Step 5, answer, for browsers: a navigation without a usable session is
// sent to the login app instead of getting a JSON 401, and a request the
// session cookie authenticates is refused when another site could have
// made the browser send it (CSRF).

package authz

import (
	"net/url"
	"strings"
)

// Request headers the browser answers read.
const (
	headerSecFetchMode   = "sec-fetch-mode"
	headerSecFetchSite   = "sec-fetch-site"
	headerAccept         = "accept"
	headerRequestedWith  = "x-requested-with"
	headerOrigin         = "origin"
	headerScheme         = ":scheme"
	defaultRequestScheme = "https"
)

// loginRedirects reports whether a denial for reason sends a browser to
// log in: no credential, or a session that cannot be used any more.
func loginRedirects(reason Reason) bool {
	switch reason {
	case ReasonCredentialMissing, ReasonSessionInvalid, ReasonSessionExpired, ReasonSessionRevoked:
		return true
	}
	return false
}

// isNavigation reports whether r is a browser navigating to a page: a GET
// or HEAD that says so (Sec-Fetch-Mode: navigate), or that accepts HTML
// and is not a script's request (X-Requested-With, which XHR libraries
// set).
func isNavigation(r *Request) bool {
	if m := upperMethod(r.Method); m != "GET" && m != "HEAD" {
		return false
	}
	if r.Headers[headerSecFetchMode] == "navigate" {
		return true
	}
	if _, xhr := r.Headers[headerRequestedWith]; xhr {
		return false
	}
	return acceptsHTML(r.Headers[headerAccept])
}

// acceptsHTML reports whether an Accept header names text/html (RFC 9110
// §12.5.1) with a non-zero weight.
func acceptsHTML(accept string) bool {
	for rest, more := accept, accept != ""; more; {
		var item string
		item, rest, more = strings.Cut(rest, ",")
		mt, params, _ := strings.Cut(item, ";")
		if !strings.EqualFold(trimOWS(mt), "text/html") {
			continue
		}
		if !zeroWeight(params) {
			return true
		}
	}
	return false
}

// zeroWeight reports whether media-range parameters say q=0.
func zeroWeight(params string) bool {
	for rest, more := params, params != ""; more; {
		var p string
		p, rest, more = strings.Cut(rest, ";")
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(trimOWS(k), "q") {
			v = trimOWS(v)
			return strings.Trim(v, "0.") == "" && v != ""
		}
	}
	return false
}

// loginLocation is where a browser navigation without a usable session
// goes: the login app's /login with the request's absolute URL as next.
// The login app validates next before it follows it.
func (a *Authorizer) loginLocation(r *Request) string {
	scheme := r.Scheme
	if scheme == "" {
		scheme = r.Headers[headerScheme]
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		scheme = defaultRequestScheme
	}
	path := r.Path
	if !strings.HasPrefix(path, "/") {
		path = "/"
	}
	next := scheme + "://" + strings.ToLower(r.Host) + path
	return a.loginBase + "/login?next=" + url.QueryEscape(next)
}

// safeMethod reports whether m (upper case) is safe (RFC 9110 §9.2.1): a
// browser sends those cross-site freely, and they must not change
// anything. Every other method is unsafe, not only POST, PUT, PATCH and
// DELETE.
func safeMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// crossSite reports whether a cookie-authenticated request may have been
// made by another site: Sec-Fetch-Site says cross-site, or an Origin is
// sent that is not the root domain or one of its subdomains (an opaque
// "null" origin included).
func (a *Authorizer) crossSite(h map[string]string) bool {
	if h[headerSecFetchSite] == "cross-site" {
		return true
	}
	origin, ok := h[headerOrigin]
	return ok && !a.onRootDomain(origin)
}

// onRootDomain reports whether origin (scheme://host[:port]) is an http(s)
// origin on the root domain or a subdomain of it.
func (a *Authorizer) onRootDomain(origin string) bool {
	scheme, hostport, ok := strings.Cut(origin, "://")
	if !ok || !strings.EqualFold(scheme, "https") && !strings.EqualFold(scheme, "http") ||
		hostport == "" || strings.ContainsAny(hostport, "/@\\?#") {
		return false
	}
	host, ok := normalizeHost(hostport)
	if !ok || host == "" {
		return false
	}
	root := a.cookie.RootDomain
	return host == root || strings.HasSuffix(host, root) && host[len(host)-len(root)-1] == '.'
}
