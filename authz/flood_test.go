package authz_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// Floods of well-formed keys whose ids do not exist (issue 8, item 5):
// they must cost no read of a key, leave the store's reads and the
// process's goroutines and heap bounded, and not keep a key created a
// moment earlier from working on its first use.

// withKeyIndex gives the world's authorizer the key index over its store.
func withKeyIndex(c *authz.Config) { c.KeyIndex = c.Keys.(*storetest.Faulty) }

func newIndexedWorld(t testing.TB) *world {
	t.Helper()
	w := newWorld(t, withKeyIndex)
	if err := w.a.LoadKeyIndex(t.Context()); err != nil {
		t.Fatal(err)
	}
	return w
}

// createKey stores a new key of tenant acme with the editors seat, as the
// CLI does in another process: nothing tells the authorizer.
func (w *world) createKey(t *testing.T) (authz.NewAPIKey, authz.Change) {
	t.Helper()
	nk, err := authz.GenerateAPIKey("acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.CreateAPIKey(t.Context(), store.APIKey{ID: nk.ID, Tenant: "acme", Name: "fresh-" + nk.ID,
		Seats: []string{"editors"}, Hash: nk.Hash, ExpiresAt: w.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	changes, err := w.st.ChangesAfter(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	last := changes[len(changes)-1]
	if last.Kind != authz.ChangeAPIKey || last.Key != nk.ID {
		t.Fatalf("creating key %s appended %+v; the key index needs its change", nk.ID, last)
	}
	return nk, last
}

// peak keeps the highest value it was shown.
type peak struct{ v atomic.Int64 }

func (p *peak) see(n int64) {
	for m := p.v.Load(); n > m && !p.v.CompareAndSwap(m, n); {
		m = p.v.Load()
	}
}

func heapAlloc() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// flood sends perWorker random well-formed keys from each of workers
// goroutines, half of an existing tenant, half of a tenant that does not
// exist, and counts decisions other than apikey_invalid. underway is
// closed once every worker has sent its first key.
func flood(t *testing.T, w *world, workers, perWorker int, goroutines, heap *peak) (wrong *atomic.Int64, underway <-chan struct{}, wait func()) {
	t.Helper()
	wrong = new(atomic.Int64)
	var started sync.WaitGroup
	started.Add(workers)
	var wg sync.WaitGroup
	for i := range workers {
		tenant := "acme"
		if i%2 == 1 {
			tenant = "nosuchtenant"
		}
		wg.Go(func() {
			for n := range perWorker {
				nk, err := authz.GenerateAPIKey(tenant)
				if err != nil {
					t.Error(err)
					return
				}
				d := w.a.Check(t.Context(), get("api.example.test", "/me", "x-api-key", nk.Key))
				if d.Reason != authz.ReasonAPIKeyInvalid {
					wrong.Add(1)
				}
				goroutines.see(int64(runtime.NumGoroutine()))
				if n == 0 {
					started.Done()
				}
				if i == 0 && n%8 == 0 {
					heap.see(heapAlloc())
				}
			}
		})
	}
	ch := make(chan struct{})
	go func() { started.Wait(); close(ch) }()
	return wrong, ch, wg.Wait
}

// TestFloodOfUnknownKeysCostsNoKeyRead covers catalogue rows 6, 125
// (docs/catalogue-map.md).
func TestFloodOfUnknownKeysCostsNoKeyRead(t *testing.T) {
	w := newIndexedWorld(t)
	const workers, perWorker = 256, 8
	runtime.GC()
	baseGoroutines, baseHeap := int64(runtime.NumGoroutine()), heapAlloc()
	var goroutines, heap peak

	wrong, underway, wait := flood(t, w, workers, perWorker, &goroutines, &heap)
	<-underway
	// A key created elsewhere a moment ago, whose change no follower has
	// applied: the index's next read of the feed finds it.
	unseen, _ := w.createKey(t)
	if d := w.check(t, get("api.example.test", "/me", "x-api-key", unseen.Key)); d.Reason != authz.ReasonAllowed {
		t.Errorf("key created during the flood, before its change was applied: %s (%v), want allowed", d.Reason, d.Cause)
	}
	// A key whose change the follower applied.
	applied, ch := w.createKey(t)
	w.a.Apply(ch)
	if d := w.check(t, get("api.example.test", "/me", "x-api-key", applied.Key)); d.Reason != authz.ReasonAllowed {
		t.Errorf("key created during the flood, its change applied: %s (%v), want allowed", d.Reason, d.Cause)
	}
	wait()

	if n := wrong.Load(); n != 0 {
		t.Errorf("%d of %d unknown keys were not answered apikey_invalid", n, workers*perWorker)
	}
	if n := w.st.KeyReads.Load(); n != 2 {
		t.Errorf("the store read %d keys; want 2, the fresh keys' (unknown ids must cost no key read)", n)
	}
	if n := w.st.MaxKeyReadsInFlight.Load(); n > authz.DefaultMaxLoads {
		t.Errorf("%d key reads in flight at once; want at most %d", n, authz.DefaultMaxLoads)
	}
	// The workers themselves, and a few for the index's rounds and the
	// store's connections.
	if n, limit := goroutines.v.Load(), baseGoroutines+workers+32; n > limit {
		t.Errorf("%d goroutines during the flood; want at most %d", n, limit)
	}
	if n := heap.v.Load() - baseHeap; n > 64<<20 {
		t.Errorf("heap grew by %d bytes during the flood; want at most 64 MiB", n)
	}
}

// TestKeyIndexReloadsAfterGap prunes the feed past the index's position:
// a key whose change the index never read is found by listing again.
func TestKeyIndexReloadsAfterGap(t *testing.T) {
	w := newIndexedWorld(t)
	lost, _ := w.createKey(t)
	w.createKey(t)
	if _, err := w.st.PruneChanges(t.Context(), w.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d := w.check(t, get("api.example.test", "/me", "x-api-key", lost.Key)); d.Reason != authz.ReasonAllowed {
		t.Errorf("key whose change was pruned: %s (%v), want allowed", d.Reason, d.Cause)
	}
}

// failingFeed is the store with a change feed that fails on demand.
type failingFeed struct {
	*storetest.Faulty
	fail atomic.Bool
}

func (f *failingFeed) ChangesAfter(ctx context.Context, after int64, limit int) ([]authz.Change, error) {
	if f.fail.Load() {
		return nil, storetest.ErrInjected
	}
	return f.Faulty.ChangesAfter(ctx, after, limit)
}

// TestKeyIndexMissWhileFeedFails answers 503, not apikey_invalid: the key
// may have been created since the index last read the feed.
// Catalogue row 112 (docs/catalogue-map.md).
func TestKeyIndexMissWhileFeedFails(t *testing.T) {
	var feed *failingFeed
	w := newWorld(t, func(c *authz.Config) {
		feed = &failingFeed{Faulty: c.Keys.(*storetest.Faulty)}
		c.KeyIndex = feed
	})
	if err := w.a.LoadKeyIndex(t.Context()); err != nil {
		t.Fatal(err)
	}
	nk, err := authz.GenerateAPIKey("acme")
	if err != nil {
		t.Fatal(err)
	}
	feed.fail.Store(true)
	d := w.check(t, get("api.example.test", "/me", "x-api-key", nk.Key))
	if d.Status != 503 || d.Reason != authz.ReasonStoreUnavailable {
		t.Errorf("unknown key while the feed cannot be read: %d %s, want 503 store_unavailable", d.Status, d.Reason)
	}
	if d := w.check(t, get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])); d.Reason != authz.ReasonAllowed {
		t.Errorf("indexed key while the feed cannot be read: %s, want allowed", d.Reason)
	}
	if n := w.st.KeyReads.Load(); n != 1 {
		t.Errorf("the store read %d keys; want 1, the indexed key's", n)
	}
}

// TestCacheLoadsAreBounded floods an authorizer without the key index with
// Checks that give up at once against a slow store: the loads they leave
// behind stay within cache.max_loads, and a real key still works after.
// Catalogue rows 6, 104 (docs/catalogue-map.md).
func TestCacheLoadsAreBounded(t *testing.T) {
	const maxLoads = 4
	w := newWorld(t, func(c *authz.Config) { c.Cache.MaxLoads = maxLoads })
	w.st.Delay.Store(int64(20 * time.Millisecond))
	const workers, perWorker = 64, 8
	runtime.GC()
	base := int64(runtime.NumGoroutine())
	var goroutines peak
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				nk, err := authz.GenerateAPIKey("acme")
				if err != nil {
					t.Error(err)
					return
				}
				ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
				if d := w.a.Check(ctx, get("api.example.test", "/me", "x-api-key", nk.Key)); d.Allowed() {
					t.Errorf("unknown key allowed: %+v", d)
				}
				cancel()
				goroutines.see(int64(runtime.NumGoroutine()))
			}
		})
	}
	wg.Wait()
	w.st.Delay.Store(0)
	// Loads still waiting for a slot may refuse it at first; once they
	// drain, it works.
	waitFor(t, func() bool {
		return w.check(t, get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])).Reason == authz.ReasonAllowed
	}, "a known key to be allowed after the flood")
	if n := w.st.MaxKeyReadsInFlight.Load(); n > maxLoads {
		t.Errorf("%d key reads in flight at once; want at most cache.max_loads (%d)", n, maxLoads)
	}
	// Workers, the loads they start (running, waiting, or failing at once),
	// and a few for the store.
	if n, limit := goroutines.v.Load(), base+2*workers+maxLoads*(1+16)+64; n > limit {
		t.Errorf("%d goroutines during the flood; want at most %d", n, limit)
	}
}
