// Package tracing sets up OpenTelemetry tracing for usher serve: off
// unless the standard OTEL_EXPORTER_OTLP_* variables name an endpoint,
// then exported over OTLP/HTTP.
package tracing

import (
	"context"
	"fmt"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of usher's spans.
const Name = "github.com/usher-dev/usher"

// Enabled reports whether the environment asks for traces: an OTLP
// endpoint is set and OTEL_TRACES_EXPORTER is not "none".
func Enabled(getenv func(string) string) bool {
	if getenv("OTEL_TRACES_EXPORTER") == "none" || getenv("OTEL_SDK_DISABLED") == "true" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup returns usher's tracer and a function that flushes and stops it,
// or a nil tracer when tracing is off. The exporter reads the standard
// variables itself (endpoint, headers, timeout, TLS); the service name
// is OTEL_SERVICE_NAME, "usher" by default.
func Setup(ctx context.Context, getenv func(string) string, version string) (trace.Tracer, func(context.Context) error, error) {
	if !Enabled(getenv) {
		return nil, func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	name := getenv("OTEL_SERVICE_NAME")
	if name == "" {
		name = "usher"
	}
	res := resource.NewSchemaless(attribute.String("service.name", name), attribute.String("service.version", version))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp.Tracer(Name), tp.Shutdown, nil
}

// Transport makes a child span of each request base sends (the fetches
// of IdP discovery documents and key sets), and passes the trace on in
// traceparent. With a nil tracer it is base.
func Transport(base http.RoundTripper, t trace.Tracer) http.RoundTripper {
	if t == nil {
		return base
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, t: t}
}

type transport struct {
	base http.RoundTripper
	t    trace.Tracer
}

func (x *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, span := x.t.Start(req.Context(), "usher.idp.fetch", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("server.address", req.URL.Host),
			attribute.String("url.path", req.URL.Path)))
	defer span.End()
	req = req.Clone(ctx)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := x.base.RoundTrip(req)
	if err != nil {
		span.SetStatus(codes.Error, "request failed")
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, resp.Status)
	}
	return resp, nil
}
