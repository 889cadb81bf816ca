package authz

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pathTests are the attacks of SECURITY.md "Path parity" and the paths that
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
	{"reserved escapes kept", "/a%20b/%3F/%23/%25", "/a%20b/%3F/%23/%25", nil},
	{"double encoded dots not decoded twice", "/a/%252e%252e/b", "/a/%252e%252e/b", nil},
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
	{"encoded dot dot after reserved escape", "/a%20/%2e%2e", "", errPathDot},
	{"dot dot after slash run", "/public//..//admin", "", errPathDot},
	{"dot dot after empty segment", "/public/x//../admin", "", errPathDot},

	// Slash runs.
	{"double slash", "//admin", "/admin", nil},
	{"slash run", "/a///b//", "/a/b/", nil},
	{"only slashes", "///", "/", nil},
	{"slash run with escape", "//%61dmin//", "/admin/", nil},

	// Escapes: unreserved decoded, the rest upper-cased.
	{"decode letter", "/%61dmin", "/admin", nil},
	{"decode upper letter", "/%41dmin", "/Admin", nil},
	{"decode digit tilde dash underscore", "/%31%7e%2D%5f", "/1~-_", nil},
	{"upper-case hex", "/a%c3%a9", "/a%C3%A9", nil},
	{"upper-case reserved hex", "/a%3a%3f", "/a%3A%3F", nil},
	{"overlong UTF-8 dot kept", "/%c0%ae%c0%ae/admin", "/%C0%AE%C0%AE/admin", nil},
	{"encoded trailing dot", "/admin%2e", "/admin.", nil},

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
	for i := 0; i < len(got); i++ {
		if got[i] != '%' {
			continue
		}
		esc := got[i:min(i+3, len(got))]
		v, ok := unhex2(got, i+1)
		switch {
		case !ok || strings.ContainsAny(esc, "abcdef"):
			t.Errorf("NormalizePath(%q) = %q: escape %q is not upper-case hex", raw, got, esc)
		case isUnreserved(v):
			t.Errorf("NormalizePath(%q) = %q: escape %q of an unreserved character", raw, got, esc)
		case v == '/' || v == '\\' || v == ';' || v < 0x20 || v == 0x7f:
			t.Errorf("NormalizePath(%q) = %q: forbidden escape %q", raw, got, esc)
		}
		i += 2
	}
	again, err := NormalizePath(got)
	if err != nil || again != got {
		t.Errorf("NormalizePath(%q) = %q, %v; want it unchanged (idempotence)", got, again, err)
	}
	if want := referenceNormalize(raw); got != want {
		t.Errorf("NormalizePath(%q) = %q; reference (path.Clean) gives %q", raw, got, want)
	}
}

// referenceNormalize normalises a path that NormalizePath accepted, by
// another route: decode the unreserved escapes, then merge slash runs with
// path.Clean (safe here: an accepted path has no dot segments), keeping a
// trailing slash.
func referenceNormalize(raw string) string {
	p, _, _ := strings.Cut(raw, "?")
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		v, _ := unhex2(p, i+1)
		if isUnreserved(v) {
			b.WriteByte(v)
		} else {
			b.WriteString(strings.ToUpper(p[i : i+3]))
		}
		i += 2
	}
	decoded := b.String()
	clean := path.Clean(decoded)
	if clean != "/" && strings.HasSuffix(decoded, "/") {
		clean += "/"
	}
	return clean
}

func TestNormalizePathAllocs(t *testing.T) {
	for _, in := range []string{"/", "/spaces/s1/datasets/x", "/a%20b/c?q=%2F&x=../y"} {
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
				errPathEscape, errPathSlash, errPathBack, errPathParam, errPathFragment, errPathDot} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("NormalizePath(%q) error %v is none of the path errors", raw, err)
		}
		checkNormalPath(t, raw, got)
	})
}
