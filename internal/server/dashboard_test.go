package server

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store/storetest"
)

// dashboardFile is the Grafana dashboard the Helm chart ships.
const dashboardFile = "../../charts/usher/dashboards/usher.json"

// exportedMetrics returns the names a serving process's /metrics has: the
// registry of newMetrics with the caches and IdP trusts watched, as
// server.go wires them, with one decision counted so that the labelled
// families have a series. A histogram counts as its _bucket, _sum and
// _count series.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := newMetrics(new(atomic.Bool))
	st := storetest.Open(t, nil)
	a, err := authz.New(authz.Config{Keys: st, Seats: st, Cache: authz.DefaultCacheConfig()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	m.watchCaches(a)
	m.watchEntries(a)
	m.watchTrusts(trustsReadAt(time.Now()))
	allow := authz.Decision{Status: 200, Reason: authz.ReasonAllowed, Identity: authz.Identity{Method: authz.AuthAPIKey}}
	m.observe(&allow, time.Millisecond)
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	return names
}

// dashboard is what the test reads of a Grafana dashboard: the queries of
// its panels and of its template variables.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// metricName finds the metric names in a PromQL expression: usher's own
// and the Go and process collectors'.
var metricName = regexp.MustCompile(`\b(?:usher|go|process)_[a-z0-9_]+\b`)

// queriedMetrics returns, for each metric name the dashboard queries, where.
func queriedMetrics(t *testing.T, raw []byte) map[string][]string {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	used := map[string][]string{}
	add := func(where, expr string) {
		for _, n := range metricName.FindAllString(expr, -1) {
			used[n] = append(used[n], where)
		}
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has a target without a query", p.Title)
			}
			add("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			s, _ := q["query"].(string)
			add("variable "+v.Name, s)
		}
	}
	return used
}

// TestDashboardQueriesExportedMetrics: every metric the chart's Grafana
// dashboard queries is one usher exports, so no panel stays empty because
// a metric was renamed or never existed.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	exported := exportedMetrics(t)
	used := queriedMetrics(t, raw)
	if len(used) == 0 {
		t.Fatal("the dashboard queries no metric")
	}
	for name, where := range used {
		if !exported[name] {
			t.Errorf("%s queries %s, which usher does not export", strings.Join(slices.Compact(where), ", "), name)
		}
	}
	// The check itself sees a metric that does not exist.
	bogus := queriedMetrics(t, []byte(`{"panels":[{"title":"x","targets":[{"expr":"rate(usher_checks_total[5m])"}]}]}`))
	if _, ok := bogus["usher_checks_total"]; !ok || exported["usher_checks_total"] {
		t.Error("a made-up metric name is not told apart from the exported ones")
	}
}
