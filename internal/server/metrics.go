package server

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/usher-dev/usher/authz"
)

// metrics are the Prometheus metrics of a serving process, on a registry of
// their own.
type metrics struct {
	reg       *prometheus.Registry
	ready     *atomic.Bool
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	// Resolved children, so that a Check hashes no label values: the two
	// latency series, and the decision series seen so far (an immutable
	// map replaced on the rare miss).
	allowedLatency, deniedLatency prometheus.Observer
	counters                      atomic.Pointer[map[decisionLabels]prometheus.Counter]
	countersMu                    sync.Mutex
	// changeLag is how long after its write each change was applied here.
	changeLag prometheus.Histogram
}

// decisionLabels are the labels of one usher_check_decisions_total series.
type decisionLabels struct {
	status int
	reason authz.Reason
	auth   authz.AuthMethod
}

func newMetrics(ready *atomic.Bool) *metrics {
	m := &metrics{
		reg:   prometheus.NewRegistry(),
		ready: ready,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_check_decisions_total",
			Help: "Check decisions by HTTP status, reason code and credential kind.",
		}, []string{"status", "reason", "auth"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "usher_check_duration_seconds",
			Help:    "Time to decide one Check, from request to response.",
			Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 150e-3, 250e-3},
		}, []string{"allowed"}),
	}
	m.changeLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "usher_changes_lag_seconds",
		Help: "From a change's write (a revocation, a seat update) to its application to this server's caches.",
		// changes_interval is at most 1s; revocations must reach every
		// server within 2s.
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30},
	})
	m.allowedLatency = m.latency.WithLabelValues("true")
	m.deniedLatency = m.latency.WithLabelValues("false")
	m.counters.Store(&map[decisionLabels]prometheus.Counter{})
	m.reg.MustRegister(m.decisions, m.latency, m.changeLag,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "usher_ready", Help: "1 once the store has answered and Checks are decided."},
			func() float64 { return b2f(ready.Load()) }))
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observe counts one decision.
func (m *metrics) observe(d *authz.Decision, elapsed time.Duration) {
	m.counter(decisionLabels{d.Status, d.Reason, d.Identity.Method}).Inc()
	if d.Allowed() {
		m.allowedLatency.Observe(elapsed.Seconds())
	} else {
		m.deniedLatency.Observe(elapsed.Seconds())
	}
}

// counter returns the decision series of l, resolving it once.
func (m *metrics) counter(l decisionLabels) prometheus.Counter {
	if c, ok := (*m.counters.Load())[l]; ok {
		return c
	}
	m.countersMu.Lock()
	defer m.countersMu.Unlock()
	old := *m.counters.Load()
	if c, ok := old[l]; ok {
		return c
	}
	auth := string(l.auth)
	if auth == "" {
		auth = "none"
	}
	c := m.decisions.WithLabelValues(statusLabel(l.status), string(l.reason), auth)
	next := make(map[decisionLabels]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[l] = c
	m.counters.Store(&next)
	return c
}

// statusLabel is an HTTP status as the status label of
// usher_check_decisions_total writes it, without allocating for the
// statuses usher answers.
func statusLabel(s int) string {
	switch s {
	case 200:
		return "200"
	case 400:
		return "400"
	case 401:
		return "401"
	case 403:
		return "403"
	case 500:
		return "500"
	case 503:
		return "503"
	}
	return strconv.Itoa(s)
}

// watchCaches exports the authorizer's cache counters.
func (m *metrics) watchCaches(a *authz.Authorizer) {
	for name, st := range map[string]*authz.CacheStats{"apikey": a.KeyCacheStats(), "seat": a.SeatCacheStats()} {
		for metric, v := range map[string]*atomic.Uint64{
			"hits": &st.Hits, "misses": &st.Misses, "stale": &st.Stale, "loads": &st.Loads, "load_errors": &st.LoadErrors,
		} {
			m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name:        "usher_cache_" + metric + "_total",
				Help:        "Cache " + metric + " (stale: served while the store failed; loads: store reads).",
				ConstLabels: prometheus.Labels{"cache": name},
			}, func() float64 { return float64(v.Load()) }))
		}
	}
}

// observeChangeLag records one change's lag.
func (m *metrics) observeChangeLag(d time.Duration) { m.changeLag.Observe(d.Seconds()) }

// watchEntries exports how many entries each cache holds.
func (m *metrics) watchEntries(a *authz.Authorizer) {
	for name, st := range map[string]*authz.CacheStats{"apikey": a.KeyCacheStats(), "seat": a.SeatCacheStats(),
		"token": a.TokenCacheStats(), "session": a.SessionCacheStats()} {
		if st == nil {
			continue
		}
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "usher_cache_entries",
			Help:        "Entries a cache holds (fresh, stale and remembered absences), bounded by cache.max_cost.",
			ConstLabels: prometheus.Labels{"cache": name},
		}, func() float64 { return float64(st.Entries.Load()) }))
	}
}

// watchTrusts exports when the IdP trusts were last read: while reading
// them fails, the last ones serve for cache.stale_max, and an alert on this
// gauge's age tells before they stop (docs/security-catalogue.md row 114).
func (m *metrics) watchTrusts(v interface{ TrustsReadAt() time.Time }) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "usher_idp_trusts_read_timestamp_seconds",
		Help: "When the trusted IdP issuers were last read from the store (Unix time; 0 before the first read).",
	}, func() float64 {
		t := v.TrustsReadAt()
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}))
}

// watchClock exports how far this host's clock is from the trusted IdPs'
// (docs/security-catalogue.md row 25): tokens carry their issuer's clock,
// and an offset approaching jwt.leeway (at most 60s) refuses fresh tokens
// or accepts expired ones late. Alert well below the leeway.
func (m *metrics) watchClock(v interface{ ClockOffset() (time.Duration, bool) }) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "usher_idp_clock_offset_seconds",
		Help: "This host's clock minus a trusted IdP's (its key set answer's Date header), the largest in either direction; 0 before any key set was fetched.",
	}, func() float64 {
		d, _ := v.ClockOffset()
		return d.Seconds()
	}))
}

// mux serves /healthz, /readyz and /metrics.
func (m *metrics) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !m.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: the store has not answered yet\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return mux
}
