package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"runtime"
	"slices"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/usher-dev/usher/envoy"
	"github.com/usher-dev/usher/internal/loadgen"
)

// Bounds of one bench run, so that no load test runs away.
const (
	maxBenchDuration    = 10 * time.Minute
	maxBenchConcurrency = 4096
	maxBenchRounds      = 20
)

type benchFlags struct {
	client      clientFlags
	duration    time.Duration
	requests    int64
	concurrency int
	connections int
	rate        float64
	vs          string
	rounds      int
	noopServer  string
	out         outputFlag
}

type benchResult = loadgen.Result

func newBenchCmd(e *env) *cobra.Command {
	var f benchFlags
	c := &cobra.Command{
		Use:   "bench [--duration 10s] [--concurrency 32] [request flags as for check]",
		Short: "send Checks to a running usher as fast as it answers, then print throughput and latency",
		Long: `bench sends the same Check (built from the request flags, as for usher check)
from --concurrency workers over --connections gRPC connections, until
--duration passes or --requests were sent, and prints throughput, latency
percentiles and the answers by HTTP status. It is bounded: at most 10m and
4096 workers.

With --rate, the workers send that many Checks per second in all instead of
as fast as answered, and latency counts from when each Check was due.

With --vs ADDR, bench compares usher at --addr with another ext_authz
server at ADDR (such as a no-op one): --rounds alternating runs of
--duration each as fast as answered, then as many at half of usher's
throughput, and prints the throughput ratio and the p50/p99 of each.`,
		Args: args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if f.noopServer != "" {
				return serveNoop(c.Context(), e.stdout, f.noopServer)
			}
			req, err := f.client.request()
			if err != nil {
				return err
			}
			load := loadgen.Config{Request: req, Duration: f.duration, Requests: f.requests, Concurrency: f.concurrency, Rate: f.rate}
			if load.Conns, err = f.dial(f.client.addr); err != nil {
				return err
			}
			defer closeAll(load.Conns)
			if f.vs != "" {
				return f.compare(c.Context(), e, load)
			}
			res, err := loadgen.Run(c.Context(), load)
			if err != nil {
				return err
			}
			if f.out.json() {
				return writeJSON(e.stdout, res)
			}
			printBench(e.stdout, res)
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
	fs.Float64Var(&f.rate, "rate", 0, "Checks per second in all (0: as fast as answered)")
	fs.StringVar(&f.vs, "vs", "", "compare with the ext_authz server at this address (see above)")
	fs.IntVar(&f.rounds, "rounds", 3, "with --vs: alternating runs per server and phase")
	fs.StringVar(&f.noopServer, "noop-server", "", "serve a no-op ext_authz server (allows everything) on this address until interrupted")
	_ = fs.MarkHidden("noop-server")
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
	case f.rate < 0:
		return usagef("--rate must not be negative")
	case f.vs != "" && (f.rounds < 1 || f.rounds > maxBenchRounds):
		return usagef("--rounds must be between 1 and %d", maxBenchRounds)
	case f.vs != "" && time.Duration(4*f.rounds)*f.duration > maxBenchDuration:
		return usagef("--vs runs 4 × --rounds × --duration, which must be at most %s", maxBenchDuration)
	case f.vs != "" && (f.requests != 0 || f.rate != 0):
		return usagef("--vs takes neither --requests nor --rate")
	}
	return f.out.check()
}

// dial opens --connections connections to addr.
func (f *benchFlags) dial(addr string) ([]*grpc.ClientConn, error) {
	cf := f.client
	cf.addr = addr
	conns := make([]*grpc.ClientConn, 0, f.connections)
	for range f.connections {
		c, err := cf.dial()
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

func printBench(w io.Writer, res benchResult) {
	fmt.Fprintf(w, "%d requests in %.2fs: %.0f/s over %d workers, %d connections\n",
		res.Requests, res.Seconds, res.PerSecond, res.Concurrency, res.Connections)
	fmt.Fprintf(w, "latency p50 %.0fµs  p90 %.0fµs  p99 %.0fµs  max %.0fµs\n",
		res.P50Micros, res.P90Micros, res.P99Micros, res.MaxMicros)
	for _, s := range slices.Sorted(maps.Keys(res.ByStatus)) {
		fmt.Fprintf(w, "HTTP %s: %d\n", s, res.ByStatus[s])
	}
	if res.Errors > 0 {
		fmt.Fprintf(w, "errors: %d (first: %s)\n", res.Errors, res.FirstError)
	}
}

// compare runs loadgen.Compare with --vs as the base and --addr as the
// target.
func (f *benchFlags) compare(ctx context.Context, e *env, load loadgen.Config) error {
	base, err := f.dial(f.vs)
	if err != nil {
		return err
	}
	defer closeAll(base)
	cmp, err := loadgen.Compare(ctx, load, f.rounds, base, load.Conns)
	if err != nil {
		return err
	}
	if f.out.json() {
		return writeJSON(e.stdout, cmp)
	}
	w := e.stdout
	fmt.Fprintf(w, "%d rounds of %s per server, %d workers, %d connections; usher at %s, baseline at %s\n",
		cmp.Rounds, f.duration, f.concurrency, f.connections, f.client.addr, f.vs)
	line := func(name string, r benchResult) {
		fmt.Fprintf(w, "  %-8s %8.0f/s  p50 %6.0fµs  p99 %6.0fµs  (%d requests, %d errors, HTTP %v)\n",
			name, r.PerSecond, r.P50Micros, r.P99Micros, r.Requests, r.Errors, r.ByStatus)
	}
	fmt.Fprintln(w, "as fast as answered:")
	line("baseline", cmp.Base)
	line("usher", cmp.Target)
	fmt.Fprintf(w, "  throughput ratio usher/baseline: %.3f (rounds: %s)\n", cmp.Ratio, fmtRatios(cmp.RoundRatios))
	fmt.Fprintf(w, "at half of usher's throughput (%.0f/s offered to each):\n", cmp.HalfRate)
	line("baseline", cmp.BaseHalf)
	line("usher", cmp.TargetHalf)
	fmt.Fprintf(w, "  p99 ratio usher/baseline: %.2f\n", cmp.P99Ratio)
	if cmp.Target.ByStatus["200"] == 0 {
		return errors.New("usher allowed no Check: is the request one it allows?")
	}
	return nil
}

func fmtRatios(rs []float64) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.3f", r)
	}
	return s
}

// serveNoop serves loadgen.Noop on addr until ctx ends, printing the
// address it listens on.
func serveNoop(ctx context.Context, w io.Writer, addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--noop-server: %w", err)
	}
	// The same gRPC options as usher serve: the floor is what gRPC costs.
	gs := grpc.NewServer(envoy.ServerOptions()...)
	authv3.RegisterAuthorizationServer(gs, loadgen.Noop{})
	fmt.Fprintf(w, "noop ext_authz server on %s\n", lis.Addr())
	stop := context.AfterFunc(ctx, gs.Stop)
	defer stop()
	return gs.Serve(lis)
}
