package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
)

// gate decides with the authorizer once the server is ready, and denies
// with store_unavailable until then.
type gate struct {
	a atomic.Pointer[authz.Authorizer]
}

func (g *gate) Check(ctx context.Context, r *authz.Request) authz.Decision {
	if a := g.a.Load(); a != nil {
		return a.Check(ctx, r)
	}
	return authz.Failure(authz.ReasonStoreUnavailable, errors.New("store not reached yet"))
}

// grpcOptions are the gRPC server's options.
func (s *server) grpcOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		// Stop returns only once every handler has: what shutdown closes
		// after it (caches, store) is in use until then.
		grpc.WaitForHandlers(true),
	}
	opts = append(opts, envoy.ServerOptions()...)
	if s.deps.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.deps.TLS)))
	}
	return opts
}

// listen starts the gRPC server (Check and health) and the HTTP server
// (/healthz, /readyz, /metrics), not ready: Checks deny with
// store_unavailable until serve.
func (s *server) listen(ctx context.Context) error {
	var lc net.ListenConfig
	grpcLis, err := lc.Listen(ctx, "tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("grpc_addr: %w", err)
	}
	httpLis, err := lc.Listen(ctx, "tcp", s.cfg.HTTPAddr)
	if err != nil {
		_ = grpcLis.Close()
		return fmt.Errorf("http_addr: %w", err)
	}

	s.grpcAddr = grpcLis.Addr()
	s.health = health.NewServer()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	s.grpc = grpc.NewServer(s.grpcOptions()...)
	authv3.RegisterAuthorizationServer(s.grpc, &envoy.Server{
		Decider: s.decider, Timeout: s.cfg.CheckTimeout, Realm: s.cfg.Realm,
		Logger: s.log.With("component", "check"), Observe: s.metrics.observe,
	})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.http = &http.Server{
		Handler:           s.metrics.mux(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.serving.Go(func() {
		if err := s.grpc.Serve(grpcLis); err != nil {
			s.fail(fmt.Errorf("grpc server: %w", err))
		}
	})
	s.serving.Go(func() {
		if err := s.http.Serve(httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.fail(fmt.Errorf("http server: %w", err))
		}
	})
	s.log.InfoContext(ctx, "usher listening", "grpc_addr", grpcLis.Addr().String(), "http_addr", httpLis.Addr().String(), "tls", s.deps.TLS != nil)
	return nil
}

func (s *server) fail(err error) {
	select {
	case s.failed <- err:
	default:
	}
}

// serve makes the server ready: Checks are decided, gRPC health and
// /readyz say so.
func (s *server) serve(ctx context.Context) error {
	if s.authz != nil {
		s.gate.a.Store(s.authz)
	}
	s.ready.Store(true)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	where := ""
	if s.st != nil {
		where = s.st.Where
	}
	s.log.InfoContext(ctx, "usher ready", "store", where, "rules", s.cfg.Rules, "rule_count", s.deps.Rules.Len())
	return nil
}

// drain stops accepting Checks and waits up to shutdown_timeout for those
// in flight. Past it, it cancels them and waits until every handler has
// returned, so that nothing closed after it is still in use.
func (s *server) drain(ctx context.Context) {
	s.drained.Do(func() {
		s.health.Shutdown()
		s.ready.Store(false)
		stopped := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(stopped)
		}()
		t := time.NewTimer(s.cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-stopped:
		case <-t.C:
			s.log.WarnContext(ctx, "shutdown: in-flight Checks did not finish in time; cancelling them")
			s.grpc.Stop() // with WaitForHandlers: returns once every handler has
			<-stopped
		}
	})
}

// closeListeners drains gRPC (if serve never ran) and stops the HTTP
// server.
func (s *server) closeListeners(ctx context.Context) {
	s.drain(ctx)
	sctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	_ = s.http.Shutdown(sctx)
	s.serving.Wait()
}
