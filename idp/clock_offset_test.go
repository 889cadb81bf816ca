package idp_test

import (
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/testidp"
)

// TestClockOffsetFromKeySet (docs/security-catalogue.md row 25): usher's
// clock is stepped five minutes ahead of the IdP's (the test clock moves;
// the IdP's Date header keeps real time). Once the key set is fetched,
// ClockOffset reports about +5m, which the server exports as
// usher_idp_clock_offset_seconds; before any fetch no offset is known.
// (The test clock starts at real time when the world is made, so real
// time passing during the test makes the offset a little smaller.)
func TestClockOffsetFromKeySet(t *testing.T) {
	w := newWorld(t, "memberOf")
	if _, known := w.v.ClockOffset(); known {
		t.Fatal("an offset is known before any key set was fetched")
	}
	w.clock.Advance(5 * time.Minute) // usher's clock only: the IdP's Date is real time
	tok := testidp.Sign(t, w.rsa, w.claims(nil), nil)
	if d := w.check(t, "/me", tok); d.Reason != authz.ReasonAllowed {
		t.Fatalf("token: %s (%v)", d.Reason, d.Cause)
	}
	off, known := w.v.ClockOffset()
	if !known || off < 5*time.Minute-30*time.Second || off > 5*time.Minute+2*time.Second {
		t.Errorf("ClockOffset = %v, %v; want about +5m", off, known)
	}
}
