package tracing

import (
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestEnabled(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}, false},
	}
	for _, tt := range tests {
		if got := Enabled(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("Enabled(%v) = %t", tt.env, got)
		}
	}
	tr, stop, err := Setup(t.Context(), func(string) string { return "" }, "test")
	if err != nil || tr != nil || stop(t.Context()) != nil {
		t.Errorf("Setup without an endpoint: tracer %v, err %v", tr, err)
	}
}

// TestSetupExportsOverOTLP: with an endpoint set, spans reach it over
// OTLP/HTTP when the provider is flushed.
func TestSetupExportsOverOTLP(t *testing.T) {
	got := make(chan string, 10)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Path
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL) // the exporter reads the environment itself
	tr, stop, err := Setup(t.Context(), func(k string) string { return env[k] }, "test")
	if err != nil || tr == nil {
		t.Fatalf("Setup: %v %v", tr, err)
	}
	_, span := tr.Start(t.Context(), "x")
	span.End()
	if err := stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != "/v1/traces" {
			t.Errorf("exported to %s", p)
		}
	default:
		t.Fatal("nothing was exported")
	}
}

// TestTransport: an outgoing request gets a child span and carries the
// trace in traceparent; without a tracer the transport is untouched.
func TestTransport(t *testing.T) {
	var traceparent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		traceparent = r.Header.Get("traceparent")
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	if Transport(http.DefaultTransport, nil) != http.DefaultTransport {
		t.Error("a nil tracer wraps the transport")
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	client := &http.Client{Transport: Transport(nil, tp.Tracer("test"))}
	resp, err := client.Get(srv.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "usher.idp.fetch" {
		t.Fatalf("spans %v", spans)
	}
	if traceparent == "" || traceparent[3:35] != spans[0].SpanContext().TraceID().String() {
		t.Errorf("traceparent %q does not carry the span's trace %s", traceparent, spans[0].SpanContext().TraceID())
	}
	if spans[0].Status().Code.String() != "Error" {
		t.Errorf("a 404 is not an error span: %v", spans[0].Status())
	}
}
