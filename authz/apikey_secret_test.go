package authz_test

import (
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store/storetest"
)

// TestCheckWrongSecretHidesKeyState: a guessed secret for a key id that is
// revoked or expired answers apikey_invalid, exactly as for a live key, so
// that only a caller holding the key learns its state (README, "Reason
// codes"; docs/security-catalogue.md rows on API key enumeration).
// Catalogue rows 1, 11 (docs/catalogue-map.md).
func TestCheckWrongSecretHidesKeyState(t *testing.T) {
	w := newWorld(t)
	// Past the "expiring" fixture key's one-hour life.
	w.clock.Set(storetest.Epoch.Add(2 * time.Hour))
	guess := []byte(strings.Repeat("q", 32))
	for _, tc := range []struct {
		name, id string
		real     authz.Reason // what the real key answers
	}{
		{"revoked", "revokedacmekeyaa", authz.ReasonAPIKeyRevoked},
		{"expiring", "expiringacmekeya", authz.ReasonAPIKeyExpired},
		{"ci", "ciacmekeyaaaaaaa", authz.ReasonAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Twice each: the first answer loads the key, the second is
			// served from the cache.
			for range 2 {
				if d := w.check(t, get("api.example.test", "/me", "x-api-key", w.keys["acme/"+tc.name])); d.Reason != tc.real {
					t.Fatalf("real key: %s, want %s", d.Reason, tc.real)
				}
				forged := authz.FormatAPIKey("acme", tc.id, guess)
				if d := w.check(t, get("api.example.test", "/me", "x-api-key", forged)); d.Status != 401 || d.Reason != authz.ReasonAPIKeyInvalid {
					t.Errorf("wrong secret: %d %s, want 401 apikey_invalid", d.Status, d.Reason)
				}
			}
		})
	}
}
