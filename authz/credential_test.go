package authz

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var cmpCredential = cmp.AllowUnexported(credential{})

const testJWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"

var (
	authMalformed   = credential{kind: credMalformed, header: HeaderAuthorization, reason: ReasonBearerMalformed}
	authUnsupported = credential{kind: credUnsupported, header: HeaderAuthorization, reason: ReasonUnsupportedCredential}
)

func authJWT(v string) credential {
	return credential{kind: credBearerJWT, value: v, header: HeaderAuthorization}
}

// authorizationTests are Authorization header variants an attacker can
// send. They also seed FuzzParseAuthorization.
var authorizationTests = []struct {
	name string
	in   string
	want credential
}{
	{"JWT", "Bearer " + testJWT, authJWT(testJWT)},
	{"lower-case scheme", "bearer tok", authJWT("tok")},
	{"upper-case scheme", "BEARER tok", authJWT("tok")},
	{"mixed-case scheme", "bEaReR tok", authJWT("tok")},
	{"two spaces", "Bearer  tok", authJWT("tok")},
	{"many spaces", "Bearer     tok", authJWT("tok")},
	{"b64token charset", "Bearer aZ09-._~+/", authJWT("aZ09-._~+/")},
	{"trailing padding", "Bearer abc==", authJWT("abc==")},
	{"API key", "Bearer " + testKey, credential{kind: credAPIKey, value: testKey, header: HeaderAuthorization}},
	{"API key prefix only", "Bearer sk_", credential{kind: credAPIKey, value: "sk_", header: HeaderAuthorization}},
	{"upper-case API key prefix is no API key", "Bearer SK_abc", authJWT("SK_abc")},
	{"at the length cap", "Bearer " + strings.Repeat("a", maxAuthorizationLen-7), authJWT(strings.Repeat("a", maxAuthorizationLen-7))},

	{"empty", "", authMalformed},
	{"scheme alone", "Bearer", authMalformed},
	{"empty token", "Bearer ", authMalformed},
	{"only spaces", "Bearer    ", authMalformed},
	{"two tokens", "Bearer a b", authMalformed},
	{"merged duplicates", "Bearer a,Bearer b", authMalformed},
	{"merged duplicates with space", "Bearer a, Bearer b", authMalformed},
	{"tab after scheme", "Bearer\ttok", authMalformed},
	{"trailing tab", "Bearer tok\t", authMalformed},
	{"trailing space", "Bearer tok ", authMalformed},
	{"leading space", " Bearer tok", authMalformed},
	{"NUL in token", "Bearer tok\x00", authMalformed},
	{"NUL in scheme", "Bear\x00er tok", authMalformed},
	{"CR LF injection", "Bearer tok\r\nX-Usher-Subject: admin", authMalformed},
	{"padding inside", "Bearer abc=d", authMalformed},
	{"padding only", "Bearer ==", authMalformed},
	{"quoted token", `Bearer "tok"`, authMalformed},
	{"token68 with comma param", "Bearer tok, realm=x", authMalformed},
	{"non-ASCII token", "Bearer t\u00f6k", authMalformed},
	{"over the length cap", "Bearer " + strings.Repeat("a", maxAuthorizationLen-6), authMalformed},
	{"64 KB header", "Bearer " + strings.Repeat("a", 64<<10), authMalformed},
	{"64 KB Basic", "Basic " + strings.Repeat("a", 64<<10), authMalformed},
	{"scheme with separator", "Bear(er tok", authMalformed},

	{"Basic", "Basic dXNlcjpwYXNz", authUnsupported},
	{"Digest", `Digest username="u", realm="r"`, authUnsupported},
	{"Negotiate", "Negotiate YIIB", authUnsupported},
	{"Negotiate alone", "Negotiate", authUnsupported},
	{"scheme glued to bearer", "Bearerx tok", authUnsupported},
	{"DPoP", "DPoP " + testJWT, authUnsupported},
}

