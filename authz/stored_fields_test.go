package authz_test

import (
	"encoding/base64"
	"testing"

	"github.com/usher-dev/usher/authz"
)

// TestCheckStoredFieldsAreNoKey (docs/security-catalogue.md row 2): what a
// copy of the api_keys collection holds opens nothing. The stored digest
// (hex, base64, or as a key's secret), the key id, the tenant and id
// together, and a prefix of the real key are each refused 401 wherever a
// key may be sent, and the real key still works: the store keeps only a
// one-way digest, and Check compares the digest of what it is given.
func TestCheckStoredFieldsAreNoKey(t *testing.T) {
	w := newWorld(t)
	key := w.keys["acme/ci"]
	rec, err := w.st.APIKeyRecord(t.Context(), "ciacmekeyaaaaaaa")
	if err != nil {
		t.Fatal(err)
	}
	digest := rec.Hash.String()
	if digest == key || len(digest) != 64 {
		t.Fatalf("stored digest %q", digest)
	}
	stolen := map[string]string{
		"digest in hex":                   digest,
		"digest after the prefix":         "sk_" + digest,
		"digest in base64":                base64.RawURLEncoding.EncodeToString(rec.Hash[:]),
		"digest as the key's secret":      authz.FormatAPIKey(rec.Tenant, rec.ID, rec.Hash[:]),
		"key id":                          rec.ID,
		"key id after the prefix":         "sk_" + rec.ID,
		"tenant and key id":               rec.Tenant + "_" + rec.ID,
		"the key's first 12 characters":   key[:12],
		"the key less its last character": key[:len(key)-1],
	}
	for name, v := range stolen {
		for _, h := range [][2]string{{"x-api-key", v}, {"authorization", "Bearer " + v}} {
			d := w.check(t, get("api.example.test", "/me", h[0], h[1]))
			if d.Status != 401 || d.Allowed() {
				t.Errorf("%s in %s: %d %s; want 401", name, h[0], d.Status, d.Reason)
			}
		}
	}
	if d := w.check(t, get("api.example.test", "/me", "x-api-key", key)); !d.Allowed() {
		t.Errorf("the real key: %d %s; want allowed", d.Status, d.Reason)
	}
}
