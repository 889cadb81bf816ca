package login_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/usher-dev/usher/login"
)

const root = "root.test"

// nextCases are the next values of issue 9 and docs/security-catalogue.md
// rows 46–48, with whether each is accepted.
var nextCases = []struct {
	name string
	next string
	ok   bool
}{
	{"relative path", "/app/page?x=1#frag", true},
	{"root path", "/", true},
	{"encoded space in query", "/search?q=a%20b", true},
	{"encoded slash inside path", "/a%2Fb", true},
	{"root domain https", "https://root.test/x", true},
	{"subdomain https", "https://app.root.test/x?y=z", true},
	{"subdomain with port", "https://app.root.test:8443/", true},
	{"subdomain http", "http://app.root.test/", true},
	{"upper-case scheme and host", "HTTPS://APP.ROOT.TEST/", true},
	{"empty", "", false},
	{"scheme-relative", "//evil.test", false},
	{"slash backslash", "/\\evil.test", false},
	{"double backslash", "\\\\evil.test", false},
	{"https without slashes", "https:evil.test", false},
	{"https one slash", "https:/evil.test", false},
	{"https backslashes", "https:\\\\evil.test", false},
	{"other host", "https://evil.test", false},
	{"root as prefix label", "https://root.test.evil.test", false},
	{"suffix without dot", "https://evilroot.test", false},
	{"trailing dot", "https://root.test./", false},
	{"userinfo backslash", "https://evil.test\\@root.test", false},
	{"userinfo", "https://root.test@evil.test", false},
	{"userinfo with subdomain", "https://app.root.test@evil.test/", false},
	{"fragment at sign", "https://evil.test#@app.root.test", false},
	{"javascript", "javascript:alert(1)", false},
	{"javascript upper", "JavaScript:alert(1)", false},
	{"data", "data:text/html,<script>alert(1)</script>", false},
	{"ftp", "ftp://app.root.test/", false},
	{"tab", "/\t/evil.test", false},
	{"encoded tab", "/%09/evil.test", false},
	{"CR LF", "/x\r\nSet-Cookie: a=b", false},
	{"encoded CR LF", "/x%0d%0aSet-Cookie:%20a=b", false},
	{"encoded LF in host", "https://app.root.test%0a.evil.test/", false},
	{"encoded vertical tab", "https://app.root.test/%0b", false},
	{"NUL", "/x\x00", false},
	{"encoded NUL", "/x%00", false},
	{"encoded double slash", "/%2F%2Fevil.test", false},
	{"double encoded double slash", "/%252F%252Fevil.test", false},
	{"encoded backslash", "/%5Cevil.test", false},
	{"encoded userinfo", "https://root.test%40evil.test/", false},
	{"leading space", " https://app.root.test/", false},
	{"IDN look-alike", "https://аpp.root.test/", false},
	{"punycode elsewhere", "https://xn--80ak6aa92e.test/", false},
	{"bad escape", "/%zz", false},
	{"relative without slash", "evil.test", false},
	{"too long", "/" + strings.Repeat("a", 3000), false},
}

// Catalogue rows 44, 46, 47, 48.
func TestValidateNext(t *testing.T) {
	for _, tt := range nextCases {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := login.ValidateNext(tt.next, root)
			if ok != tt.ok {
				t.Fatalf("ValidateNext(%q) ok = %v, want %v", tt.next, ok, tt.ok)
			}
			if ok && got != tt.next {
				t.Errorf("ValidateNext(%q) = %q, want it unchanged", tt.next, got)
			}
		})
	}
}

// FuzzNext checks that whatever ValidateNext accepts, resolved against the
// login app's URL as a browser would, stays on the root domain and holds
// no control character.
// Catalogue rows 46, 47, 48.
func FuzzNext(f *testing.F) {
	for _, tt := range nextCases {
		f.Add(tt.next)
	}
	base, _ := url.Parse("https://auth.root.test/login")
	f.Fuzz(func(t *testing.T, next string) {
		got, ok := login.ValidateNext(next, root)
		if !ok {
			return
		}
		if got != next {
			t.Fatalf("accepted %q changed to %q", next, got)
		}
		for i := 0; i < len(next); i++ {
			if next[i] < 0x21 || next[i] == 0x7f || next[i] == '\\' {
				t.Fatalf("accepted %q with byte %#x", next, next[i])
			}
		}
		u, err := url.Parse(next)
		if err != nil {
			t.Fatalf("accepted %q that does not parse: %v", next, err)
		}
		if u.User != nil {
			t.Fatalf("accepted %q with userinfo", next)
		}
		abs := base.ResolveReference(u)
		h := strings.ToLower(abs.Hostname())
		if h != root && !strings.HasSuffix(h, "."+root) {
			t.Fatalf("accepted %q resolving to host %q", next, h)
		}
		if abs.Scheme != "https" && abs.Scheme != "http" {
			t.Fatalf("accepted %q with scheme %q", next, abs.Scheme)
		}
	})
}