// TestParseAuthorization covers catalogue rows 5, 29 (docs/catalogue-map.md).
func TestParseAuthorization(t *testing.T) {
	for _, tt := range authorizationTests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseAuthorization(tt.in)
			if diff := cmp.Diff(tt.want, got, cmpCredential); diff != "" {
				t.Errorf("parseAuthorization(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestFindCredential covers catalogue rows 9, 12 (docs/catalogue-map.md).
func TestFindCredential(t *testing.T) {
	for _, tt := range []struct {
		name    string
		headers map[string]string
		want    credential
	}{
		{"none", nil, credential{}},
		{"other headers", map[string]string{"cookie": "a=b", "x-api-token": "sk_x"}, credential{}},
		{"API key", map[string]string{HeaderAPIKey: testKey}, credential{kind: credAPIKey, value: testKey, header: HeaderAPIKey}},
		{"bearer", map[string]string{HeaderAuthorization: "Bearer " + testJWT}, authJWT(testJWT)},
		{"API key wins over bearer", map[string]string{HeaderAPIKey: testKey, HeaderAuthorization: "Bearer " + testJWT},
			credential{kind: credAPIKey, value: testKey, header: HeaderAPIKey}},
		{"empty API key still wins", map[string]string{HeaderAPIKey: "", HeaderAuthorization: "Bearer " + testJWT},
			credential{kind: credAPIKey, value: "", header: HeaderAPIKey}},
		{"malformed API key still wins", map[string]string{HeaderAPIKey: "garbage", HeaderAuthorization: "Bearer " + testJWT},
			credential{kind: credAPIKey, value: "garbage", header: HeaderAPIKey}},
		{"merged API keys passed on whole", map[string]string{HeaderAPIKey: testKey + "," + testKey},
			credential{kind: credAPIKey, value: testKey + "," + testKey, header: HeaderAPIKey}},
		{"malformed bearer does not fall through", map[string]string{HeaderAuthorization: "Bearer a b"}, authMalformed},
		{"empty Authorization", map[string]string{HeaderAuthorization: ""}, authMalformed},
		{"unsupported scheme", map[string]string{HeaderAuthorization: "Basic dXNlcjpwYXNz"}, authUnsupported},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := findCredential(tt.headers)
			if diff := cmp.Diff(tt.want, got, cmpCredential); diff != "" {
				t.Errorf("findCredential(%q) mismatch (-want +got):\n%s", tt.headers, diff)
			}
		})
	}
}

func TestIsB64Token(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"a", true}, {"aZ09-._~+/", true}, {"a=", true}, {"a==", true}, {testJWT, true},
		{"", false}, {"=", false}, {"==a", false}, {"a=b", false}, {"a=b=", false},
		{"a b", false}, {"a,b", false}, {"a\x00", false}, {"a\n", false}, {"a%2F", false},
		{"\"a\"", false}, {"t\u00f6k", false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			if got := isB64Token(tt.in); got != tt.want {
				t.Errorf("isB64Token(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzParseAuthorization covers catalogue row 29 (docs/catalogue-map.md).
func FuzzParseAuthorization(f *testing.F) {
	for _, tt := range authorizationTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := parseAuthorization(in)
		if got.header != HeaderAuthorization {
			t.Errorf("parseAuthorization(%q).header = %q", in, got.header)
		}
		scheme, _, _ := strings.Cut(in, " ")
		switch got.kind {
		case credAPIKey, credBearerJWT:
			v := got.value
			if !isB64Token(v) || !strings.HasSuffix(in, v) {
				t.Fatalf("parseAuthorization(%q) value %q is no b64token suffix of the input", in, v)
			}
			if len(in) > maxAuthorizationLen {
				t.Errorf("parseAuthorization accepted %d bytes, over the cap", len(in))
			}
			if !asciiEqualFold(scheme, "bearer") || strings.Trim(in[len(scheme):len(in)-len(v)], " ") != "" || len(in) == len(scheme)+len(v) {
				t.Errorf("parseAuthorization(%q) = %q without \"Bearer\" and spaces before it", in, v)
			}
			if (got.kind == credAPIKey) != strings.HasPrefix(v, apiKeyPrefix) {
				t.Errorf("parseAuthorization(%q) kind %v disagrees with the sk_ prefix", in, got.kind)
			}
			if got.reason != "" {
				t.Errorf("parseAuthorization(%q) has reason %q", in, got.reason)
			}
		case credUnsupported:
			if got.value != "" || got.reason != ReasonUnsupportedCredential || !validToken(scheme) || asciiEqualFold(scheme, "bearer") {
				t.Errorf("parseAuthorization(%q) = %+v: not another scheme", in, got)
			}
		case credMalformed:
			if got.value != "" || got.reason != ReasonBearerMalformed {
				t.Errorf("parseAuthorization(%q) = %+v", in, got)
			}
		default:
			t.Errorf("parseAuthorization(%q) kind = %v", in, got.kind)
		}
	})
}

// asciiEqualFold is strings.EqualFold limited to ASCII, as RFC 9110 §11.1
// compares schemes.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
