package envoy

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/usher-dev/usher/authz"
)

// SpanCheck is the name of the span of one decision.
const SpanCheck = "usher.Check"

// startCheckSpan starts the span of one decision, continuing the trace of
// the request being authorized: its traceparent and tracestate headers
// (Envoy forwards them in the CheckRequest; HTTP check mode receives them
// as its own). It is called only when tracing is on.
func startCheckSpan(ctx context.Context, t trace.Tracer, headers map[string]string) (context.Context, trace.Span) {
	ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(headers))
	return t.Start(ctx, SpanCheck, trace.WithSpanKind(trace.SpanKindServer))
}

// endCheckSpan records what was decided, never who with which credential
// beyond the auth method and tenant, and ends the span.
func endCheckSpan(span trace.Span, d *authz.Decision) {
	span.SetAttributes(
		attribute.Int("http.response.status_code", d.Status),
		attribute.String("usher.reason", string(d.Reason)),
		attribute.String("usher.rule", d.Rule),
		attribute.String("usher.auth", string(d.Identity.Method)),
		attribute.String("usher.tenant", d.Identity.Tenant),
	)
	if d.Permission != "" {
		span.SetAttributes(attribute.String("usher.permission", d.Permission), attribute.String("usher.space", d.Space))
	}
	if d.Status >= 500 {
		span.SetStatus(codes.Error, string(d.Reason))
	}
	span.End()
}
