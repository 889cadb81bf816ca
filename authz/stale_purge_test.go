package authz_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
)

// heldKeys wraps the key lookup so that a test can hold a read in flight
// (a fault no real store shows on demand).
type heldKeys struct {
	authz.KeyLookup
	hold    atomic.Bool
	entered chan struct{} // receives when a held read starts
	release chan struct{} // closed to let held reads go on
}

func (h *heldKeys) APIKey(ctx context.Context, id string) (authz.APIKey, error) {
	if h.hold.Load() {
		select {
		case h.entered <- struct{}{}:
		case <-ctx.Done():
			return authz.APIKey{}, ctx.Err()
		}
		select {
		case <-h.release:
		case <-ctx.Done():
			return authz.APIKey{}, ctx.Err()
		}
	}
	return h.KeyLookup.APIKey(ctx, id)
}

// TestCheckStaleNotServedAfterPurge: a key revoked (and purged through the
// change feed) while a failing reload of its stale entry is in flight is
// not served from the entry read before the purge: the answer is the 503.
// Catalogue row 110 (docs/catalogue-map.md).
func TestCheckStaleNotServedAfterPurge(t *testing.T) {
	held := &heldKeys{entered: make(chan struct{}), release: make(chan struct{})}
	w := newWorld(t, func(c *authz.Config) {
		c.Cache.LoadTimeout = time.Minute // the held read must not time out
		held.KeyLookup = c.Keys
		c.Keys = held
	})
	r := get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("warm-up: %s", d.Reason)
	}
	// Past the TTL, within the stale bound, the store failing: the entry
	// would be served stale.
	w.clock.Advance(authz.DefaultCacheConfig().TTL)
	w.st.Fail.Store(true)
	held.hold.Store(true)

	done := make(chan authz.Decision, 1)
	go func() { done <- w.a.Check(t.Context(), r) }()
	select {
	case <-held.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the reload never started")
	}
	if _, err := w.st.RevokeAPIKey(t.Context(), "acme", "ciacmekeyaaaaaaa"); err != nil {
		t.Fatal(err)
	}
	changes, err := w.st.ChangesAfter(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	w.a.Apply(changes[len(changes)-1])
	held.hold.Store(false)
	close(held.release)

	if d := <-done; d.Status != 503 || d.Reason != authz.ReasonStoreUnavailable {
		t.Errorf("reload failed after a purge: %d %s, want 503 store_unavailable, not the entry read before the purge", d.Status, d.Reason)
	}
	if n := w.a.KeyCacheStats().Stale.Load(); n != 0 {
		t.Errorf("%d stale answers, want none", n)
	}
	// The store recovers: the revocation shows.
	w.st.Fail.Store(false)
	if d := w.check(t, r); d.Reason != authz.ReasonAPIKeyRevoked {
		t.Errorf("after recovery: %s", d.Reason)
	}
}
