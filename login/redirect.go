package login

import (
	"net"
	"net/url"
	"strings"
)

// maxNextLen caps a next URL; longer ones are refused, not truncated.
const maxNextLen = 2048

// safeNext is where a refused or absent next falls back to: the login
// app's own home page, which shows who is signed in.
const safeNext = "/"

// ValidateNext reports whether next is a safe place to send the browser
// after login or logout (docs/security-catalogue.md rows 46–48), and
// returns it unchanged when it is. Allowed are
//
//   - relative paths: one "/" followed by neither "/" nor "\" (which
//     browsers read as another host), and
//   - absolute http or https URLs whose host is rootDomain or a
//     subdomain of it on a dot boundary, with no userinfo.
//
// Everything else is refused: scheme-relative and backslash forms
// ("//evil", "/\evil", "\\evil"), "https:evil" without slashes, other
// schemes (javascript:, data:), control characters, white space, CR/LF
// and tabs (browsers drop them, turning "/\t/evil" into "//evil"), and the
// same tricks percent-encoded, checked after decoding repeatedly.
// rootDomain must be lower case.
func ValidateNext(next, rootDomain string) (string, bool) {
	if next == "" || len(next) > maxNextLen || rootDomain == "" {
		return "", false
	}
	if !rawClean(next) {
		return "", false
	}
	// Check every percent-decoded form too: a server or a browser may
	// decode once more than we think.
	s := next
	for i := 0; ; i++ {
		d, err := url.PathUnescape(s)
		if err != nil || i == 4 && d != s {
			return "", false
		}
		if d == s {
			break
		}
		if !decodedClean(d) || strings.HasPrefix(next, "/") && !relativeOK(d) {
			return "", false
		}
		s = d
	}
	if strings.HasPrefix(next, "/") {
		if !relativeOK(next) {
			return "", false
		}
		u, err := url.Parse(next)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
			return "", false
		}
		return next, true
	}
	return next, absoluteOK(next, rootDomain)
}

// rawClean refuses control characters, white space, backslashes and
// non-ASCII bytes anywhere: a browser strips or rewrites them before
// parsing ("/\t/evil" becomes "//evil").
func rawClean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// decodedClean refuses control characters (CR, LF, tab, NUL…) and
// backslashes in a decoded form; an encoded space or UTF-8 is fine.
func decodedClean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// relativeOK: one slash, then neither a slash nor a backslash.
func relativeOK(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "/\\")
}

func absoluteOK(next, root string) bool {
	lower := strings.ToLower(next)
	var rest string
	switch {
	case strings.HasPrefix(lower, "https://"):
		rest = next[len("https://"):]
	case strings.HasPrefix(lower, "http://"):
		rest = next[len("http://"):]
	default:
		return false // javascript:, data:, https:evil, relative forms
	}
	// The authority ends at the first of / ? #; it must hold no userinfo
	// and nothing encoded.
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if authority == "" || strings.ContainsAny(authority, "@%") {
		return false
	}
	u, err := url.Parse(next)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host != authority {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return false
	}
	if net.ParseIP(host) == nil && !validHost(host) {
		return false
	}
	if p := u.Port(); p != "" && !validPort(p) {
		return false
	}
	return onDomain(host, root)
}

func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// nextOrDefault returns next when ValidateNext accepts it, else safeNext.
func nextOrDefault(next, rootDomain string) string {
	if v, ok := ValidateNext(next, rootDomain); ok {
		return v
	}
	return safeNext
}
