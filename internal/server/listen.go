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
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
	"github.com/usher-dev/usher/internal/config"
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

// Limits of the gRPC server (docs/security-catalogue.md rows 106 and 127).
const (
	// maxConcurrentStreams bounds the Checks one connection has in flight:
	// the server announces it in its HTTP/2 SETTINGS and refuses a stream
	// past it (REFUSED_STREAM), so that one client (or a rapid-reset
	// attacker) cannot make it run an unbounded number of handlers. Envoy
	// keeps to it and opens another connection, or queues. At ~100µs a
	// Check, 1024 in flight on one connection is far more than an Envoy
	// worker sends.
	maxConcurrentStreams = 1024
	// maxRecvMsgSize bounds one CheckRequest: Envoy's largest holds the
	// request's headers (max_request_headers_kb, 60 KiB by default) and,
	// with with_request_body, a body of up to max_request_bytes (the
	// shipped config forwards none). 4 MiB holds a 1 MiB body and the
	// headers with room to spare; a larger message is refused with
	// ResourceExhausted before it is decoded, and Envoy (failure_mode_allow
	// false) denies. It is grpc-go's default, set here so that it stays.
	maxRecvMsgSize = 4 << 20
	// maxHeaderListSize bounds the gRPC metadata (HTTP/2 headers) of one
	// Check: Envoy sends a handful (:path, content-type, te, grpc-timeout,
	// x-envoy-*); the request's own headers travel in the message. grpc-go's
	// default is 16 MiB.
	maxHeaderListSize = 64 << 10
)

// grpcOptions are the gRPC server's options.
func (s *server) grpcOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxConcurrentStreams(maxConcurrentStreams),
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.MaxHeaderListSize(maxHeaderListSize),
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

// httpLimits bound the HTTP listener's clients (docs/security-catalogue.md
// row 129): a client that sends its headers slowly is cut off after
// readHeader, one whose whole request is slow after read; a response
// that cannot be written in write is abandoned; a kept-alive connection
// idle for idle is closed; headers over maxHeaderBytes get 431. Each
// listener accepts at most its number of connections at once (conns for
// HTTP, grpcConns for gRPC); a further one waits in the kernel's backlog
// until another closes, so that a flood of connections cannot grow memory
// without bound.
type httpLimits struct {
	readHeader, read, write, idle time.Duration
	maxHeaderBytes                int
	conns, grpcConns              int
}

// defaultHTTPLimits are the HTTP listener's limits; tests shorten them.
var defaultHTTPLimits = httpLimits{
	readHeader:     5 * time.Second,
	read:           10 * time.Second,
	write:          30 * time.Second,
	idle:           2 * time.Minute,
	maxHeaderBytes: 64 << 10,
	// Health probes and a metrics scraper need a handful.
	conns: 256,
	// Envoy keeps a few connections per worker thread; 4096 serves a fleet
	// of hundreds of Envoy workers, at ~100 KiB of buffers each.
	grpcConns: 4096,
}

