package authz_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store/storetest"
)

// TestCheckExpiryBoundaryWhileCached covers catalogue rows 7, 120
// (docs/catalogue-map.md).
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

// TestCheckRevocationPurgesCache covers catalogue row 8 (docs/catalogue-map.md).
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

// TestCheckUnknownKeysAreRememberedBriefly covers catalogue row 6
// (docs/catalogue-map.md).
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

// TestCheckKeyPurgeReachesDigestIndex: a key served from the digest index
// (which skips parsing the key) still reads its record through the key
// cache, so purging the key id makes the next check read the store and see
// the revocation, whichever header carries the key.
func TestCheckKeyPurgeReachesDigestIndex(t *testing.T) {
	w := newWorld(t)
	const id = "ciacmekeyaaaaaaa"
	ci := w.keys["acme/ci"]
	reqs := map[string]*authz.Request{
		"x-api-key":     get("api.example.test", "/me", "x-api-key", ci),
		"authorization": get("api.example.test", "/me", "authorization", "Bearer "+ci),
	}
	for range 3 {
		for name, r := range reqs {
			if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
				t.Fatalf("%s before revocation: %s", name, d.Reason)
			}
		}
	}
	if _, err := w.st.RevokeAPIKey(t.Context(), "acme", id); err != nil {
		t.Fatal(err)
	}
	for name, r := range reqs {
		if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
			t.Fatalf("%s: %s; the record should still be cached until the change applies", name, d.Reason)
		}
	}
	if n := w.st.KeyReads.Load(); n != 1 {
		t.Fatalf("%d key reads while cached; want 1", n)
	}
	w.a.Apply(authz.Change{Kind: authz.ChangeAPIKey, Tenant: "acme", Key: id})
	for name, r := range reqs {
		if d := w.check(t, r); d.Reason != authz.ReasonAPIKeyRevoked {
			t.Errorf("%s after the purge: %s, want apikey_revoked", name, d.Reason)
		}
	}
	if n := w.st.KeyReads.Load(); n != 2 {
		t.Errorf("%d key reads; the purge must make the next check read the record again (2)", n)
	}
}

// TestCheckOversizedKeyIsMalformed: a key longer than any key usher makes
// is refused before it is hashed or looked up.
// Catalogue row 5 (docs/catalogue-map.md).
func TestCheckOversizedKeyIsMalformed(t *testing.T) {
	w := newWorld(t)
	huge := "sk_" + strings.Repeat("z", 64<<10)
	for _, h := range []string{"x-api-key", "authorization"} {
		v := huge
		if h == "authorization" {
			v = "Bearer " + huge[:30<<10]
		}
		if d := w.check(t, get("api.example.test", "/me", h, v)); d.Reason != authz.ReasonAPIKeyMalformed {
			t.Errorf("%s: %s, want apikey_malformed", h, d.Reason)
		}
	}
	if n := w.st.KeyReads.Load(); n != 0 {
		t.Errorf("%d key reads for oversized keys; want 0", n)
	}
}

// TestCloseWaitsForLoadsInFlight: a store read outlives the Check that
// started it (it fills the cache for the next one); closing the authorizer
// waits for it instead of closing the cache under it.
func TestCloseWaitsForLoadsInFlight(t *testing.T) {
	w := newWorld(t)
	const delay = 300 * time.Millisecond
	w.st.Delay.Store(int64(delay))
	started := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if d := w.a.Check(ctx, get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])); d.Reason != authz.ReasonTimeout {
		t.Fatalf("slow store: %s, want timeout", d.Reason)
	}
	w.a.Close()
	if waited := time.Since(started); waited < delay {
		t.Errorf("Close returned %v after the load started, before its %v store read ended", waited, delay)
	}
}
