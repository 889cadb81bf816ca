package store_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// TestUpdateSeatNoLostUpdate: one admin narrows a seat's grants while
// another edits its groups. Both changes must survive; on FerretDB two
// updates of one document could overwrite each other, and a removed
// permission would come back. A hook holds each writer between its read
// and its write until both have read, so the writers always overlap.
func TestUpdateSeatNoLostUpdate(t *testing.T) {
	s := storetest.Open(t, nil)
	ctx := t.Context()
	if _, err := s.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSpace(ctx, "acme", "proj1"); err != nil {
		t.Fatal(err)
	}
	rw := []authz.Grant{{Space: "proj1", Permissions: []string{"datasets.read", "datasets.write"}}}
	narrowed := []authz.Grant{{Space: "proj1", Permissions: []string{"datasets.read"}}}
	for round := range 20 {
		name := fmt.Sprintf("s%d", round)
		if _, err := s.CreateSeat(ctx, authz.Seat{Tenant: "acme", Name: name, Grants: rw}); err != nil {
			t.Fatal(err)
		}
		groups := []string{"CN=g" + name}
		var reads atomic.Int32
		bothRead := make(chan struct{})
		store.SetSeatReadHook(s, func() {
			switch reads.Add(1) {
			case 1:
				select {
				case <-bothRead:
				case <-time.After(10 * time.Second):
					t.Errorf("round %d: the second writer never read the seat", round)
				}
			case 2:
				close(bothRead)
			}
		})
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := s.UpdateSeat(ctx, "acme", name, store.SeatUpdate{Grants: &narrowed}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := s.UpdateSeat(ctx, "acme", name, store.SeatUpdate{Groups: &groups}); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		store.SetSeatReadHook(s, nil)
		// Both read the same version, so one insert lost and read again.
		if n := reads.Load(); n < 3 {
			t.Errorf("round %d: %d seat reads; the writers did not overlap", round, n)
		}
		got, err := s.Seat(ctx, "acme", name)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(got.Grants[0].Permissions, "datasets.write") {
			t.Errorf("round %d: the removed permission came back: %v", round, got.Grants)
		}
		if !slices.Equal(got.Groups, groups) {
			t.Errorf("round %d: the groups update was lost: %v", round, got.Groups)
		}
	}
}

// TestSeatVersionsPruned: a seat edited many times keeps a bounded history
// and lists once.
func TestSeatManyVersions(t *testing.T) {
	s := storetest.Open(t, nil)
	ctx := t.Context()
	if _, err := s.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSeat(ctx, authz.Seat{Tenant: "acme", Name: "s"}); err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		g := []string{fmt.Sprint(i)}
		if _, err := s.UpdateSeat(ctx, "acme", "s", store.SeatUpdate{Groups: &g}); err != nil {
			t.Fatal(err)
		}
	}
	seats, err := s.Seats(ctx, "acme")
	if err != nil || len(seats) != 1 || seats[0].Groups[0] != "24" {
		t.Errorf("Seats: %+v, %v", seats, err)
	}
	if err := s.DeleteSeat(ctx, "acme", "s"); err != nil {
		t.Fatal(err)
	}
	if seats, _ := s.Seats(ctx, "acme"); len(seats) != 0 {
		t.Errorf("after delete: %+v", seats)
	}
	if _, err := s.CreateSeat(ctx, authz.Seat{Tenant: "acme", Name: "s"}); err != nil {
		t.Errorf("re-create after delete: %v", err)
	}
}
