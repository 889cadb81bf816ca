package loadgen

import (
	"context"
	"net"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/usher-dev/usher/internal/checkclient"
)

// serveNoop serves Noop on loopback and returns a connection to it.
func serveNoop(t *testing.T) []*grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, Noop{})
	done := make(chan struct{})
	go func() { _ = gs.Serve(lis); close(done) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); gs.Stop(); <-done })
	return []*grpc.ClientConn{conn}
}

func request() *authv3.CheckRequest {
	return (&checkclient.Request{Method: "GET", Host: "h", Path: "/"}).CheckRequest()
}

func TestRunSendsExactlyRequests(t *testing.T) {
	for _, rate := range []float64{0, 2000} {
		res, err := Run(t.Context(), Config{Conns: serveNoop(t), Request: request(), Duration: 30 * time.Second,
			Requests: 120, Concurrency: 4, Rate: rate})
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests != 120 || res.Errors != 0 || res.ByStatus["200"] != 120 || res.P50Micros <= 0 ||
			res.P99Micros < res.P50Micros || res.MaxMicros < res.P99Micros || res.Rate != rate {
			t.Errorf("rate %v: %+v", rate, res)
		}
	}
}

func TestRunCountsErrors(t *testing.T) {
	conns := serveNoop(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// A server that is not there: every Check fails, none is counted as
	// answered.
	_ = conns[0].Close()
	res, err := Run(ctx, Config{Conns: conns, Request: request(), Duration: 10 * time.Second, Requests: 5, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 5 || res.Errors != 5 || res.FirstError == "" || len(res.ByStatus) != 0 {
		t.Errorf("%+v", res)
	}
}

func TestCompareMergesRounds(t *testing.T) {
	base, target := serveNoop(t), serveNoop(t)
	c, err := Compare(t.Context(), Config{Request: request(), Duration: 50 * time.Millisecond, Concurrency: 2}, 2, base, target)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.RoundRatios) != 2 || c.Ratio <= 0 || c.HalfRate != c.Target.PerSecond/2 || c.P99Ratio <= 0 {
		t.Errorf("%+v", c)
	}
	for name, r := range map[string]Result{"base": c.Base, "target": c.Target, "base half": c.BaseHalf, "target half": c.TargetHalf} {
		if r.Requests == 0 || r.Errors != 0 || r.ByStatus["200"] != r.Requests || r.Seconds < 0.1 {
			t.Errorf("%s: %+v (want two runs' worth of answers)", name, r)
		}
	}
}

func TestQuantileWithinBucket(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		got, want := h.quantile(q), q*1000
		if got > want || got < want*0.93 {
			t.Errorf("quantile(%v) = %vµs, want within 7%% below %vµs", q, got, want)
		}
	}
}
