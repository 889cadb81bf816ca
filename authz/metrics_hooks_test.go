package authz_test

import (
	"sync"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
)

// TestCacheEntries: the key cache's entry count follows what it holds: a
// read key and a remembered unknown one add, a purge takes one off.
func TestCacheEntries(t *testing.T) {
	w := newWorld(t)
	entries := func() int64 { return w.a.KeyCacheStats().Entries.Load() }
	if n := entries(); n != 0 {
		t.Fatalf("a new cache holds %d entries", n)
	}
	w.check(t, get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"]))
	w.check(t, get("api.example.test", "/me", "x-api-key", w.keys["acme/reader"]))
	w.check(t, get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])) // cached: no new entry
	if n := entries(); n != 2 {
		t.Fatalf("after two keys: %d entries", n)
	}
	w.a.Apply(authz.Change{Kind: authz.ChangeAPIKey, Tenant: "acme", Key: "ciacmekeyaaaaaaa"})
	if n := entries(); n != 1 {
		t.Errorf("after a purge: %d entries", n)
	}
	w.a.Apply(authz.Change{Kind: "gap"})
	waitUntil(t, func() bool { return entries() == 0 }, "every entry gone after purging everything")
}

// TestChangeLag: the follower reports, for each change it applies, how
// long after the change's write that was.
func TestChangeLag(t *testing.T) {
	var mu sync.Mutex
	var lags []time.Duration
	w := newWorld(t, func(c *authz.Config) {
		c.ChangeLag = func(d time.Duration) {
			mu.Lock()
			lags = append(lags, d)
			mu.Unlock()
		}
	})
	pos, err := authz.Position(t.Context(), w.st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.RevokeAPIKey(t.Context(), "acme", "ciacmekeyaaaaaaa"); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(1500 * time.Millisecond) // the change is applied 1.5s after its write
	follow(t, w.a, w.st, 10*time.Millisecond, pos)
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(lags) > 0 }, "a lag observed")
	mu.Lock()
	defer mu.Unlock()
	if lags[0] != 1500*time.Millisecond {
		t.Errorf("lag %v, want 1.5s", lags[0])
	}
}
