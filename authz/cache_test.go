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

// value is a cached value with a hard end (zero: none).
type value struct {
	name string
	end  time.Time
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
	c.end = func(v *value) (time.Time, *value) { return v.end, &value{name: "ended"} }
	return c, clock
}

func loadValue(v *value) loader[*value] {
	return func(context.Context, string) (*value, error) { return v, nil }
}

func failLoad(context.Context, string) (*value, error) { return nil, errLoad }

// TestCacheStale covers catalogue rows 111, 114 (docs/catalogue-map.md).
func TestCacheStale(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		end        time.Time // of the cached value
		neverStale bool
		at         time.Duration // after the fill; the load then fails
		want       string        // the value served, or "" for errStoreFailed
	}{
		{"within the stale bound", time.Time{}, false, 3 * time.Minute, "v"},
		{"past the stale bound", time.Time{}, false, 6 * time.Minute, ""},
		{"before its end", start.Add(4 * time.Minute), false, 3 * time.Minute, "v"},
		{"at its end", start.Add(3 * time.Minute), false, 3 * time.Minute, ""},
		{"past its end", start.Add(2 * time.Minute), false, 3 * time.Minute, ""},
		{"never stale", time.Time{}, true, 2 * time.Minute, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clock := newTestCache(t, nil)
			c.neverStale = tt.neverStale
			if _, err := c.getWith(t.Context(), "k", loadValue(&value{name: "v", end: tt.end})); err != nil {
				t.Fatal(err)
			}
			clock.Advance(tt.at)
			// getWith directly, as after a lookup that missed just
			// before the end.
			e, err := c.getWith(t.Context(), "k", failLoad)
			got := ""
			if err == nil {
				got = e.val.name
			} else if !errors.Is(err, errStoreFailed) {
				t.Fatalf("error %v, want one wrapping errStoreFailed", err)
			}
			if got != tt.want {
				t.Errorf("served %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCacheEnd: lookup answers an entry up to its end, and what stands for
// it from then on, within the TTL and past it; a value loaded already past
// its end is answered as ended.
// Catalogue row 7 (docs/catalogue-map.md).
func TestCacheEnd(t *testing.T) {
	c, clock := newTestCache(t, nil)
	start := clock.Now()
	if _, err := c.getWith(t.Context(), "k", loadValue(&value{name: "v", end: start.Add(30 * time.Second)})); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Duration
		want string
	}{{0, "v"}, {30*time.Second - time.Millisecond, "v"}, {30 * time.Second, "ended"}, {2 * time.Minute, "ended"}} {
		e, ok := c.lookup("k", start.Add(tt.at))
		if !ok || e.val.name != tt.want {
			t.Errorf("lookup at +%s: %v %v, want %q", tt.at, e, ok, tt.want)
		}
	}
	clock.Set(start.Add(time.Hour))
	e, err := c.getWith(t.Context(), "late", loadValue(&value{name: "v", end: start}))
	if err != nil || e.val.name != "ended" {
		t.Errorf("loaded past its end: %v %v, want the ended value", e, err)
	}
}

// TestCacheStaleNotAfterPurge: a purge that lands while a failing reload
// is in flight forbids serving the entry read before it.
// Catalogue row 110 (docs/catalogue-map.md).
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
