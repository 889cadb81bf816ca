package authz_test

import (
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store/storetest"
)

func TestCheckExpiryBoundaryWhileCached(t *testing.T) {
	w := newWorld(t)
	r := get("api.example.test", "/me", "x-api-key", w.keys["acme/expiring"])
	// Seeded at Epoch with a 1h life; stay within the cache TTL throughout.
	w.clock.Set(storetest.Epoch.Add(time.Hour - 30*time.Second))
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("before expiry: %s", d.Reason)
	}
	w.clock.Set(storetest.Epoch.Add(time.Hour - time.Millisecond))
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("1ms before expiry: %s", d.Reason)
	}
	w.clock.Set(storetest.Epoch.Add(time.Hour))
	if d := w.check(t, r); d.Reason != authz.ReasonAPIKeyExpired {
		t.Fatalf("at expiry: %s, want apikey_expired", d.Reason)
	}
	if n := w.st.KeyReads.Load(); n != 1 {
		t.Errorf("store read %d times; the boundary must be enforced on the cached record (1 read)", n)
	}
}

func TestCheckRevocationPurgesCache(t *testing.T) {
	w := newWorld(t)
	r := get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("before revocation: %s", d.Reason)
	}
	if _, err := w.st.RevokeAPIKey(t.Context(), "acme", "ciacmekeyaaaaaaa"); err != nil {
		t.Fatal(err)
	}
	changes, err := w.st.ChangesAfter(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	last := changes[len(changes)-1]
	if last.Kind != authz.ChangeAPIKey || last.Key != "ciacmekeyaaaaaaa" {
		t.Fatalf("last change = %+v, want the revocation", last)
	}
	w.a.Apply(last)
	if d := w.check(t, r); d.Reason != authz.ReasonAPIKeyRevoked {
		t.Errorf("after the change: %s, want apikey_revoked", d.Reason)
	}
}

func TestCheckUnknownKeysAreRememberedBriefly(t *testing.T) {
	w := newWorld(t)
	bogus := get("api.example.test", "/me", "x-api-key", authz.FormatAPIKey("acme", "zzzzzzzzzzzzzzzz", []byte(strings.Repeat("q", 32))))
	for range 10 {
		if d := w.check(t, bogus); d.Reason != authz.ReasonAPIKeyInvalid {
			t.Fatalf("bogus key: %s", d.Reason)
		}
	}
	if n := w.st.KeyReads.Load(); n != 1 {
		t.Errorf("%d store reads for one unknown key within the negative TTL; want 1", n)
	}
	w.clock.Advance(authz.DefaultCacheConfig().NegativeTTL)
	w.check(t, bogus)
	if n := w.st.KeyReads.Load(); n != 2 {
		t.Errorf("%d store reads after the negative TTL; want 2", n)
	}
}

func TestCheckRecordsLastUsedInBatches(t *testing.T) {
	w := newWorld(t)
	r := get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])
	for range 5 {
		w.check(t, r)
	}
	w.clock.Advance(10 * time.Second)
	w.check(t, r)
	before, err := w.st.APIKeyRecord(t.Context(), "ciacmekeyaaaaaaa")
	if err != nil {
		t.Fatal(err)
	}
	if !before.LastUsed.IsZero() {
		t.Fatalf("last used written before a flush: %v", before.LastUsed)
	}
	if err := w.a.FlushUsage(t.Context()); err != nil {
		t.Fatal(err)
	}
	after, err := w.st.APIKeyRecord(t.Context(), "ciacmekeyaaaaaaa")
	if err != nil {
		t.Fatal(err)
	}
	if want := storetest.Epoch.Add(10 * time.Second); !after.LastUsed.Equal(want) {
		t.Errorf("last used = %v, want %v", after.LastUsed, want)
	}
}
