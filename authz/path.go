package authz

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// MaxPathLen bounds the request path (with its query) that is parsed at all.
const MaxPathLen = 8 << 10

// Errors from [NormalizePath]. Their text is safe to show to a client.
var (
	errPathEmpty    = errors.New("path is empty")
	errPathLong     = errors.New("path is too long")
	errPathRelative = errors.New("path must start with '/'")
	errPathControl  = errors.New("path holds a control character")
	errPathEscape   = errors.New("path holds a malformed percent escape")
	errPathSlash    = errors.New("path holds an encoded '/' or '\\'")
	errPathBack     = errors.New("path holds a backslash")
	errPathParam    = errors.New("path holds a ';' parameter")
	errPathFragment = errors.New("path holds a '#' fragment")
	errPathDot      = errors.New("path holds a '.' or '..' segment")
	errPathQuery    = errors.New("path holds an encoded '?' or '#'")
	errPathDouble   = errors.New("path holds a double-encoded escape")
	errPathUTF8     = errors.New("path is not UTF-8 once decoded")
)

// NormalizePath returns the path that rules are matched against, or an error
// when the path is ambiguous: different upstreams would read it as different
// resources.
//
// Rules are matched against the path as an upstream that decodes it before
// routing reads it (Spring, ASP.NET Core, Go's ServeMux, Werkzeug, Express),
// so that every spelling of a route meets the same rule:
//   - the query is cut off at the first '?';
//   - every percent escape is decoded, in either hex case ("%3A" and "%3a"
//     are ':'), except "%25": a '%' stays "%25", the one escape left in a
//     normal path (no rule literal holds a '%');
//   - runs of '/' are merged.
//
// It rejects what upstreams disagree on, and the escapes that would change
// the path's structure once decoded: "." and ".." segments, also when
// encoded (an upstream that does not resolve them routes "/admin/.." to its
// admin handler, one that does to "/"); control characters, raw or encoded
// (%00); a raw or encoded backslash; an encoded slash (%2F); an encoded '?'
// or '#' (%3F, %23: a decoding upstream may cut the path there); ';' path
// parameters (Java servers strip them, so "/a/..;/b" reaches "/b"), also
// when encoded; a raw '#'; a "%25" that a second decoding would turn into
// an escape ("%252e", "%25%32%65"); a path that is not UTF-8 once decoded
// (overlong forms such as "%C0%AE" are '.' to some decoders and U+FFFD to
// others); malformed escapes; and paths over [MaxPathLen]. Envoy configured
// with normalize_path never sends dot segments, so rejecting them costs
// nothing there.
//
// A path that is already normal is returned without allocating.
func NormalizePath(raw string) (string, error) {
	if raw == "" {
		return "", errPathEmpty
	}
	if len(raw) > MaxPathLen {
		return "", errPathLong
	}
	p := raw
	if q := strings.IndexByte(p, '?'); q >= 0 {
		p = p[:q]
	}
	if p == "" || p[0] != '/' {
		return "", errPathRelative
	}
	clean, ascii := true, true
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return "", errPathControl
		case c >= 0x80:
			ascii = false
		case c == '\\':
			return "", errPathBack
		case c == ';':
			return "", errPathParam
		case c == '#':
			return "", errPathFragment
		case c == '%':
			v, ok := unhex2(p, i+1)
			if !ok {
				return "", errPathEscape
			}
			switch {
			case v < 0x20 || v == 0x7f:
				return "", errPathControl
			case v == '/' || v == '\\':
				return "", errPathSlash
			case v == ';':
				return "", errPathParam
			case v == '?' || v == '#':
				return "", errPathQuery
			case v == '%':
				if doubleEscape(p, i+3) {
					return "", errPathDouble
				}
			default:
				clean = false // decode it
			}
			i += 2
		case c == '/':
			rest := p[i+1:]
			if rest == "." || rest == ".." || strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") {
				return "", errPathDot
			}
			if strings.HasPrefix(rest, "/") {
				clean = false
			}
		}
	}
	if clean {
		if !ascii && !utf8.ValidString(p) {
			return "", errPathUTF8
		}
		return p, nil
	}
	return rewritePath(p)
}

// doubleEscape reports whether the two characters at p[j:], once decoded,
// are hex digits: after a "%25", they make an escape that a second decoding
// would decode.
func doubleEscape(p string, j int) bool {
	for range 2 {
		c, n := decodedAt(p, j)
		if _, ok := unhex(c); n == 0 || !ok {
			return false
		}
		j += n
	}
	return true
}

// decodedAt returns the character at p[j:], decoding an escape, and how
// many bytes it takes; 0 at the end or at a malformed escape.
func decodedAt(p string, j int) (byte, int) {
	if j >= len(p) {
		return 0, 0
	}
	if p[j] != '%' {
		return p[j], 1
	}
	v, ok := unhex2(p, j+1)
	if !ok {
		return 0, 0
	}
	return v, 3
}

// rewritePath decodes escapes and merges slashes in a path that
// NormalizePath has already validated, rejecting segments that decode to
// "." or ".." and a result that is not UTF-8.
func rewritePath(p string) (string, error) {
	var b strings.Builder
	b.Grow(len(p))
	for start := 1; start <= len(p); {
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		seg := decodeSegment(p[start:end])
		switch seg {
		case ".", "..":
			return "", errPathDot
		case "":
			// An empty segment: merged, except that a trailing slash stays.
			if end == len(p) && b.Len() > 0 {
				b.WriteByte('/')
			}
		default:
			b.WriteByte('/')
			b.WriteString(seg)
		}
		start = end + 1
	}
	if b.Len() == 0 {
		return "/", nil
	}
	out := b.String()
	if !utf8.ValidString(out) {
		return "", errPathUTF8
	}
	return out, nil
}

// decodeSegment decodes every escape but "%25", which stays as it is.
func decodeSegment(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		v, _ := unhex2(s, i+1)
		if v == '%' {
			b = append(b, "%25"...)
		} else {
			b = append(b, v)
		}
		i += 2
	}
	return string(b)
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex2(s string, i int) (byte, bool) {
	if i+1 >= len(s) {
		return 0, false
	}
	h, ok1 := unhex(s[i])
	l, ok2 := unhex(s[i+1])
	return h<<4 | l, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
