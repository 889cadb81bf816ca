// Step 3, authenticate, the session cookie's part of the Cookie header:
// finding the session cookie among the request's cookies (strictly: two
// of them are refused, never "first wins"), and the header the upstream
// gets without it. Verifying the handle it holds is in session_auth.go.

package authz

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// HeaderCookie is the request header browsers send cookies in.
const HeaderCookie = "cookie"

// CookieConfig turns the session cookie of the login app on as Check's
// third credential, after x-api-key and Authorization.
type CookieConfig struct {
	// Enabled turns the cookie credential on. Off (the default), Check
	// ignores cookies entirely, as before the login app existed.
	Enabled bool
	// Name is the session cookie's name; "" means DefaultCookieName.
	Name string
	// RootDomain is the domain the cookie is set on: an Origin of an
	// unsafe cookie-authenticated request must be on it or a subdomain.
	RootDomain string
	// LoginURL is the login app's public base URL. When set, a browser
	// navigation without a usable session is redirected to its /login;
	// when empty, it gets the usual 401.
	LoginURL string
	// IdleTTL is how long a session may go unused; 0 means DefaultIdleTTL.
	IdleTTL time.Duration
}

// Defaults of [CookieConfig].
const (
	DefaultCookieName = "usher_session"
	DefaultIdleTTL    = 2 * time.Hour
)

// withDefaults fills the fields left zero.
func (c CookieConfig) withDefaults() CookieConfig {
	if c.Name == "" {
		c.Name = DefaultCookieName
	}
	if c.IdleTTL == 0 {
		c.IdleTTL = DefaultIdleTTL
	}
	return c
}

// Validate reports every problem with c (defaults applied), naming the
// config field. A disabled config is always valid.
func (c CookieConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	c = c.withDefaults()
	var errs []error
	if !validToken(c.Name) {
		errs = append(errs, fmt.Errorf("login.cookie_name: %q is not a cookie name (an RFC 9110 token)", c.Name))
	}
	if h, ok := normalizeHost(c.RootDomain); !ok || h == "" || h != c.RootDomain || strings.HasPrefix(h, "[") || !strings.Contains(h, ".") {
		errs = append(errs, fmt.Errorf("login.root_domain: %q is not a lower-case domain name with a dot", c.RootDomain))
	}
	if c.LoginURL != "" {
		if err := validLoginURL(c.LoginURL); err != nil {
			errs = append(errs, fmt.Errorf("login.url: %w", err))
		}
	}
	if c.IdleTTL < time.Minute {
		errs = append(errs, errors.New("login.idle_ttl: must be at least 1m"))
	}
	return errors.Join(errs...)
}

func validLoginURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q does not parse as a URL", s)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute http(s) URL without user info, query or fragment", s)
	}
	return nil
}

// sessionCookies is what a Cookie header holds of the session cookie.
type sessionCookies struct {
	header string // the Cookie header
	// first is where the first session cookie's ';'-separated piece starts
	// in header; hidden reports a session cookie behind a ','.
	first  int
	hidden bool
	// n counts the session cookies: pairs whose name is the cookie's
	// name in any case, and any such pair hidden behind a ',' inside
	// another pair (two Cookie headers merged with ',' by a proxy).
	n int
	// value is the first session cookie's value, if n is 1 and it is a
	// pair of its own.
	value string
}

// scanCookies finds the session cookie named name in a Cookie header
// (RFC 6265 §4.2.1: pairs separated by ';' and optional whitespace). It
// allocates nothing.
func scanCookies(h, name string) sessionCookies {
	s := sessionCookies{header: h}
	pos := 0
	for rest, more := h, true; more; {
		var piece string
		piece, rest, more = strings.Cut(rest, ";")
		direct, hidden := sessionPair(piece, name)
		if (direct || hidden > 0) && s.n == 0 {
			s.first = pos
		}
		if direct {
			if s.n == 0 {
				_, v, _ := strings.Cut(piece, "=")
				s.value = trimOWS(v)
			}
			s.n++
		}
		if hidden > 0 {
			s.n += hidden
			s.value, s.hidden = "", true
		}
		pos += len(piece) + 1
	}
	return s
}

// strip is stripCookies of the scanned header, without scanning it again
// when it holds one session cookie, a pair of its own.
func (s *sessionCookies) strip(name string, joins *cookieJoins) string {
	if s.n == 1 && !s.hidden {
		return joins.join(cutPiece(s.header, s.first))
	}
	rest, _ := stripCookies(s.header, name, joins)
	return rest
}

