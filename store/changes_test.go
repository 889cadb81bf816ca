package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

// TestEveryWriteAppendsAChange runs one of each write and reads the feed
// back: one change per write (two for a rotation: the new key, then the
// old), in order, numbered from 1, stamped by the store's clock.
func TestEveryWriteAppendsAChange(t *testing.T) {
	t.Parallel()
	s, c := openStore(t)
	ctx := t.Context()
	if got := lastChange(t, s); got != 0 {
		t.Fatalf("LastChange of an empty store = %d, want 0", got)
	}
	if got := changesSince(t, s, 0); len(got) != 0 {
		t.Fatalf("ChangesAfter(0) of an empty store = %v, want none", got)
	}

	year := t0.Add(store.MaxKeyLifetime)
	k1, k2 := newKey(t, "acme"), newKey(t, "acme")
	var old store.APIKey
	writes := []struct {
		name string
		do   func() error
		want []authz.Change // Seq and At are filled in below
	}{
		{"CreateTenant", func() error { _, err := s.CreateTenant(ctx, "acme"); return err },
			[]authz.Change{{Kind: authz.ChangeTenant, Tenant: "acme", Key: "acme"}}},
		{"CreateSpace", func() error { _, err := s.CreateSpace(ctx, "acme", "prod"); return err },
			[]authz.Change{{Kind: authz.ChangeSpace, Tenant: "acme", Key: "prod"}}},
		{"CreateSeat", func() error {
			_, err := s.CreateSeat(ctx, authz.Seat{Tenant: "acme", Name: "viewer",
				Grants: []authz.Grant{{Space: "prod", Permissions: []string{"datasets.read"}}}})
			return err
		}, []authz.Change{{Kind: authz.ChangeSeat, Tenant: "acme", Key: "viewer"}}},
		{"UpdateSeat", func() error {
			groups := []string{"CN=viewers,OU=groups"}
			_, err := s.UpdateSeat(ctx, "acme", "viewer", store.SeatUpdate{Groups: &groups})
			return err
		}, []authz.Change{{Kind: authz.ChangeSeat, Tenant: "acme", Key: "viewer"}}},
		{"CreateAPIKey", func() (err error) {
			old, err = s.CreateAPIKey(ctx, keyFor(k1, "acme", "ci", year, "viewer"))
			return err
		}, []authz.Change{{Kind: authz.ChangeAPIKey, Tenant: "acme", Key: k1.ID}}},
		{"RotateAPIKey", func() error {
			_, _, err := s.RotateAPIKey(ctx, old, keyFor(k2, "", "", year), time.Hour)
			return err
		}, []authz.Change{
			{Kind: authz.ChangeAPIKey, Tenant: "acme", Key: k2.ID},
			{Kind: authz.ChangeAPIKey, Tenant: "acme", Key: k1.ID},
		}},
		{"RevokeAPIKey", func() error { _, err := s.RevokeAPIKey(ctx, "acme", k2.ID); return err },
			[]authz.Change{{Kind: authz.ChangeAPIKey, Tenant: "acme", Key: k2.ID}}},
		{"DeleteSeat", func() error { return s.DeleteSeat(ctx, "acme", "viewer") },
			[]authz.Change{{Kind: authz.ChangeSeat, Tenant: "acme", Key: "viewer"}}},
		{"TouchAPIKeys appends nothing", func() error {
			return s.TouchAPIKeys(ctx, map[string]time.Time{k1.ID: c.Now()})
		}, nil},
		{"PruneChanges appends nothing", func() error { _, err := s.PruneChanges(ctx, t0); return err }, nil},
	}

	var all []authz.Change
	for _, w := range writes {
		seq := lastChange(t, s)
		if err := w.do(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		want := []authz.Change{}
		for i, ch := range w.want {
			ch.Seq = seq + int64(i) + 1
			ch.At = ms(c.Now())
			want = append(want, ch)
		}
		if diff := cmp.Diff(want, changesSince(t, s, seq)); diff != "" {
			t.Errorf("%s: changes (-want +got):\n%s", w.name, diff)
		}
		all = append(all, want...)
		c.Advance(time.Second)
	}
	if diff := cmp.Diff(all, changesSince(t, s, 0)); diff != "" {
		t.Errorf("the whole feed (-want +got):\n%s", diff)
	}
	if got, want := lastChange(t, s), int64(len(all)); got != want {
		t.Errorf("LastChange = %d, want %d", got, want)
	}
}

// feedFixture is a store whose feed holds the creation of tenants t1…tn,
// one a minute from t0: change i is tenant ti at t0+(i-1)min.
func feedFixture(t *testing.T, n int) (*store.Store, *clock, []authz.Change) {
	t.Helper()
	s, c := openStore(t)
	var chs []authz.Change
	for i := 1; i <= n; i++ {
		name := "t" + string(rune('0'+i))
		mustTenant(t, s, name)
		chs = append(chs, authz.Change{Seq: int64(i), Kind: authz.ChangeTenant, Tenant: name, Key: name, At: ms(c.Now())})
		c.Advance(time.Minute)
	}
	return s, c, chs
}

func TestChangesAfter(t *testing.T) {
	t.Parallel()
	s, _, chs := feedFixture(t, 5)
	tests := []struct {
		name  string
		after int64
		limit int
		want  []authz.Change
	}{
		{"from the start", 0, 100, chs},
		{"limited", 0, 2, chs[:2]},
		{"limit of one", 3, 1, chs[3:4]},
		{"after", 2, 100, chs[2:]},
		{"after and limited", 1, 3, chs[1:4]},
		{"limit equals what is left", 3, 2, chs[3:]},
		{"at the end", 5, 100, []authz.Change{}},
		{"past the end", 9, 100, []authz.Change{}},
		{"before the start", -7, 100, chs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ChangesAfter(t.Context(), tc.after, tc.limit)
			if err != nil {
				t.Fatalf("ChangesAfter: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ChangesAfter(%d, %d) (-want +got):\n%s", tc.after, tc.limit, diff)
			}
		})
	}
	if got := lastChange(t, s); got != 5 {
		t.Errorf("LastChange = %d, want 5", got)
	}
}

func TestPruneChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		before      time.Duration // from t0
		wantDeleted int64
		wantKept    []int // 1-based indexes into the fixture's changes
	}{
		{"nothing old enough", -time.Minute, 0, []int{1, 2, 3, 4}},
		{"exactly at the first is not before it", 0, 0, []int{1, 2, 3, 4}},
		{"the first two", 2 * time.Minute, 2, []int{3, 4}},
		{"just after the third", 2*time.Minute + time.Millisecond, 3, []int{4}},
		{"everything keeps the newest", 24 * time.Hour, 3, []int{4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c, chs := feedFixture(t, 4)
			n, err := s.PruneChanges(t.Context(), t0.Add(tc.before))
			if err != nil {
				t.Fatalf("PruneChanges: %v", err)
			}
			if n != tc.wantDeleted {
				t.Errorf("PruneChanges deleted %d, want %d", n, tc.wantDeleted)
			}
			want := []authz.Change{}
			for _, i := range tc.wantKept {
				want = append(want, chs[i-1])
			}
			if diff := cmp.Diff(want, changesSince(t, s, 0)); diff != "" {
				t.Errorf("changes left (-want +got):\n%s", diff)
			}
			// The sequence goes on from where it was, never restarting.
			if got := lastChange(t, s); got != 4 {
				t.Errorf("LastChange after pruning = %d, want 4", got)
			}
			mustTenant(t, s, "next")
			wantNext := []authz.Change{{Seq: 5, Kind: authz.ChangeTenant, Tenant: "next", Key: "next", At: ms(c.Now())}}
			if diff := cmp.Diff(wantNext, changesSince(t, s, 4)); diff != "" {
				t.Errorf("the change after pruning (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPruneChangesEmpty(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	n, err := s.PruneChanges(t.Context(), t0.Add(time.Hour))
	if err != nil || n != 0 {
		t.Fatalf("PruneChanges of an empty feed = %d, %v; want 0, nil", n, err)
	}
}

// TestPruneChangesBySequence writes changes from writers whose clocks
// disagree: pruning cuts the feed at the oldest change stamped recent
// enough and keeps everything after it, so a change stamped by a slow
// clock is not cut out of the middle of the feed (a hole that would purge
// every follower's caches), and one stamped by a fast clock keeps the
// feed longer rather than shorter.
func TestPruneChangesBySequence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// skew is each writer's clock against the true time t0+i min of
		// change i (1-based).
		skew     []time.Duration
		before   time.Duration // from t0
		wantKept []int64
	}{
		{name: "a slow clock in the middle", skew: []time.Duration{0, 0, 0, -time.Hour, 0},
			before: 2 * time.Minute, wantKept: []int64{3, 4, 5}},
		{name: "a slow clock at the end", skew: []time.Duration{0, 0, 0, 0, -time.Hour},
			before: 2 * time.Minute, wantKept: []int64{3, 4, 5}},
		{name: "a fast clock keeps what follows it", skew: []time.Duration{0, 10 * time.Hour, 0, 0, 0},
			before: 3 * time.Minute, wantKept: []int64{2, 3, 4, 5}},
		{name: "only slow clocks: the newest stays", skew: []time.Duration{-time.Hour, -time.Hour, -time.Hour},
			before: time.Minute, wantKept: []int64{3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := openStore(t)
			for i, skew := range tc.skew {
				c.Set(t0.Add(time.Duration(i)*time.Minute + skew))
				mustTenant(t, s, fmt.Sprintf("t%d", i+1))
			}
			if _, err := s.PruneChanges(t.Context(), t0.Add(tc.before)); err != nil {
				t.Fatalf("PruneChanges: %v", err)
			}
			var kept []int64
			for _, ch := range changesSince(t, s, 0) {
				kept = append(kept, ch.Seq)
			}
			if diff := cmp.Diff(tc.wantKept, kept); diff != "" {
				t.Errorf("changes kept (-want +got):\n%s", diff)
			}
		})
	}
}
