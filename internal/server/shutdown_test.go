package server

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/config"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// stuckDecider is a Check that outlives shutdown_timeout: it ignores the
// drain, and once cancelled it still uses the caches for a while, as a
// handler finishing a store read would.
type stuckDecider struct {
	entered      chan struct{}
	running      atomic.Bool
	cachesClosed chan struct{}
}

func (d *stuckDecider) Check(ctx context.Context, _ *authz.Request) authz.Decision {
	d.running.Store(true)
	defer d.running.Store(false)
	close(d.entered)
	<-ctx.Done() // only the forced stop cancels it
	select {
	case <-d.cachesClosed: // closed under this handler: the test fails
	case <-time.After(100 * time.Millisecond):
	}
	return authz.Failure(authz.ReasonTimeout, ctx.Err())
}

// TestDrainTimeoutWaitsForHandlers: when in-flight Checks outlast
// shutdown_timeout, they are cancelled, and the caches (and the store,
// after them) are closed only once every handler has returned.
func TestDrainTimeoutWaitsForHandlers(t *testing.T) {
	cfg := config.Default()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.ShutdownTimeout = 50 * time.Millisecond
	cfg.CheckTimeout = time.Hour // only the forced stop ends the Check
	s := newServer(cfg, Deps{Rules: authz.DenyAllRules(), Logger: testLogger(t)})
	d := &stuckDecider{entered: make(chan struct{}), cachesClosed: make(chan struct{})}
	s.decider = d
	var closedUnderHandler atomic.Bool
	comps := []component{
		{name: "listeners", start: s.listen, stop: s.closeListeners},
		{name: "caches", start: func(context.Context) error { return nil }, stop: func(context.Context) {
			closedUnderHandler.Store(d.running.Load())
			close(d.cachesClosed)
		}},
		{name: "ready", start: s.serve, stop: s.drain},
	}
	stopAll, err := startAll(t.Context(), comps, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(s.grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	checked := make(chan error, 1)
	go func() {
		_, err := authv3.NewAuthorizationClient(conn).Check(t.Context(), &authv3.CheckRequest{
			Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
				Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api.example.test", Path: "/x"},
			}},
		})
		checked <- err
	}()
	select {
	case <-d.entered:
	case err := <-checked:
		t.Fatalf("the Check did not reach the decider: %v", err)
	}
	stopAll()
	if closedUnderHandler.Load() {
		t.Error("the caches were closed while a Check handler was still running")
	}
	if d.running.Load() {
		t.Error("a Check handler is still running after shutdown")
	}
	if err := <-checked; err == nil {
		t.Error("the stuck Check was answered; want it cut off")
	}
}

// hangingPruner is the real store whose first prune hangs until its
// context ends, as a call on a dead connection would.
type hangingPruner struct {
	*store.Store
	calls    atomic.Int32
	firstErr chan error
	second   chan struct{}
}

func (h *hangingPruner) PruneChanges(ctx context.Context, before time.Time) (int64, error) {
	switch h.calls.Add(1) {
	case 1:
		if _, ok := ctx.Deadline(); !ok {
			h.firstErr <- errors.New("the prune has no deadline")
		}
		<-ctx.Done()
		h.firstErr <- ctx.Err()
		return 0, ctx.Err()
	case 2:
		close(h.second)
	}
	return h.Store.PruneChanges(ctx, before)
}

// TestHungPruneTimesOut: a prune that hangs runs out of its deadline and
// the loop prunes again on its next tick.
func TestHungPruneTimesOut(t *testing.T) {
	cfg := config.Default()
	cfg.ChangesRetention = 60 * time.Millisecond // a tick every 10ms
	s := newServer(cfg, Deps{Logger: testLogger(t)})
	s.callTimeout = 20 * time.Millisecond
	h := &hangingPruner{Store: storetest.Open(t, nil), firstErr: make(chan error, 2), second: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.prune(ctx, h)
	}()
	select {
	case <-h.second:
	case <-time.After(30 * time.Second):
		t.Fatal("the prune loop is stuck behind a hung call")
	}
	cancel()
	<-done
	if err := <-h.firstErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the hung prune ended with %v, want its deadline", err)
	}
}
