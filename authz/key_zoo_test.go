package authz_test

import (
	"strings"
	"testing"
)

// TestCheckMalformedKeyZoo sends the malformed keys of
// docs/security-catalogue.md row 5, in x-api-key and as a bearer: each is
// refused 401 and none costs a store read (the format is checked before
// any lookup). The real key is the control.
func TestCheckMalformedKeyZoo(t *testing.T) {
	w := newWorld(t)
	key := w.keys["acme/ci"]
	zoo := map[string]string{
		"empty":                 "",
		"prefix only":           "sk_",
		"double underscore":     "sk__",
		"upper-case prefix":     "SK_" + key[3:],
		"public key prefix":     "pk_" + key[3:],
		"non-base62 bytes":      "sk_" + key[3:10] + "\xff\xfe" + key[12:],
		"8 KB":                  "sk_" + strings.Repeat("a", 8<<10),
		"NUL":                   key[:10] + "\x00" + key[10:],
		"CR LF":                 key + "\r\nx-usher-subject: admin",
		"Cyrillic s look-alike": "\u0455k_" + key[3:],
		"full-width digit":      key[:10] + "\uff11" + key[11:],
		"leading space":         " " + key,
		"trailing space":        key + " ",
		"valid key plus suffix": key + "x",
	}
	before := w.st.KeyReads.Load()
	for name, v := range zoo {
		headers := [][2]string{{"x-api-key", v}, {"authorization", "Bearer " + v}}
		if name == "leading space" {
			headers = headers[:1] // "Bearer  key": RFC 6750 allows spaces after the scheme
		}
		for _, h := range headers {
			d := w.check(t, get("api.example.test", "/me", h[0], h[1]))
			if d.Status != 401 || d.Allowed() {
				t.Errorf("%s in %s: %d %s; want 401", name, h[0], d.Status, d.Reason)
			}
		}
	}
	if n := w.st.KeyReads.Load() - before; n != 0 {
		t.Errorf("malformed keys cost %d store reads; want none", n)
	}
	if d := w.check(t, get("api.example.test", "/me", "x-api-key", key)); !d.Allowed() {
		t.Errorf("the real key: %d %s", d.Status, d.Reason)
	}
}
