package authz

import (
	"net/http"
	"strings"
	"testing"
)

// cookiePairs is a Cookie header's pairs as a server reads them: the
// ';'-separated parts, trimmed, the empty ones dropped.
func cookiePairs(h string) []string {
	var out []string
	for _, p := range strings.Split(h, ";") {
		if p = trimOWS(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// FuzzCookieHeader: the parser never panics; what it strips is exactly
// the session cookies (every other pair goes through as sent); stripping
// and putting a session cookie back round-trips; and where net/http can
// read the header, it finds as many session cookies.
func FuzzCookieHeader(f *testing.F) {
	n, err := GenerateSessionHandle("acme")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		"", "usher_session=" + n.Handle, "a=1; usher_session=x; b=2", "usher_session=a; usher_session=b",
		"a=1, usher_session=x", "USHER_SESSION=x", " usher_session = x ;", ";;;", "a=1;b=2", `a="x; y"`,
		"usher_session", "=usher_session", "a=1; usher_session=x; ", "usher_session=x,usher_session=y",
		"\tusher_session=\t", "usher_session= 0", "a=1;usher_session=;b", strings.Repeat("a=1; ", 50) + "usher_session=x",
	} {
		f.Add(seed)
	}
	const name = DefaultCookieName
	joins := newCookieJoins()
	f.Fuzz(func(t *testing.T, h string) {
		s := scanCookies(h, name)
		rest, found := stripCookies(h, name, joins)
		if found != (s.n > 0) {
			t.Fatalf("%q: strip found %v, scan counted %d", h, found, s.n)
		}
		if found {
			if fast := s.strip(name, nil); fast != rest {
				t.Fatalf("%q: strip after the scan %q, strip %q", h, fast, rest)
			}
		}
		if !found && rest != h {
			t.Fatalf("%q: nothing to strip, but got %q", h, rest)
		}
		if left := scanCookies(rest, name); left.n != 0 {
			t.Fatalf("%q: %q still holds %d session cookies", h, rest, left.n)
		}
		var others []string
		for _, p := range strings.Split(h, ";") {
			if direct, hidden := sessionPair(p, name); !direct && hidden == 0 {
				if p = trimOWS(p); p != "" {
					others = append(others, p)
				}
			}
		}
		if got := cookiePairs(rest); strings.Join(got, "\x00") != strings.Join(others, "\x00") {
			t.Fatalf("%q: stripped to %q, pairs %q, want %q", h, rest, got, others)
		}
		// Round trip: the other cookies plus one session cookie read back
		// as exactly that session cookie, and strip back to the others.
		with := name + "=" + n.Handle
		if rest != "" {
			with = rest + "; " + with
		}
		if back := scanCookies(with, name); back.n != 1 || back.value != n.Handle {
			t.Fatalf("%q: scan of %q = %+v, want the one handle", h, with, back)
		}
		if again, _ := stripCookies(with, name, nil); trimOWS(again) != trimOWS(rest) {
			t.Fatalf("%q: strip of %q = %q, want %q", h, with, again, rest)
		}
		// The reference: net/http's strict parser, where it succeeds and
		// no ',' can hide a pair from it.
		if strings.ContainsAny(h, ",\r\n\x00") {
			return
		}
		cs, err := http.ParseCookie(h)
		if err != nil {
			return
		}
		want, value := 0, ""
		for _, c := range cs {
			if strings.EqualFold(c.Name, name) {
				if want == 0 {
					value = c.Value
				}
				want++
			}
		}
		if s.n != want {
			t.Fatalf("%q: %d session cookies, net/http reads %d", h, s.n, want)
		}
		// net/http keeps whitespace after the '='; browsers (RFC 6265
		// §5.2) and usher trim it.
		if want == 1 && !strings.Contains(h, `"`) && s.value != trimOWS(value) {
			t.Fatalf("%q: value %q, net/http reads %q", h, s.value, value)
		}
	})
}
