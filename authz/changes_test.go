package authz_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store/storetest"
)

// holeyFeed is the real feed with one change missing, as a real store
// cannot be made to skip a number on demand: a change pruned before the
// follower read it. It records the positions it is read from.
type holeyFeed struct {
	*storetest.Faulty
	hide int64

	mu    sync.Mutex
	after []int64
}

func (f *holeyFeed) ChangesAfter(ctx context.Context, after int64, limit int) ([]authz.Change, error) {
	f.mu.Lock()
	f.after = append(f.after, after)
	f.mu.Unlock()
	chs, err := f.Faulty.ChangesAfter(ctx, after, limit)
	return slices.DeleteFunc(chs, func(ch authz.Change) bool { return ch.Seq == f.hide }), err
}

func (f *holeyFeed) positions() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.after)
}

// follow runs a.Follow on feed from pos until the test ends.
func follow(t *testing.T, a *authz.Authorizer, feed authz.ChangeFeed, interval time.Duration, pos int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.Follow(ctx, feed, interval, pos) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// waitUntil polls cond, for at most 10s (a bound for a loaded machine,
// not a measurement), and fails the test if it never holds.
func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestFollowPurgesAtAHoleInsideABatch: the feed reads [p+1, p+3] from p,
// the revocation at p+2 missing. The follower must see the hole in the
// middle of the batch, purge every cache (so the revoked key is refused),
// and go on from p+3 rather than read the hole again and again.
func TestFollowPurgesAtAHoleInsideABatch(t *testing.T) {
	w := newWorld(t)
	r := get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("warm-up: %s", d.Reason)
	}
	pos, err := authz.Position(t.Context(), w.st)
	if err != nil {
		t.Fatal(err)
	}
	// Space changes purge nothing: only the purge of every cache can
	// make the follower forget the cached key.
	if _, err := w.st.CreateSpace(t.Context(), "acme", "before"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.RevokeAPIKey(t.Context(), "acme", "ciacmekeyaaaaaaa"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.CreateSpace(t.Context(), "acme", "after"); err != nil {
		t.Fatal(err)
	}
	feed := &holeyFeed{Faulty: w.st, hide: pos + 2}
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("still cached before following: %s", d.Reason)
	}
	follow(t, w.a, feed, 10*time.Millisecond, pos)
	waitUntil(t, func() bool { return w.check(t, r).Reason == authz.ReasonAPIKeyRevoked }, "the purge at the hole")

	// Once past the hole, the follower reads from p+3 only.
	waitUntil(t, func() bool {
		return len(slices.DeleteFunc(feed.positions(), func(p int64) bool { return p != pos+3 })) >= 3
	}, "reads from after the hole")
	got := feed.positions()
	first := slices.Index(got, pos+3)
	if slices.ContainsFunc(got[first:], func(p int64) bool { return p != pos+3 }) {
		t.Errorf("read from %v: after reaching %d the follower went back", got, pos+3)
	}
	// From p, then p+1 once more after waiting for a late insert.
	if want := []int64{pos, pos + 1}; !slices.Equal(got[:first], want) {
		t.Errorf("read from %v before reaching %d, want %v", got[:first], pos+3, want)
	}
}

// TestFollowSurvivesAHungRead: a read of the feed that never answers ends
// at its deadline, and the follower goes on to apply a later change.
func TestFollowSurvivesAHungRead(t *testing.T) {
	w := newWorld(t)
	r := get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("warm-up: %s", d.Reason)
	}
	pos, err := authz.Position(t.Context(), w.st)
	if err != nil {
		t.Fatal(err)
	}
	w.st.HangFeed.Store(1)
	follow(t, w.a, w.st, 10*time.Millisecond, pos)
	waitUntil(t, func() bool { return w.st.FeedReads.Load() >= 1 }, "the first read, which hangs")
	if _, err := w.st.RevokeAPIKey(t.Context(), "acme", "ciacmekeyaaaaaaa"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return w.check(t, r).Reason == authz.ReasonAPIKeyRevoked }, "the revocation after the hung read")
	if n := w.st.HangFeed.Load(); n != 0 {
		t.Errorf("%d hanging reads left; the follower did not read through the hang", n)
	}
}
