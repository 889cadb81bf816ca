package authz

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// pathTests are the attacks of docs/SECURITY.md "Path parity" and the paths that
// must survive normalisation. They also seed FuzzNormalizePath.
var pathTests = []struct {
	name string
	in   string
	want string
	err  error
}{
	// Already normal: returned as is.
	{"root", "/", "/", nil},
	{"plain", "/spaces/s1/datasets", "/spaces/s1/datasets", nil},
	{"trailing slash kept", "/a/", "/a/", nil},
	{"dots inside names", "/a/.../b..c/.d", "/a/.../b..c/.d", nil},
	{"encoded percent kept", "/a%25b/%25", "/a%25b/%25", nil},
	{"raw space", "/a b", "/a b", nil},
	{"raw non-ASCII", "/caf\xc3\xa9", "/caf\xc3\xa9", nil},
	{"sub-delims", "/a!$&'()*+,=:@", "/a!$&'()*+,=:@", nil},
	{"max length", "/" + strings.Repeat("a", MaxPathLen-1), "/" + strings.Repeat("a", MaxPathLen-1), nil},

	// Query and fragment.
	{"query cut", "/a?x=1", "/a", nil},
	{"query hides traversal", "/a?/../admin", "/a", nil},
	{"query not validated", "/a?%zz;\\#", "/a", nil},
	{"empty query", "/a?", "/a", nil},
	{"fragment after query", "/a?x#y", "/a", nil},
	{"fragment", "/public#/../admin", "", errPathFragment},
	{"fragment before query", "/a#?x", "", errPathFragment},
	{"query only", "?a=/b", "", errPathRelative},

	// Dot segments, raw and encoded: ambiguous, so rejected.
	{"dot", "/a/./b", "", errPathDot},
	{"dot dot", "/public/../admin", "", errPathDot},
	{"dot dot at end", "/public/..", "", errPathDot},
	{"dot at end", "/public/.", "", errPathDot},
	{"admin dot dot", "/admin/..", "", errPathDot},
	{"above root", "/../admin", "", errPathDot},
	{"far above root", "/../../../etc/passwd", "", errPathDot},
	{"only dots", "/./.././..", "", errPathDot},
	{"lone dot", "/.", "", errPathDot},
	{"lone dot dot", "/..", "", errPathDot},
	{"encoded dot dot", "/public/%2e%2e/admin", "", errPathDot},
	{"encoded dot dot upper", "/public/%2E%2E/admin", "", errPathDot},
	{"encoded dot dot mixed case", "/public/%2E%2e/admin", "", errPathDot},
	{"half encoded dot dot", "/public/.%2e/admin", "", errPathDot},
	{"half encoded dot dot other half", "/public/%2e./admin", "", errPathDot},
	{"encoded dot", "/public/%2e/admin", "", errPathDot},
	{"encoded dot dot at end", "/a/b/%2e%2e", "", errPathDot},
	{"encoded dot dot above root", "/%2e%2e/%2e%2e/admin", "", errPathDot},
	{"encoded dot dot after decoded escape", "/a%20/%2e%2e", "", errPathDot},
	{"dot dot after slash run", "/public//..//admin", "", errPathDot},
	{"dot dot after empty segment", "/public/x//../admin", "", errPathDot},

	// Slash runs.
	{"double slash", "//admin", "/admin", nil},
	{"slash run", "/a///b//", "/a/b/", nil},
	{"only slashes", "///", "/", nil},
	{"slash run with escape", "//%61dmin//", "/admin/", nil},

	// Escapes: every one decoded, in either hex case, but "%25".
	{"decode letter", "/%61dmin", "/admin", nil},
	{"decode upper letter", "/%41dmin", "/Admin", nil},
	{"decode digit tilde dash underscore", "/%31%7e%2D%5f", "/1~-_", nil},
	{"decode colon", "/v1/items%3AbatchDelete", "/v1/items:batchDelete", nil},
	{"decode colon lower hex", "/v1/items%3abatchDelete", "/v1/items:batchDelete", nil},
	{"decode every sub-delim", "/%21%24%26%27%28%29%2A%2B%2C%3D%3A%40", "/!$&'()*+,=:@", nil},
	{"decode space", "/a%20b", "/a b", nil},
	{"decode braces and quotes", "/%7Bx%7D%22%3C%3E%5B%5D%5E%60%7C", "/{x}\"<>[]^`|", nil},
	{"decode UTF-8", "/caf%c3%a9", "/caf\xc3\xa9", nil},
	{"decode UTF-8 upper hex", "/caf%C3%A9", "/caf\xc3\xa9", nil},
	{"decode half-encoded UTF-8", "/caf\xc3%A9", "/caf\xc3\xa9", nil},
	{"encoded trailing dot", "/admin%2e", "/admin.", nil},

	// Escapes a decoding upstream would read as structure.
	{"encoded question mark", "/admin%3F/public", "", errPathQuery},
	{"encoded question mark lower", "/admin%3f", "", errPathQuery},
	{"encoded hash", "/admin%23/public", "", errPathQuery},
	{"double encoded dots", "/a/%252e%252e/b", "", errPathDouble},
	{"double encoded slash", "/a%252Fb", "", errPathDouble},
	{"double encoded colon lower hex", "/items%253abatchDelete", "", errPathDouble},
	{"double encoded with encoded digits", "/a/%25%32%65%25%32%65/b", "", errPathDouble},
	{"double encoded half-encoded digits", "/a%25%32e", "", errPathDouble},

	// Not UTF-8 once decoded.
	{"overlong UTF-8 dot", "/%c0%ae%c0%ae/admin", "", errPathUTF8},
	{"raw overlong UTF-8 dot", "/\xc0\xae\xc0\xae/admin", "", errPathUTF8},
	{"lone continuation byte", "/a%80", "", errPathUTF8},
	{"truncated UTF-8", "/caf%c3", "", errPathUTF8},
	{"raw Latin-1", "/caf\xe9", "", errPathUTF8},

	// Encoded slash and backslash.
	{"encoded slash", "/a%2Fb", "", errPathSlash},
	{"encoded slash lower", "/a%2fb", "", errPathSlash},
	{"encoded slash traversal", "/public/..%2Fadmin", "", errPathSlash},
	{"encoded dot dot slash", "/public/%2e%2e%2fadmin", "", errPathSlash},
	{"encoded backslash", "/public/..%5Cadmin", "", errPathSlash},
	{"encoded backslash lower", "/a%5cb", "", errPathSlash},
	{"backslash", "/public/..\\admin", "", errPathBack},
	{"leading backslash", "/\\evil.test", "", errPathBack},

	// ';' path parameters.
	{"dot dot semicolon", "/public/..;/admin", "", errPathParam},
	{"jsessionid", "/admin;jsessionid=1", "", errPathParam},
	{"encoded semicolon", "/public/..%3B/admin", "", errPathParam},
	{"encoded semicolon lower", "/public/..%3b/admin", "", errPathParam},

	// Control characters.
	{"NUL", "/a\x00b", "", errPathControl},
	{"encoded NUL", "/admin%00.png", "", errPathControl},
	{"CR LF", "/a\r\nX-Usher-Subject: x", "", errPathControl},
	{"encoded CR LF", "/a%0d%0aX-Usher-Subject:x", "", errPathControl},
	{"tab", "/a\tb", "", errPathControl},
	{"DEL", "/a\x7fb", "", errPathControl},
	{"encoded DEL", "/a%7Fb", "", errPathControl},
	{"encoded unit separator", "/a%1F", "", errPathControl},

	// Malformed escapes.
	{"bare percent", "/a%", "", errPathEscape},
	{"short escape", "/a%2", "", errPathEscape},
	{"short escape before query", "/a%2?1", "", errPathEscape},
	{"non-hex escape", "/a%zz", "", errPathEscape},
	{"half hex escape", "/a%2g", "", errPathEscape},
	{"percent percent", "/%%41", "", errPathEscape},
	{"signed hex", "/%+1", "", errPathEscape},

	// Shape and size.
	{"empty", "", "", errPathEmpty},
	{"relative", "admin", "", errPathRelative},
	{"absolute URI", "http://evil.test/admin", "", errPathRelative},
	{"asterisk form", "*", "", errPathRelative},
	{"too long", "/" + strings.Repeat("a", MaxPathLen), "", errPathLong},
	{"too long with query", "/a?" + strings.Repeat("b", MaxPathLen), "", errPathLong},
}

