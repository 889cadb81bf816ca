package server

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/usher-dev/usher/authz"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestMetricsObserve: each decision lands in its series, and counting one
// whose series was seen before allocates nothing (the hot path resolves no
// label values).
// Catalogue row 10 (docs/catalogue-map.md).
func TestMetricsObserve(t *testing.T) {
	m := newMetrics(new(atomic.Bool))
	allow := authz.Decision{Status: 200, Reason: authz.ReasonAllowed, Identity: authz.Identity{Method: authz.AuthAPIKey}}
	deny := authz.Deny(authz.ReasonCredentialMissing)
	m.observe(&allow, time.Millisecond)
	m.observe(&allow, time.Millisecond)
	m.observe(&deny, time.Millisecond)
	if got := counterValue(t, m.decisions.WithLabelValues("200", "allowed", "apikey")); got != 2 {
		t.Errorf("allowed apikey decisions: %v, want 2", got)
	}
	if got := counterValue(t, m.decisions.WithLabelValues("401", "credential_missing", "none")); got != 1 {
		t.Errorf("credential_missing decisions: %v, want 1", got)
	}
	var series int
	ch := make(chan prometheus.Metric, 8)
	m.latency.Collect(ch)
	close(ch)
	for range ch {
		series++
	}
	if series != 2 {
		t.Errorf("latency series: %d, want 2 (allowed true and false)", series)
	}
	if n := testing.AllocsPerRun(100, func() { m.observe(&allow, time.Millisecond) }); n != 0 {
		t.Errorf("observe allocates %v times per decision, want 0", n)
	}
}

type trustsReadAt time.Time

func (t trustsReadAt) TrustsReadAt() time.Time { return time.Time(t) }

// TestMetricsTrustsRead: the time of the last good read of the IdP trusts
// is exported, so an alert can fire while the last ones serve through a
// store outage (docs/security-catalogue.md row 114).
func TestMetricsTrustsRead(t *testing.T) {
	m := newMetrics(new(atomic.Bool))
	at := time.Unix(1700000000, 0)
	m.watchTrusts(trustsReadAt(at))
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "usher_idp_trusts_read_timestamp_seconds" {
			if got := f.GetMetric()[0].GetGauge().GetValue(); got != 1700000000 {
				t.Errorf("gauge = %v, want 1700000000", got)
			}
			return
		}
	}
	t.Error("usher_idp_trusts_read_timestamp_seconds is not exported")
}