// sessionPair reports whether piece (one ';'-separated part of a Cookie
// header) is a session cookie named name, and how many more hide in it
// behind a ','.
func sessionPair(piece, name string) (direct bool, hidden int) {
	direct = namedPair(piece, name)
	for i := strings.IndexByte(piece, ','); i >= 0; {
		piece = piece[i+1:]
		if namedPair(piece, name) {
			hidden++
		}
		i = strings.IndexByte(piece, ',')
	}
	return direct, hidden
}

// namedPair reports whether s is a pair "name=…" (whitespace around the
// name allowed, the name in any case).
func namedPair(s, name string) bool {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	if len(s) <= len(name) || !strings.EqualFold(s[:len(name)], name) {
		return false
	}
	for s = s[len(name):]; len(s) > 0 && (s[0] == ' ' || s[0] == '\t'); {
		s = s[1:]
	}
	return len(s) > 0 && s[0] == '='
}

// stripCookies returns h without its session cookies (and without any
// pair that hides one behind a ','), the other cookies as they were sent;
// "" when nothing is left. found reports whether there was one. It
// allocates only when the session cookie sat between two others, and then
// only once for the same cookies when joins remembers them.
// joins, if not nil, remembers what it built.
func stripCookies(h, name string, joins *cookieJoins) (rest string, found bool) {
	var first, count int
	pos := 0
	for rest, more := h, true; more; {
		var piece string
		piece, rest, more = strings.Cut(rest, ";")
		if direct, hidden := sessionPair(piece, name); direct || hidden > 0 {
			if count == 0 {
				first = pos
			}
			count++
		}
		pos += len(piece) + 1
	}
	switch count {
	case 0:
		return h, false
	case 1:
		return joins.join(cutPiece(h, first)), true
	}
	var b strings.Builder
	b.Grow(len(h))
	for rest, more := h, true; more; {
		var piece string
		piece, rest, more = strings.Cut(rest, ";")
		if direct, hidden := sessionPair(piece, name); direct || hidden > 0 {
			continue
		}
		if p := trimOWS(piece); p != "" {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p)
		}
	}
	return b.String(), true
}

// cutPiece removes the ';'-separated piece starting at s from h, with one
// separator next to it: what is left is join(a, b).
func cutPiece(h string, s int) (a, b string) {
	e := strings.IndexByte(h[s:], ';')
	if e >= 0 {
		e += s
		if s == 0 {
			return trimOWS(h[e+1:]), ""
		}
		if strings.TrimLeft(h[e+1:], " \t") == "" {
			return trimOWS(h[:s-1]), ""
		}
		return h[:s], h[e+1:]
	}
	if s == 0 {
		return "", ""
	}
	return trimOWS(h[:s-1]), ""
}

// joinedSlots and maxJoinedLen bound the cookieJoins table: at most 1024
// remembered headers of at most 2 KiB.
const (
	joinedSlots  = 1 << 10
	maxJoinedLen = 2 << 10
)

// cookieJoins remembers Cookie headers recently rebuilt without the
// session cookie: a browser sends the same cookies request after request,
// so the header the upstream gets is built once, not on every request. It
// holds only what goes upstream (never a session cookie), and a hit is
// checked against the whole header, so a slot collision costs a rebuild,
// never a wrong header.
type cookieJoins struct {
	seed  maphash.Seed
	slots [joinedSlots]atomic.Pointer[string]
}

func newCookieJoins() *cookieJoins { return &cookieJoins{seed: maphash.MakeSeed()} }

// join returns a + b, the copy remembered from an earlier request when
// there is one.
func (j *cookieJoins) join(a, b string) string {
	switch {
	case b == "":
		return a
	case a == "":
		return b
	case j == nil || len(a)+len(b) > maxJoinedLen:
		return a + b
	}
	slot := &j.slots[(maphash.String(j.seed, a)*31+maphash.String(j.seed, b))%joinedSlots]
	if p := slot.Load(); p != nil {
		if out := *p; len(out) == len(a)+len(b) && out[:len(a)] == a && out[len(a):] == b {
			return out
		}
	}
	out := a + b
	slot.Store(&out)
	return out
}

// trimOWS trims the optional whitespace (SP and HTAB) around s.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