// listen starts the gRPC server (Check and health), the HTTP server
// (/healthz, /readyz, /metrics) and, when http_check_addr is set, HTTP
// check mode, not ready: Checks deny with store_unavailable until serve.
func (s *server) listen(ctx context.Context) error {
	var lc net.ListenConfig
	// A server without the authz role (a login-only Deployment) opens
	// neither the gRPC listener nor HTTP check mode.
	authzRole := s.cfg.HasRole(config.RoleAuthz)
	var grpcLis, checkLis net.Listener
	var err error
	if authzRole {
		if grpcLis, err = lc.Listen(ctx, "tcp", s.cfg.GRPCAddr); err != nil {
			return fmt.Errorf("grpc_addr: %w", err)
		}
	}
	closeGRPC := func() {
		if grpcLis != nil {
			_ = grpcLis.Close()
		}
	}
	httpLis, err := lc.Listen(ctx, "tcp", s.cfg.HTTPAddr)
	if err != nil {
		closeGRPC()
		return fmt.Errorf("http_addr: %w", err)
	}
	if authzRole && s.cfg.HTTPCheckAddr != "" {
		if checkLis, err = lc.Listen(ctx, "tcp", s.cfg.HTTPCheckAddr); err != nil {
			closeGRPC()
			_ = httpLis.Close()
			return fmt.Errorf("http_check_addr: %w", err)
		}
	}

	s.httpAddr = httpLis.Addr()
	httpLis = netutil.LimitListener(httpLis, s.httpLimits.conns)
	s.health = health.NewServer()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	s.grpc = grpc.NewServer(s.grpcOptions()...)
	authv3.RegisterAuthorizationServer(s.grpc, &envoy.Server{
		Decider: s.decider, Timeout: s.cfg.CheckTimeout, Realm: s.cfg.Realm,
		Logger: s.log.With("component", "check"), Observe: s.metrics.observe, Tracer: s.deps.Tracer,
	})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.http = s.httpServer(s.metrics.mux())
	if grpcLis != nil {
		s.grpcAddr = grpcLis.Addr()
		grpcLis = netutil.LimitListener(grpcLis, s.httpLimits.grpcConns)
		s.serving.Go(func() {
			if err := s.grpc.Serve(grpcLis); err != nil {
				s.fail(fmt.Errorf("grpc server: %w", err))
			}
		})
	}
	s.serving.Go(func() {
		if err := s.http.Serve(httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.fail(fmt.Errorf("http server: %w", err))
		}
	})
	if checkLis != nil {
		s.checkAddr = checkLis.Addr()
		s.httpCheck = s.httpServer(s.httpCheckHandler())
		s.serving.Go(func() {
			if err := s.httpCheck.Serve(checkLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.fail(fmt.Errorf("http check server: %w", err))
			}
		})
		s.log.InfoContext(ctx, "usher HTTP check mode listening", "http_check_addr", checkLis.Addr().String(),
			"trusted_proxies", s.cfg.TrustedProxies)
		if s.cfg.TrustedProxies == config.DefaultTrustedProxies && !isLoopback(checkLis.Addr()) {
			// docs/security-catalogue.md row 96.
			s.log.WarnContext(ctx, "HTTP check mode listens beyond loopback but trusts forwarded headers from loopback only: "+
				"set trusted_proxies to your proxies' ranges, or /auth answers 400 forwarded_untrusted to them")
		}
	}
	grpcAt := "off (no authz role)"
	if s.grpcAddr != nil {
		grpcAt = s.grpcAddr.String()
	}
	s.log.InfoContext(ctx, "usher listening", "grpc_addr", grpcAt, "http_addr", httpLis.Addr().String(), "tls", s.deps.TLS != nil, "roles", s.cfg.Roles)
	return nil
}

// httpServer is an HTTP server with the listener limits.
func (s *server) httpServer(h http.Handler) *http.Server {
	l := s.httpLimits
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.readHeader,
		ReadTimeout:       l.read,
		WriteTimeout:      l.write,
		IdleTimeout:       l.idle,
		MaxHeaderBytes:    l.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// httpCheckHandler is HTTP check mode: the decision of gRPC Check.
func (s *server) httpCheckHandler() http.Handler {
	trusted, _ := s.cfg.TrustedProxyPrefixes() // Validate refused bad ones
	return &envoy.HTTPServer{
		Decider: s.decider, Timeout: s.cfg.CheckTimeout, Realm: s.cfg.Realm, TrustedProxies: trusted,
		Logger: s.log.With("component", "check-http"), Observe: s.metrics.observe, Tracer: s.deps.Tracer,
	}
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
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
		// HTTP check mode's handlers use what shutdown closes next, too:
		// Shutdown waits for them, Close (past the timeout) cuts them off.
		sctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
		defer cancel()
		checkStopped := make(chan struct{})
		go func() {
			if s.httpCheck != nil && s.httpCheck.Shutdown(sctx) != nil {
				_ = s.httpCheck.Close()
			}
			close(checkStopped)
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
		<-checkStopped
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
