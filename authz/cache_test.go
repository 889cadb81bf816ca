package authz

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/usher-dev/usher/internal/testclock"
)

// The read-through cache's stale serving, by itself: with a loader that
// fails, or that is held in flight, and a test clock.

var errLoad = errors.New("injected load failure")

// value is a cached value.
type value struct {
	name string
}

func newTestCache(t *testing.T, load loader[*value]) (*cache[*value], *testclock.Clock) {
	t.Helper()
	clock := testclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := DefaultCacheConfig() // TTL 1m, StaleMax 5m
	c, err := newCache(cfg, clock.Now, load, func(*value) int64 { return 64 })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c, clock
}

func loadValue(v *value) loader[*value] {
	return func(context.Context, string) (*value, error) { return v, nil }
}

// TestCacheStaleNotAfterPurge: a purge that lands while a failing reload
// is in flight forbids serving the entry read before it.
func TestCacheStaleNotAfterPurge(t *testing.T) {
	for _, purge := range []bool{false, true} {
		entered, release := make(chan struct{}), make(chan struct{})
		held := func(context.Context, string) (*value, error) {
			entered <- struct{}{}
			<-release
			return nil, errLoad
		}
		c, clock := newTestCache(t, nil)
		if _, err := c.getWith(t.Context(), "k", loadValue(&value{name: "v"})); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Minute) // stale, within the bound
		type result struct {
			e   *entry[*value]
			err error
		}
		done := make(chan result, 1)
		go func() {
			e, err := c.getWith(t.Context(), "k", held)
			done <- result{e, err}
		}()
		<-entered
		if purge {
			c.purge("k")
		}
		close(release)
		res := <-done
		switch {
		case purge && !errors.Is(res.err, errStoreFailed):
			t.Errorf("purged during the load: %v %v, want errStoreFailed", res.e, res.err)
		case !purge && (res.err != nil || res.e.val.name != "v"):
			t.Errorf("no purge: %v %v, want the stale entry", res.e, res.err)
		}
	}
}
