package envoy

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/otel/trace"

	"github.com/usher-dev/usher/authz"
)

// Decider decides one request; *authz.Authorizer is one.
type Decider interface {
	Check(ctx context.Context, r *authz.Request) authz.Decision
}

// DefaultTimeout is the per-Check deadline: below Envoy's default 200 ms
// ext_authz timeout, so usher answers (and denies) before Envoy gives up.
const DefaultTimeout = 150 * time.Millisecond

// Server is the envoy.service.auth.v3.Authorization gRPC service.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	Decider Decider
	// Timeout is the per-Check deadline; zero means DefaultTimeout.
	Timeout time.Duration
	// Realm goes into WWW-Authenticate challenges.
	Realm  string
	Logger *slog.Logger
	// Observe, if set, is told of every decision, e.g. for metrics.
	Observe func(d *authz.Decision, elapsed time.Duration)
	// Tracer, if set, makes a span of each Check that continues the
	// request's trace; nil (tracing off) costs nothing.
	Tracer trace.Tracer
}

// Check answers Envoy. It never returns an error: every outcome, including
// a panic and a passed deadline, is an explicit CheckResponse, and anything
// but a decided allow is a denial.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (resp *authv3.CheckResponse, err error) {
	start := time.Now()
	// One allocation for what the decider is handed by pointer.
	c := new(checkState)
	var span trace.Span
	defer func() {
		if p := recover(); p != nil {
			c.d = authz.Failure(authz.ReasonInternal, fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
			resp = ResponseFrom(&c.d, s.Realm)
		}
		c.ctx.release()
		if span != nil {
			endCheckSpan(span, &c.d)
		}
		s.record(ctx, req, &c.d, time.Since(start))
	}()
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var convErr error
	c.r, convErr = RequestFrom(req)
	dctx := ctx
	if s.Tracer != nil {
		dctx, span = startCheckSpan(ctx, s.Tracer, c.r.Headers)
	}
	c.ctx.init(dctx, timeout)
	if convErr != nil {
		c.d = authz.Deny(authz.ReasonRequestInvalid)
	} else {
		c.d = s.Decider.Check(&c.ctx, &c.r)
	}
	return ResponseFrom(&c.d, s.Realm), nil
}

// checkState is what one Check hands the decider.
type checkState struct {
	ctx deadlineCtx
	r   authz.Request
	d   authz.Decision
}

// record logs a denial (one line each, never a credential) and observes the
// decision.
func (s *Server) record(ctx context.Context, req *authv3.CheckRequest, d *authz.Decision, elapsed time.Duration) {
	if s.Observe != nil {
		s.Observe(d, elapsed)
	}
	if d.Allowed() || s.Logger == nil {
		return
	}
	level := slog.LevelInfo
	if d.Status >= 500 {
		level = slog.LevelError
	}
	if !s.Logger.Enabled(ctx, level) {
		return
	}
	h := req.GetAttributes().GetRequest().GetHttp()
	s.Logger.LogAttrs(ctx, level, "denied",
		slog.String("id", h.GetId()),
		slog.String("method", h.GetMethod()),
		slog.String("host", h.GetHost()),
		slog.String("path", pathOnly(h.GetPath())),
		slog.String("source", req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress()),
		slog.Any("decision", *d),
		slog.Duration("elapsed", elapsed),
	)
}

// pathOnly drops the query, which may carry secrets, and caps the length.
func pathOnly(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			p = p[:i]
			break
		}
	}
	if len(p) > 256 {
		p = p[:256] + "…"
	}
	return p
}
