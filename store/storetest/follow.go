package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

// Follow runs a's change feed follower on st, from the feed's position
// now, every interval until the test ends, as a serving process does.
func Follow(t testing.TB, a *authz.Authorizer, st *store.Store, interval time.Duration) {
	t.Helper()
	pos, err := authz.Position(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.Follow(ctx, st, interval, pos) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}
