package envoy_test

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
	"github.com/usher-dev/usher/internal/loadgen"
)

// BenchmarkCheck compares usher's ext_authz server with the noop server,
// in-process (the Check method called directly) and over loopback gRPC
// (parallel clients, as Envoy's many connections send):
//
//	noop, apikey-cached, cookie-cached  the server method alone
//	apikey-cached-traced                apikey-cached with tracing on (every
//	                                    Check sampled, spans dropped unexported)
//	grpc/...                            the same through a real gRPC connection
//
// cookie-cached is the session cookie between two other cookies. Tracing
// off is apikey-cached itself: the Server's Tracer is nil, one branch.
//
// Report ratios from one run: go test ./envoy -run '^$' -bench BenchmarkCheck -count 10 | benchstat -
// Catalogue row 131 (docs/catalogue-map.md).
func BenchmarkCheck(b *testing.B) {
	w := newWorld(b, nil)
	req := envoyRequest("GET", api, "/spaces/proj1/datasets/7?page=2", "x-api-key", w.keys["acme/ci"])
	usher := &envoy.Server{Decider: w.a, Realm: "usher"}
	cw, handle := newCookieWorld(b)
	cookieReq := envoyRequest("GET", api, "/spaces/proj1/datasets/7?page=2",
		"cookie", "_ga=GA1.2.1234567890.1700000000; usher_session="+handle+"; theme=dark")
	servers := []struct {
		name string
		srv  authv3.AuthorizationServer
		req  *authv3.CheckRequest
	}{
		{"noop", loadgen.Noop{}, req},
		{"apikey-cached", usher, req},
		{"cookie-cached", &envoy.Server{Decider: cw.a, Realm: "usher"}, cookieReq},
	}
	traced := append(servers, struct {
		name string
		srv  authv3.AuthorizationServer
		req  *authv3.CheckRequest
	}{"apikey-cached-traced", &envoy.Server{Decider: w.a, Realm: "usher",
		Tracer: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())).Tracer("bench")}, req})
	for _, s := range traced {
		b.Run(s.name, func(b *testing.B) {
			ctx := context.Background()
			assertAllowed(b, s.srv, s.req)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.srv.Check(ctx, s.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, s := range servers {
		client := serveGRPC(b, s.srv)
		req := s.req
		b.Run("grpc/"+s.name, func(b *testing.B) {
			assertAllowed(b, s.srv, req)
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := client.Check(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func assertAllowed(b *testing.B, srv authv3.AuthorizationServer, req *authv3.CheckRequest) {
	b.Helper()
	resp, err := srv.Check(context.Background(), req)
	if err != nil || resp.GetOkResponse() == nil {
		b.Fatalf("not allowed: %v %v", resp, err)
	}
	if _, isNoop := srv.(loadgen.Noop); !isNoop && resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue() != string(authz.ReasonAllowed) {
		b.Fatalf("not decided: %v", resp)
	}
}
