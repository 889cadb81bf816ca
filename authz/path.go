package authz

import (
	"errors"
	"strings"
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
)

// NormalizePath returns the path that rules are matched against, or an error
// when the path is ambiguous: different upstreams would read it as different
// resources.
//
// It normalises only what cannot change which resource an upstream serves,
// the way Envoy's normalize_path and merge_slashes do:
//   - the query is cut off at the first '?';
//   - percent escapes of unreserved characters (RFC 3986 §2.3) are decoded,
//     other escapes are kept with upper-case hex;
//   - runs of '/' are merged.
//
// It rejects what upstreams disagree on: "." and ".." segments, also when
// encoded (an upstream that does not resolve them routes "/admin/.." to its
// admin handler, one that does to "/"), control characters and %00, a raw
// or encoded backslash, an encoded slash (%2F), ';' path parameters (Java
// servers strip them, so "/a/..;/b" reaches "/b") also when encoded, a '#',
// malformed escapes, and paths over [MaxPathLen]. Envoy configured with
// normalize_path never sends dot segments, so rejecting them costs nothing
// there.
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
	clean := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return "", errPathControl
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
			}
			if isUnreserved(v) || p[i+1] >= 'a' || p[i+2] >= 'a' {
				clean = false // decode it, or upper-case its hex
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
		return p, nil
	}
	return rewritePath(p)
}

// rewritePath decodes escapes and merges slashes in a path that
// NormalizePath has already validated, rejecting segments that decode to
// "." or "..".
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
	return b.String(), nil
}

// decodeSegment decodes escapes of unreserved characters and upper-cases
// the hex of the others.
func decodeSegment(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		v, _ := unhex2(s, i+1)
		if isUnreserved(v) {
			b = append(b, v)
		} else {
			b = append(b, '%', hexDigits[v>>4], hexDigits[v&15])
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
