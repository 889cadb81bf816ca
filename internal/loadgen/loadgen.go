// Package loadgen drives an ext_authz server with the same Check from many
// workers, closed-loop (as fast as it answers) or at a fixed rate, and
// measures throughput and latency; Compare alternates two servers under the
// same load. It is the engine of `usher bench` and `make bench-e2e`.
package loadgen

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/usher-dev/usher/internal/checkclient"
)

// Config is one load run.
type Config struct {
	// Conns are the gRPC connections the workers share, round-robin.
	Conns   []*grpc.ClientConn
	Request *authv3.CheckRequest
	// Duration bounds the run; Requests, if positive, too.
	Duration    time.Duration
	Requests    int64
	Concurrency int
	// Rate, if positive, is the total requests per second, spread evenly
	// over the workers. Latency is then measured from when a request was
	// due, not when it was sent, so a server that falls behind is charged
	// for the queue it causes (no coordinated omission).
	Rate float64
}

// Result is what one run measured.
type Result struct {
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
	Rate        float64          `json:"rate,omitempty"`
	FirstError  string           `json:"first_error,omitempty"`

	hist *histogram
}

// requestTimeout bounds one Check, so the end of a run never waits long.
const requestTimeout = 10 * time.Second

// Run sends cfg.Request until cfg.Duration passes, cfg.Requests were sent
// or ctx ends. Requests in flight at the end finish under their own
// timeout, so the end of a run is never counted as errors.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if len(cfg.Conns) == 0 || cfg.Concurrency < 1 || cfg.Duration <= 0 {
		return Result{}, errors.New("loadgen: need a connection, a worker and a duration")
	}
	// start is read before the timer is armed, so a run never measures
	// less than its Duration.
	start := time.Now()
	stop := make(chan struct{})
	timer := time.AfterFunc(cfg.Duration, func() { close(stop) })
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
	var interval time.Duration // per worker
	if cfg.Rate > 0 {
		interval = time.Duration(float64(cfg.Concurrency) / cfg.Rate * float64(time.Second))
	}
	var (
		sent      atomic.Int64
		mu        sync.Mutex
		total     = new(histogram)
		byStatus  = map[string]int64{}
		errs      int64
		firstErr  string
		wg        sync.WaitGroup
		perWorker = make([]histogram, cfg.Concurrency)
	)
	for w := range cfg.Concurrency {
		client := authv3.NewAuthorizationClient(cfg.Conns[w%len(cfg.Conns)])
		wg.Go(func() {
			h := &perWorker[w]
			status := map[string]int64{}
			var nerr int64
			var first string
			// Workers start staggered over one interval, so a paced run
			// sends evenly rather than in bursts.
			due := start.Add(interval * time.Duration(w) / time.Duration(cfg.Concurrency))
			for !stopped() && (cfg.Requests == 0 || sent.Add(1) <= cfg.Requests) {
				t := time.Now()
				if interval > 0 {
					if wait := due.Sub(t); wait > 0 {
						time.Sleep(wait)
						if stopped() {
							break
						}
					}
					t = due
					due = due.Add(interval)
				}
				rctx, cancel := context.WithTimeout(ctx, requestTimeout)
				resp, err := client.Check(rctx, cfg.Request)
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
				status[checkclient.Status(resp)]++
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
	r := Result{
		Errors: errs, Seconds: elapsed, ByStatus: byStatus,
		Concurrency: cfg.Concurrency, Connections: len(cfg.Conns), Rate: cfg.Rate, FirstError: firstErr,
		hist: total,
	}
	r.summarise()
	return r, nil
}

// summarise fills the figures from the histogram, errors and seconds.
func (r *Result) summarise() {
	r.Requests = r.hist.count + r.Errors
	r.PerSecond = float64(r.hist.count) / r.Seconds
	r.P50Micros = r.hist.quantile(0.50)
	r.P90Micros = r.hist.quantile(0.90)
	r.P99Micros = r.hist.quantile(0.99)
	r.MaxMicros = float64(r.hist.max) / 1e3
}

// add merges another run of the same shape into r: counts and latencies
// add up, and the throughput is over the summed seconds.
func (r *Result) add(o Result) {
	if r.hist == nil {
		*r = o
		r.hist = new(histogram)
		r.hist.merge(o.hist)
		r.ByStatus = map[string]int64{}
		for k, v := range o.ByStatus {
			r.ByStatus[k] = v
		}
		return
	}
	r.hist.merge(o.hist)
	r.Errors += o.Errors
	r.Seconds += o.Seconds
	for k, v := range o.ByStatus {
		r.ByStatus[k] += v
	}
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
	r.summarise()
}
