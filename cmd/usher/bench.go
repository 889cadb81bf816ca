package main

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

// Bounds of one bench run, so that no load test runs away.
const (
	maxBenchDuration    = 10 * time.Minute
	maxBenchConcurrency = 4096
)

type benchFlags struct {
	client      clientFlags
	duration    time.Duration
	requests    int64
	concurrency int
	connections int
	out         outputFlag
}

type benchResult struct {
	Requests    int64            `json:"requests"`
	Errors      int64            `json:"errors"`
	Seconds     float64          `json:"seconds"`
	PerSecond   float64          `json:"requests_per_second"`
	ByStatus    map[string]int64 `json:"by_status"`
	P50Micros   float64          `json:"p50_us"`
	P90Micros   float64          `json:"p90_us"`
	P99Micros   float64          `json:"p99_us"`
	MaxMicros   float64          `json:"max_us"`
	Concurrency int              `json:"concurrency"`
	Connections int              `json:"connections"`
	FirstError  string           `json:"first_error,omitempty"`
}

func newBenchCmd(e *env) *cobra.Command {
	var f benchFlags
	c := &cobra.Command{
		Use:   "bench [--duration 10s] [--concurrency 32] [request flags as for check]",
		Short: "send Checks to a running usher as fast as it answers, then print throughput and latency",
		Long: `bench sends the same Check (built from the request flags, as for usher check)
from --concurrency workers over --connections gRPC connections, until
--duration passes or --requests were sent, and prints throughput, latency
percentiles and the answers by HTTP status. It is bounded: at most 10m and
4096 workers.`,
		Args: args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			req, err := f.client.request()
			if err != nil {
				return err
			}
			res, err := runBench(c.Context(), &f, req)
			if err != nil {
				return err
			}
			if f.out.json() {
				return writeJSON(e.stdout, res)
			}
			fmt.Fprintf(e.stdout, "%d requests in %.2fs: %.0f/s over %d workers, %d connections\n",
				res.Requests, res.Seconds, res.PerSecond, res.Concurrency, res.Connections)
			fmt.Fprintf(e.stdout, "latency p50 %.0fµs  p90 %.0fµs  p99 %.0fµs  max %.0fµs\n",
				res.P50Micros, res.P90Micros, res.P99Micros, res.MaxMicros)
			for _, s := range sortedStatus(res.ByStatus) {
				fmt.Fprintf(e.stdout, "HTTP %s: %d\n", s, res.ByStatus[s])
			}
			if res.Errors > 0 {
				fmt.Fprintf(e.stdout, "errors: %d (first: %s)\n", res.Errors, res.FirstError)
			}
			if res.Requests == res.Errors {
				return errors.New("no Check succeeded")
			}
			return nil
		},
	}
	fs := c.Flags()
	f.client.register(fs, e)
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long to send (at most 10m)")
	fs.Int64Var(&f.requests, "requests", 0, "stop after this many requests (0: only --duration bounds the run)")
	fs.IntVar(&f.concurrency, "concurrency", 4*runtime.GOMAXPROCS(0), "concurrent workers")
	fs.IntVar(&f.connections, "connections", 1, "gRPC connections the workers share")
	f.out.register(fs)
	return c
}

func (f *benchFlags) check() error {
	switch {
	case f.duration <= 0 || f.duration > maxBenchDuration:
		return usagef("--duration must be between 1ms and %s", maxBenchDuration)
	case f.requests < 0:
		return usagef("--requests must not be negative")
	case f.concurrency < 1 || f.concurrency > maxBenchConcurrency:
		return usagef("--concurrency must be between 1 and %d", maxBenchConcurrency)
	case f.connections < 1 || f.connections > f.concurrency:
		return usagef("--connections must be between 1 and --concurrency")
	}
	return f.out.check()
}

