package authz_test

import (
	"errors"
	"testing"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store/storetest"
)

// The seat reads of a decision failing on their own, the key read
// working (docs/security-catalogue.md row 113): an error is never read as
// "no seats". The seats a decision emits to the upstream (x-usher-seats)
// are never an empty list standing for a failed read, where a "deny if
// seat X" rule upstream would read it as allowed.

// TestCheckCachedKeySeatReadFails: a key whose record is cached but whose
// seat read fails is denied 503 store_unavailable caused by the failure
// on a permission route, also once the key is cached; an
// authenticated-only route, which reads no seat, is allowed with the
// key's full seat list, not an empty one. Once seat reads recover the key
// is allowed without being read again.
// Catalogue row 113 (docs/catalogue-map.md).
func TestCheckCachedKeySeatReadFails(t *testing.T) {
	w := newWorld(t)
	w.st.FailSeat.Store(true)
	for range 2 { // the key read, then the key cached
		d := w.check(t, get("api.example.test", "/spaces/proj1/datasets/a", "x-api-key", w.keys["acme/ci"]))
		if d.Status != 503 || d.Reason != authz.ReasonStoreUnavailable || !errors.Is(d.Cause, storetest.ErrInjected) {
			t.Errorf("seat read failing: %d %s %v; want 503 store_unavailable caused by the injected failure", d.Status, d.Reason, d.Cause)
		}
	}
	if d := w.check(t, get("api.example.test", "/me", "x-api-key", w.keys["acme/multi"])); d.Reason != authz.ReasonAllowed || d.Seats != "admins,editors,viewers" {
		t.Errorf("authenticated route, seat read failing: %s seats %q; want allowed with every seat the key holds", d.Reason, d.Seats)
	}
	if n := w.st.KeyReads.Load(); n != 2 {
		t.Errorf("%d key reads, want 2 (ci once, multi once): the key was not cached while its seats failed", n)
	}
	if w.st.SeatReads.Load() == 0 {
		t.Error("no seat read was attempted")
	}
	w.st.FailSeat.Store(false)
	if d := w.check(t, get("api.example.test", "/spaces/proj1/datasets/a", "x-api-key", w.keys["acme/ci"])); d.Reason != authz.ReasonAllowed || d.Seats != "editors" {
		t.Errorf("after recovery: %s seats %q, want allowed with editors", d.Reason, d.Seats)
	}
	if n := w.st.KeyReads.Load(); n != 2 {
		t.Errorf("%d key reads after recovery, want 2", n)
	}
}

// TestCheckIdPSeatListingFails: an IdP token whose groups map to seats
// is denied 503 store_unavailable while the tenant's seat listing fails
// alone (the token verified, key and seat reads working), on a permission
// route and on an authenticated-only route: never allowed with no seats.
// With the listing working but the seat read failing, the permission
// route is denied the same way and the authenticated-only route, which
// reads no seat, is allowed with the seats the groups map to.
// Catalogue row 113 (docs/catalogue-map.md).
func TestCheckIdPSeatListingFails(t *testing.T) {
	for _, tt := range []struct {
		name   string
		fail   func(*storetest.Faulty)
		meSeat string // what /me answers; "" for the 503
	}{
		{"seat listing fails", func(f *storetest.Faulty) { f.FailSeats.Store(true) }, ""},
		{"seat read fails", func(f *storetest.Faulty) { f.FailSeat.Store(true) }, "editors"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			x := newIdPWorld(t, w)
			tok := x.sign(t, x.rsa, "bob")
			tt.fail(w.st)
			for _, path := range []string{"/spaces/proj1/datasets/a", "/me"} {
				d := w.check(t, get("api.example.test", path, "authorization", "Bearer "+tok))
				if path == "/me" && tt.meSeat != "" {
					if d.Reason != authz.ReasonAllowed || d.Seats != tt.meSeat {
						t.Errorf("%s: %s seats %q; want allowed with %q", path, d.Reason, d.Seats, tt.meSeat)
					}
					continue
				}
				if d.Status != 503 || d.Reason != authz.ReasonStoreUnavailable || !errors.Is(d.Cause, storetest.ErrInjected) {
					t.Errorf("%s: %d %s %v; want 503 store_unavailable caused by the injected failure", path, d.Status, d.Reason, d.Cause)
				}
			}
			if w.st.SeatLists.Load() == 0 {
				t.Error("the seat listing was never asked: the test does not reach the IdP seat mapping")
			}
			w.st.FailSeats.Store(false)
			w.st.FailSeat.Store(false)
			if d := w.check(t, get("api.example.test", "/spaces/proj1/datasets/a", "authorization", "Bearer "+tok)); d.Reason != authz.ReasonAllowed || d.Seats != "editors" {
				t.Errorf("after recovery: %s seats %q, want allowed with editors", d.Reason, d.Seats)
			}
		})
	}
}
