package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// These tests are what docs/SECURITY.md "Store atomicity" asks for: many
// concurrent writers, on FerretDB, which does not apply concurrent updates
// of one document atomically.

// 24 writers keep the race real (each append loses to most of the others
// at first) and the run short on two cores under -race.
const (
	writers          = 24
	appendsPerWriter = 3
)

// checkFeed asserts that the feed holds exactly one tenant change per name
// in want, numbered 1…len(want) without a gap or a repeat, in order.
func checkFeed(t *testing.T, s *store.Store, want []string) {
	t.Helper()
	chs := changesSince(t, s, 0)
	var names []string
	for i, ch := range chs {
		if ch.Seq != int64(i+1) {
			t.Fatalf("change #%d has Seq %d, want %d: the feed has a gap, a repeat or is out of order", i, ch.Seq, i+1)
		}
		names = append(names, ch.Key)
	}
	slices.Sort(names)
	want = slices.Sorted(slices.Values(want))
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("tenants in the feed (-want +got):\n%s", diff)
	}
	if got := lastChange(t, s); got != int64(len(want)) {
		t.Errorf("LastChange = %d, want %d", got, len(want))
	}
	// A follower reading in small batches sees every change once, in order.
	var seen []int64
	for after := int64(0); ; {
		batch, err := s.ChangesAfter(t.Context(), after, 7)
		if err != nil {
			t.Fatalf("ChangesAfter: %v", err)
		}
		if len(batch) == 0 {
			break
		}
		for _, ch := range batch {
			seen = append(seen, ch.Seq)
		}
		after = batch[len(batch)-1].Seq
	}
	wantSeqs := make([]int64, len(want))
	for i := range wantSeqs {
		wantSeqs[i] = int64(i + 1)
	}
	if diff := cmp.Diff(wantSeqs, seen); diff != "" {
		t.Errorf("sequence numbers read in batches of 7 (-want +got):\n%s", diff)
	}
}

// createTenants creates writers×appendsPerWriter tenants concurrently,
// writer i through stores[i%len(stores)], and returns their names. The
// first failure stops every writer, so that a failing run ends early.
func createTenants(t *testing.T, stores ...*store.Store) []string {
	t.Helper()
	g, ctx := errgroup.WithContext(t.Context())
	gate := make(chan struct{})
	for i := range writers {
		g.Go(func() error {
			<-gate
			s := stores[i%len(stores)]
			for j := range appendsPerWriter {
				if _, err := s.CreateTenant(ctx, fmt.Sprintf("w%02d-%d", i, j)); err != nil {
					return fmt.Errorf("writer %d, tenant %d of %d: %w", i, j, appendsPerWriter, err)
				}
			}
			return nil
		})
	}
	close(gate)
	if err := g.Wait(); err != nil {
		t.Fatalf("%d concurrent writers: %v", writers, err)
	}
	var names []string
	for i := range writers {
		for j := range appendsPerWriter {
			names = append(names, fmt.Sprintf("w%02d-%d", i, j))
		}
	}
	return names
}

// TestChangeFeedConcurrentWriters appends through one Store from many
// goroutines. It and TestChangeFeedTwoClients run alone (not parallel): on
// two cores, both at once make SQLite's lock waits dominate.
func TestChangeFeedConcurrentWriters(t *testing.T) {
	s := storetest.Open(t, nil)
	checkFeed(t, s, createTenants(t, s))
}

// TestChangeFeedTwoClients writes through two clients of one embedded
// server, the second connected through the first one's socket as the CLI
// is while `usher serve` runs.
func TestChangeFeedTwoClients(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	server := storetest.OpenDir(t, dir, nil)
	cli, err := store.Open(t.Context(), store.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("open a second client: %v", err)
	}
	t.Cleanup(func() { closeStore(t, cli) })
	if cli.Embedded() != nil {
		t.Fatal("the second client started its own server instead of using the running one")
	}
	names := createTenants(t, server, cli)
	checkFeed(t, server, names)
	checkFeed(t, cli, names)
}

func TestCreateTenantRace(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t, nil)
	const n = 32
	errs := start(t.Context(), n, func(ctx context.Context, _ int) error {
		_, err := s.CreateTenant(ctx, "acme")
		return err
	})
	wantOneWinner(t, errs, store.ErrExists)
	want := []authz.Change{{Seq: 1, Kind: authz.ChangeTenant, Tenant: "acme", Key: "acme"}}
	got := changesSince(t, s, 0)
	for i := range got {
		got[i].At = time.Time{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

// wantOneWinner asserts that exactly one error is nil and every other is
// loser.
func wantOneWinner(t *testing.T, errs []error, loser error) {
	t.Helper()
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
		case !errors.Is(err, loser):
			t.Errorf("claimant %d: error %v, want errors.Is(%v)", i, err, loser)
		}
	}
	if winners != 1 {
		t.Errorf("%d of %d claimants won, want exactly 1", winners, len(errs))
	}
}

