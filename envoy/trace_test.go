package envoy_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
	"github.com/usher-dev/usher/internal/testclock"
	"github.com/usher-dev/usher/store/storetest"
)

// tracedWorld is a gRPC Check server and an HTTP check server whose
// decisions, and the store reads behind them, are traced into rec.
func tracedWorld(t *testing.T) (*world, *envoy.HTTPServer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	tracer := tp.Tracer("test")
	clock := testclock.New(storetest.Epoch)
	st := &storetest.Faulty{Store: storetest.Open(t, clock.Now)}
	keys := storetest.Seed(t, st.Store)
	rules := sampleRules(t)
	a, err := authz.New(authz.Config{Rules: rules, Keys: st, Seats: st, Cache: authz.DefaultCacheConfig(), Now: clock.Now, Tracer: tracer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	w := &world{client: serveGRPC(t, &envoy.Server{Decider: a, Realm: "usher", Tracer: tracer, Timeout: checkTimeout}), a: a, st: st, keys: keys, clock: clock}
	return w, &envoy.HTTPServer{Decider: a, Realm: "usher", Tracer: tracer, Timeout: checkTimeout}, rec
}

func spanNamed(spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

// TestCheckSpans: a Check continues the caller's trace (traceparent from
// the CheckRequest's headers), records the reason, rule and status, has a
// child span for each store read, and never carries the credential.
func TestCheckSpans(t *testing.T) {
	w, _, rec := tracedWorld(t)
	key := w.keys["acme/ci"]
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "00-" + traceID + "-00f067aa0ba902b7-01"
	got := w.check(t, envoyRequest("GET", "api.example.test", "/spaces/proj1/datasets/7", "x-api-key", key, "traceparent", parent))
	if got.HTTP != 200 {
		t.Fatalf("check: %+v", got)
	}
	spans := rec.Ended()
	check := spanNamed(spans, envoy.SpanCheck)
	if check == nil {
		t.Fatalf("no %s span among %d", envoy.SpanCheck, len(spans))
	}
	if check.SpanContext().TraceID().String() != traceID || check.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("the Check span does not continue the caller's trace: trace %s parent %s", check.SpanContext().TraceID(), check.Parent().SpanID())
	}
	a := attrs(check)
	if a["usher.reason"] != "allowed" || a["http.response.status_code"] != "200" || a["usher.rule"] != "read-datasets" || a["usher.auth"] != "apikey" {
		t.Errorf("Check span attributes %v", a)
	}
	read := spanNamed(spans, "usher.store.apikey")
	if read == nil || read.Parent().SpanID() != check.SpanContext().SpanID() {
		t.Fatalf("no store read span under the Check span: %v", read)
	}
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.String(), key) || strings.Contains(kv.Value.String(), authz.HashAPIKey(key).String()) {
				t.Errorf("span %s carries the credential in %s", s.Name(), kv.Key)
			}
		}
	}

	// A cached key: the decision's span, no store read.
	rec.Reset()
	w.check(t, envoyRequest("GET", "api.example.test", "/spaces/proj1/datasets/7", "x-api-key", key))
	if spans := rec.Ended(); spanNamed(spans, envoy.SpanCheck) == nil || spanNamed(spans, "usher.store.apikey") != nil {
		t.Errorf("cached Check spans: %d", len(spans))
	}
	// A denial records its reason.
	rec.Reset()
	w.check(t, envoyRequest("GET", "api.example.test", "/me"))
	if s := spanNamed(rec.Ended(), envoy.SpanCheck); s == nil || attrs(s)["usher.reason"] != "credential_missing" {
		t.Errorf("denial span: %v", s)
	}
}

// TestHTTPCheckSpans: HTTP check mode traces the same way.
func TestHTTPCheckSpans(t *testing.T) {
	w, hs, rec := tracedWorld(t)
	addr := serveHTTP(t, hs)
	parent := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	resp := roundTrip(t, addr, rawRequest("GET", "/ext_authz/spaces/proj1/datasets/7", "Host", "api.example.test",
		"X-Api-Key", w.keys["acme/ci"], "Traceparent", parent))
	if resp.status != 200 {
		t.Fatalf("status %d", resp.status)
	}
	s := spanNamed(rec.Ended(), envoy.SpanCheck)
	if s == nil || s.SpanContext().TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || attrs(s)["usher.reason"] != "allowed" {
		t.Fatalf("HTTP check span: %v", s)
	}
}