// TestNormalizePath covers catalogue rows 88, 92 (docs/catalogue-map.md).
func TestNormalizePath(t *testing.T) {
	for _, tt := range pathTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizePath(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("NormalizePath(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("NormalizePath(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			if err == nil {
				checkNormalPath(t, tt.in, got)
			}
		})
	}
}

// checkNormalPath asserts what every path NormalizePath returns must be.
func checkNormalPath(t *testing.T, raw, got string) {
	t.Helper()
	if !strings.HasPrefix(got, "/") {
		t.Errorf("NormalizePath(%q) = %q: no leading '/'", raw, got)
	}
	if strings.Contains(got, "//") {
		t.Errorf("NormalizePath(%q) = %q: holds \"//\"", raw, got)
	}
	if strings.ContainsAny(got, "?#;\\") {
		t.Errorf("NormalizePath(%q) = %q: holds '?', '#', ';' or '\\'", raw, got)
	}
	for i := 0; i < len(got); i++ {
		if c := got[i]; c < 0x20 || c == 0x7f {
			t.Errorf("NormalizePath(%q) = %q: control byte %#x", raw, got, c)
		}
	}
	for seg := range strings.SplitSeq(got, "/") {
		if seg == "." || seg == ".." {
			t.Errorf("NormalizePath(%q) = %q: dot segment", raw, got)
		}
	}
	if !utf8.ValidString(got) {
		t.Errorf("NormalizePath(%q) = %q: not UTF-8", raw, got)
	}
	for i := 0; i < len(got); i++ {
		if got[i] != '%' {
			continue
		}
		if esc := got[i:min(i+3, len(got))]; esc != "%25" {
			t.Errorf("NormalizePath(%q) = %q: escape %q left undecoded", raw, got, esc)
		}
		if doubleEscape(got, i+3) {
			t.Errorf("NormalizePath(%q) = %q: a second decoding finds an escape", raw, got)
		}
		i += 2
	}
	again, err := NormalizePath(got)
	if err != nil || again != got {
		t.Errorf("NormalizePath(%q) = %q, %v; want it unchanged (idempotence)", got, again, err)
	}
	if want := referenceNormalize(t, raw); got != want {
		t.Errorf("NormalizePath(%q) = %q; reference (url.PathUnescape, path.Clean) gives %q", raw, got, want)
	}
}

