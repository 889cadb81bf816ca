package server

import (
	"sync/atomic"
	"testing"
	"time"
)

type clockOffset time.Duration

func (c clockOffset) ClockOffset() (time.Duration, bool) { return time.Duration(c), true }

// TestMetricsClockOffset: the offset of this host's clock from the trusted
// IdPs' is exported in seconds, sign kept, so that an alert can fire
// before it reaches jwt.leeway (docs/security-catalogue.md row 25).
func TestMetricsClockOffset(t *testing.T) {
	for _, off := range []time.Duration{-90 * time.Second, 0, 2500 * time.Millisecond} {
		m := newMetrics(new(atomic.Bool))
		m.watchClock(clockOffset(off))
		families, err := m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range families {
			if f.GetName() == "usher_idp_clock_offset_seconds" {
				found = true
				if got := f.GetMetric()[0].GetGauge().GetValue(); got != off.Seconds() {
					t.Errorf("offset %v: gauge = %v, want %v", off, got, off.Seconds())
				}
			}
		}
		if !found {
			t.Fatal("usher_idp_clock_offset_seconds is not exported")
		}
	}
}
