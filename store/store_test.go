package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/testclock"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// The interfaces authz owns and the store implements.
var (
	_ authz.KeyLookup  = (*store.Store)(nil)
	_ authz.SeatLookup = (*store.Store)(nil)
	_ authz.ChangeFeed = (*store.Store)(nil)
	_ authz.KeyUsage   = (*store.Store)(nil)
)

// t0 is the fake clock's start. It has sub-millisecond digits on purpose:
// the store keeps milliseconds, as BSON dates do.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 891_234_567, time.UTC)

// ms is what the store keeps of t.
func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond) }

// clock is the fake clock of the store's timestamps.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(t0) }

// openStore opens a fresh embedded store on a fake clock.
func openStore(t *testing.T) (*store.Store, *clock) {
	t.Helper()
	c := newClock()
	return storetest.Open(t, c.Now), c
}

func mustTenant(t *testing.T, s *store.Store, name string) {
	t.Helper()
	if _, err := s.CreateTenant(t.Context(), name); err != nil {
		t.Fatalf("CreateTenant(%q): %v", name, err)
	}
}

func mustSpace(t *testing.T, s *store.Store, tenant, name string) {
	t.Helper()
	if _, err := s.CreateSpace(t.Context(), tenant, name); err != nil {
		t.Fatalf("CreateSpace(%q, %q): %v", tenant, name, err)
	}
}

func mustSeat(t *testing.T, s *store.Store, seat authz.Seat) authz.Seat {
	t.Helper()
	got, err := s.CreateSeat(t.Context(), seat)
	if err != nil {
		t.Fatalf("CreateSeat(%s/%s): %v", seat.Tenant, seat.Name, err)
	}
	return got
}

// newKey generates a key for tenant, failing the test on error.
func newKey(t testing.TB, tenant string) authz.NewAPIKey {
	t.Helper()
	k, err := authz.GenerateAPIKey(tenant)
	if err != nil {
		t.Fatalf("GenerateAPIKey(%q): %v", tenant, err)
	}
	return k
}

// keyFor is a storable key record for a generated key.
func keyFor(nk authz.NewAPIKey, tenant, name string, expires time.Time, seats ...string) store.APIKey {
	return store.APIKey{ID: nk.ID, Tenant: tenant, Name: name, Owner: "ops@example.com",
		Seats: seats, Hash: nk.Hash, ExpiresAt: expires}
}

func mustKey(t *testing.T, s *store.Store, k store.APIKey) store.APIKey {
	t.Helper()
	got, err := s.CreateAPIKey(t.Context(), k)
	if err != nil {
		t.Fatalf("CreateAPIKey(%s): %v", k.Name, err)
	}
	return got
}

func mustRecord(t *testing.T, s *store.Store, id string) store.APIKey {
	t.Helper()
	k, err := s.APIKeyRecord(t.Context(), id)
	if err != nil {
		t.Fatalf("APIKeyRecord(%s): %v", id, err)
	}
	return k
}

func lastChange(t *testing.T, s *store.Store) int64 {
	t.Helper()
	n, err := s.LastChange(t.Context())
	if err != nil {
		t.Fatalf("LastChange: %v", err)
	}
	return n
}

// changesSince returns every change after seq.
func changesSince(t *testing.T, s *store.Store, seq int64) []authz.Change {
	t.Helper()
	chs, err := s.ChangesAfter(t.Context(), seq, 100_000)
	if err != nil {
		t.Fatalf("ChangesAfter(%d): %v", seq, err)
	}
	return chs
}

// wantErr checks err against a sentinel (when want is one of the store's)
// or an exact message.
func wantErr(t *testing.T, what string, got error, want error) {
	t.Helper()
	switch {
	case want == nil && got == nil:
	case want == nil || got == nil:
		t.Fatalf("%s: error %v, want %v", what, got, want)
	case errors.Is(want, store.ErrNotFound) || errors.Is(want, store.ErrExists):
		if !errors.Is(got, want) {
			t.Fatalf("%s: error %v, want errors.Is(%v)", what, got, want)
		}
	default:
		if diff := cmp.Diff(want.Error(), got.Error()); diff != "" {
			t.Fatalf("%s: error message (-want +got):\n%s", what, diff)
		}
	}
}

// unchanged asserts that nothing was written since seq: a failed write
// must leave no change record behind.
func unchanged(t *testing.T, s *store.Store, seq int64) {
	t.Helper()
	if got := lastChange(t, s); got != seq {
		t.Errorf("a failed write appended changes: last change %d, want %d", got, seq)
	}
}

// start runs f in n goroutines that begin together and returns their
// errors by goroutine index.
func start(ctx context.Context, n int, f func(ctx context.Context, i int) error) []error {
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Go(func() {
			ready.Done()
			<-gate
			errs[i] = f(ctx, i)
		})
	}
	ready.Wait()
	close(gate)
	done.Wait()
	return errs
}
