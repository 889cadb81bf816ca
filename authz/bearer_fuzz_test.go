package authz

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzBearerToken fuzzes what a bearer JWT meets before any key: the
// Authorization parser, the compact-JWS split, the name check of header
// and payload, and the issuer peek. None may panic; what they accept must
// be what they claim: three strict base64url segments of JSON objects
// without a repeated or case-variant name.
// Catalogue rows 20, 26, 123 (docs/catalogue-map.md).
func FuzzBearerToken(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	seeds := []string{
		enc([]byte(`{"alg":"HS256","kid":"abc","typ":"at+jwt"}`)) + "." + enc([]byte(`{"iss":"usher","sub":"a"}`)) + ".c2ln",
		enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(`{}`)) + ".",
		enc([]byte(`{"alg":"HS256","alg":"none"}`)) + "." + enc([]byte(`{"iss":"x"}`)) + ".c2ln",
		enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(`{"Iss":"x","iss":"y"}`)) + ".c2ln",
		enc([]byte(`[]`)) + "." + enc([]byte(`"x"`)) + ".c2ln",
		"a.b.c.d", "..", "....", "e30.e30.e30", strings.Repeat(".", 100),
		enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(`{"iss":"x"}{}`)) + ".c2ln",
	}
	for _, s := range seeds {
		f.Add("Bearer " + s)
	}
	for _, tt := range authorizationSeeds() {
		f.Add(tt)
	}
	f.Fuzz(func(t *testing.T, authorization string) {
		c := parseAuthorization(authorization)
		if c.kind != credBearerJWT {
			return
		}
		header, payload, err := splitToken(c.value)
		if err != nil {
			return
		}
		if strings.Count(c.value, ".") != 2 || len(c.value) > maxTokenLen {
			t.Fatalf("splitToken accepted %q", c.value)
		}
		parts := strings.Split(c.value, ".")
		if enc(header) != parts[0] || enc(payload) != parts[1] {
			t.Fatalf("segments of %q do not round-trip", c.value)
		}
		for _, obj := range [][]byte{header, payload} {
			if checkNames(obj, accessClaimNames) != nil {
				return
			}
			if strings.TrimSpace(string(obj))[0] != '{' {
				t.Fatalf("checkNames accepted a non-object %q", obj)
			}
		}
		_, _ = peekIssuer(payload)
	})
}

// authorizationSeeds are Authorization values from the credential table.
func authorizationSeeds() []string {
	return []string{"Bearer a.b.c", "bearer  x.y.z", "Basic YTpi", "Bearer", "Bearer a.b.c d", "Bearer " + strings.Repeat("a", 100)}
}