func runBench(ctx context.Context, f *benchFlags, req *authv3.CheckRequest) (benchResult, error) {
	conns := make([]*grpc.ClientConn, f.connections)
	for i := range conns {
		c, err := f.client.dial()
		if err != nil {
			return benchResult{}, err
		}
		defer func() { _ = c.Close() }()
		conns[i] = c
	}
	// The run ends when stop closes: requests in flight then finish under
	// their own timeout, so the end of the run is never counted as errors.
	stop := make(chan struct{})
	timer := time.AfterFunc(f.duration, func() { close(stop) })
	defer timer.Stop()
	stopped := func() bool {
		select {
		case <-stop:
			return true
		case <-ctx.Done():
			return true
		default:
			return false
		}
	}
	var (
		sent      atomic.Int64
		mu        sync.Mutex
		total     latencyHistogram
		byStatus  = map[string]int64{}
		errs      int64
		firstErr  string
		wg        sync.WaitGroup
		perWorker = make([]latencyHistogram, f.concurrency)
	)
	start := time.Now()
	for w := range f.concurrency {
		client := authv3.NewAuthorizationClient(conns[w%len(conns)])
		wg.Go(func() {
			h := &perWorker[w]
			status := map[string]int64{}
			var nerr int64
			var first string
			for !stopped() && (f.requests == 0 || sent.Add(1) <= f.requests) {
				t := time.Now()
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				resp, err := client.Check(rctx, req)
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						break // interrupted: not an error of the server
					}
					nerr++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				h.add(time.Since(t))
				status[statusOf(resp)]++
			}
			mu.Lock()
			for k, v := range status {
				byStatus[k] += v
			}
			errs += nerr
			if firstErr == "" {
				firstErr = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	for i := range perWorker {
		total.merge(&perWorker[i])
	}
	n := total.count + errs
	return benchResult{
		Requests: n, Errors: errs, Seconds: elapsed, PerSecond: float64(total.count) / elapsed,
		ByStatus: byStatus, P50Micros: total.quantile(0.50), P90Micros: total.quantile(0.90),
		P99Micros: total.quantile(0.99), MaxMicros: float64(total.max) / 1e3,
		Concurrency: f.concurrency, Connections: f.connections, FirstError: firstErr,
	}, nil
}

func statusOf(resp *authv3.CheckResponse) string {
	if resp.GetOkResponse() != nil && resp.GetStatus().GetCode() == 0 {
		return "200"
	}
	return statusLabel(int(resp.GetDeniedResponse().GetStatus().GetCode()))
}

func sortedStatus(m map[string]int64) []string {
	s := make(map[string]string, len(m))
	for k := range m {
		s[k] = k
	}
	return sortedKeys(s)
}

// latencyHistogram records durations in log-linear buckets: 16 per power of
// two of nanoseconds, so a quantile is within ~6% of the truth, in fixed
// memory however long the run.
type latencyHistogram struct {
	buckets [64 * 16]int64
	count   int64
	max     int64
}

func (h *latencyHistogram) add(d time.Duration) {
	ns := max(int64(d), 1)
	h.buckets[bucketOf(ns)]++
	h.count++
	h.max = max(h.max, ns)
}

func bucketOf(ns int64) int {
	e := 63 - bits.LeadingZeros64(uint64(ns)) // floor(log2 ns)
	if e < 4 {
		return int(ns)
	}
	sub := (ns >> (e - 4)) & 15 // the 4 bits after the leading one
	return e*16 + int(sub)
}

// bucketValue is the lower bound of a bucket, in nanoseconds.
func bucketValue(b int) int64 {
	e, sub := b/16, int64(b%16)
	if e < 4 {
		return int64(b)
	}
	return (16 + sub) << (e - 4)
}

func (h *latencyHistogram) merge(o *latencyHistogram) {
	for i, v := range o.buckets {
		h.buckets[i] += v
	}
	h.count += o.count
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile in microseconds.
func (h *latencyHistogram) quantile(q float64) float64 {
	if h.count == 0 {
		return 0
	}
	rank := int64(q * float64(h.count))
	var seen int64
	for i, v := range h.buckets {
		seen += v
		if seen > rank {
			return float64(bucketValue(i)) / 1e3
		}
	}
	return float64(h.max) / 1e3
}