// referenceNormalize normalises a path that NormalizePath accepted, by
// another route: the way an upstream that decodes before routing reads it
// (url.PathUnescape), with slash runs merged by path.Clean (safe here: an
// accepted path has no dot segments), a trailing slash kept, and a '%'
// spelt "%25" again.
func referenceNormalize(t *testing.T, raw string) string {
	t.Helper()
	p, _, _ := strings.Cut(raw, "?")
	decoded, err := url.PathUnescape(p)
	if err != nil {
		t.Fatalf("url.PathUnescape(%q): %v, but NormalizePath accepted it", p, err)
	}
	clean := path.Clean(decoded)
	if clean != "/" && strings.HasSuffix(decoded, "/") {
		clean += "/"
	}
	return strings.ReplaceAll(clean, "%", "%25")
}

func TestNormalizePathAllocs(t *testing.T) {
	for _, in := range []string{"/", "/spaces/s1/datasets/x", "/a%25b/c:d?q=%2F&x=../y", "/caf\xc3\xa9"} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := NormalizePath(in); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("NormalizePath(%q) allocates %v times, want 0", in, allocs)
		}
	}
}

// FuzzNormalizePath covers catalogue row 88 (docs/catalogue-map.md).
func FuzzNormalizePath(f *testing.F) {
	for _, tt := range pathTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := NormalizePath(raw)
		if err != nil {
			if got != "" {
				t.Errorf("NormalizePath(%q) = %q with error %v", raw, got, err)
			}
			for _, want := range []error{errPathEmpty, errPathLong, errPathRelative, errPathControl,
				errPathEscape, errPathSlash, errPathBack, errPathParam, errPathFragment, errPathDot,
				errPathQuery, errPathDouble, errPathUTF8} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("NormalizePath(%q) error %v is none of the path errors", raw, err)
		}
		checkNormalPath(t, raw, got)
	})
}

// respell spells the normal path n another way an upstream that decodes
// before routing reads alike: each character raw or escaped in either hex
// case, and each '/' sometimes doubled, as choices say.
func respell(n string, choices []byte) string {
	const upper, lower = "0123456789ABCDEF", "0123456789abcdef"
	var b strings.Builder
	next := func(i int) byte {
		if len(choices) == 0 {
			return byte(i)
		}
		return choices[i%len(choices)]
	}
	for i := 0; i < len(n); i++ {
		c, ch := n[i], next(i)
		switch {
		case c == '%': // "%25", the one escape a normal path keeps
			b.WriteString(n[i : i+3])
			i += 2
		case c == '/':
			b.WriteByte('/')
			if ch&4 != 0 {
				b.WriteByte('/')
			}
		case ch%3 == 1:
			b.WriteByte('%')
			b.WriteByte(upper[c>>4])
			b.WriteByte(upper[c&15])
		case ch%3 == 2:
			b.WriteByte('%')
			b.WriteByte(lower[c>>4])
			b.WriteByte(lower[c&15])
		default:
			b.WriteByte(c)
		}
	}
	if next(len(n))&8 != 0 {
		b.WriteString("?_=%2F/../")
	}
	return b.String()
}

// FuzzPathSpellings checks the invariant of path parity: no two spellings
// that an upstream decoding before routing treats alike get different
// rules. Any other spelling of an accepted path normalises to the same path,
// so it meets the same rule.
// Catalogue row 88 (docs/catalogue-map.md).
func FuzzPathSpellings(f *testing.F) {
	for i, tt := range pathTests {
		f.Add(tt.in, []byte{byte(i), byte(i * 7), byte(i * 13)})
	}
	f.Add("/v1/items:batchDelete", []byte{1, 2, 0})
	f.Add("/spaces/s1/datasets/a b/caf\xc3\xa9/50%25", []byte{2, 1, 4, 9})
	f.Fuzz(func(t *testing.T, raw string, choices []byte) {
		n, err := NormalizePath(raw)
		if err != nil {
			return
		}
		other := respell(n, choices)
		if len(other) > MaxPathLen {
			return
		}
		got, err := NormalizePath(other)
		if err != nil || got != n {
			t.Fatalf("NormalizePath(%q) = %q, %v; want %q, as for %q (the same path to an upstream)", other, got, err, n, raw)
		}
		if want := referenceNormalize(t, other); got != want {
			t.Errorf("NormalizePath(%q) = %q; reference gives %q", other, got, want)
		}
	})
}