// TestCreateAPIKeyNameRace creates keys of one name at once: at most one
// active key may have a name in a tenant, whoever races.
func TestCreateAPIKeyNameRace(t *testing.T) {
	t.Parallel()
	s, _ := keyFixture(t)
	year := t0.Add(store.MaxKeyLifetime)
	keys := make([]authz.NewAPIKey, 16)
	for i := range keys {
		keys[i] = newKey(t, "acme")
	}
	errs := start(t.Context(), len(keys), func(ctx context.Context, i int) error {
		_, err := s.CreateAPIKey(ctx, keyFor(keys[i], "acme", "deploy", year))
		return err
	})
	wantOneWinner(t, errs, store.ErrExists)
}

// TestRotateAPIKeyRace rotates one key many times at once. Rotation is
// single-use: one successor, the rest refused, as for refresh tokens.
func TestRotateAPIKeyRace(t *testing.T) {
	t.Parallel()
	s, _ := keyFixture(t)
	year := t0.Add(store.MaxKeyLifetime)
	old := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "deploy", year, "viewer"))
	next := make([]authz.NewAPIKey, 16)
	for i := range next {
		next[i] = newKey(t, "acme")
	}
	var created sync.Map
	errs := start(t.Context(), len(next), func(ctx context.Context, i int) error {
		k, _, err := s.RotateAPIKey(ctx, old, keyFor(next[i], "", "", year), time.Hour)
		if err == nil {
			created.Store(k.ID, i)
		}
		return err
	})
	winners := 0
	for _, err := range errs {
		if err == nil {
			winners++
		}
	}
	if winners != 1 {
		t.Errorf("%d of %d concurrent rotations of one key succeeded, want exactly 1", winners, len(errs))
	}
	keys, err := s.APIKeys(t.Context(), "acme")
	if err != nil {
		t.Fatalf("APIKeys: %v", err)
	}
	if len(keys) != 2 {
		t.Errorf("acme has %d keys after rotating one, want 2 (the old and one successor)", len(keys))
	}
	rec := mustRecord(t, s, old.ID)
	if _, ok := created.Load(rec.SupersededBy); !ok {
		t.Errorf("old key superseded by %q, which no rotation returned", rec.SupersededBy)
	}
}

// TestRevokeNotLostToTouch revokes keys while servers record their use.
// FerretDB replaces a whole document on update, so a "last used" write
// that read the key before the revocation must not write it back
// unrevoked: a revocation that is silently undone lets a stolen key in.
func TestRevokeNotLostToTouch(t *testing.T) {
	t.Parallel()
	s, _ := keyFixture(t)
	ctx := t.Context()
	const rounds = 20
	year := t0.Add(store.MaxKeyLifetime)
	lost := 0
	for r := range rounds {
		k := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", fmt.Sprintf("k%d", r), year))
		var stop atomic.Bool
		var wg sync.WaitGroup
		var touchErr atomic.Value
		for g := range 4 {
			wg.Go(func() {
				for i := 0; !stop.Load(); i++ {
					at := t0.Add(time.Duration(g*1_000_000+i) * time.Millisecond)
					if err := s.TouchAPIKeys(ctx, map[string]time.Time{k.ID: at}); err != nil {
						touchErr.Store(err)
						return
					}
				}
			})
		}
		// Let the touches get going; correctness does not depend on it.
		for used := false; !used && touchErr.Load() == nil; {
			used = !mustRecord(t, s, k.ID).LastUsed.IsZero()
		}
		_, err := s.RevokeAPIKey(ctx, "acme", k.ID)
		for range 3 {
			mustRecord(t, s, k.ID)
		}
		stop.Store(true)
		wg.Wait()
		if err != nil {
			t.Fatalf("RevokeAPIKey: %v", err)
		}
		if err, ok := touchErr.Load().(error); ok {
			t.Fatalf("TouchAPIKeys: %v", err)
		}
		if mustRecord(t, s, k.ID).RevokedAt.IsZero() {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d revocations were undone by concurrent TouchAPIKeys", lost, rounds)
	}
}

func closeStore(t *testing.T, s *store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("close store: %v", err)
	}
}
