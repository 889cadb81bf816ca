package envoy_test

import (
	"context"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
)

// BenchmarkCheckMix is BenchmarkCheck's other loads through the ext_authz
// server (docs/security-catalogue.md row 131), beside its noop and
// apikey-cached baselines:
//
//	apikey-cold       an API key whose record and seat are read from the
//	                  store each time (every cache purged outside the timer)
//	deny-mix          one allowed key and six denials (unknown id,
//	                  malformed, wrong secret, no credential, missing
//	                  permission, bad path) in rotation: denials build a
//	                  body and headers that allows do not
//	grpc/deny-mix     the same over loopback gRPC, 8 parallel callers
//
//	go test ./envoy -run '^$' -bench 'BenchmarkCheck' -count 10 | benchstat -
func BenchmarkCheckMix(b *testing.B) {
	w := newWorld(b, nil)
	usher := &envoy.Server{Decider: w.a, Realm: "usher"}
	const ds = "/spaces/proj1/datasets/7"
	ci := w.keys["acme/ci"]
	mix := []*authv3.CheckRequest{
		envoyRequest("GET", api, ds, "x-api-key", ci),
		envoyRequest("GET", api, ds, "x-api-key", authz.FormatAPIKey("acme", "zzzzzzzzzzzzzzzz", []byte(strings.Repeat("q", 32)))),
		envoyRequest("GET", api, ds, "x-api-key", "sk_not*a*key"),
		envoyRequest("GET", api, ds, "x-api-key", authz.FormatAPIKey("acme", "ciacmekeyaaaaaaa", []byte(strings.Repeat("w", 32)))),
		envoyRequest("GET", api, ds),
		envoyRequest("POST", api, ds, "x-api-key", w.keys["acme/reader"]),
		envoyRequest("GET", api, "/spaces/proj1%2Fdatasets/7", "x-api-key", ci),
	}
	allowed := 0
	for _, r := range mix {
		resp, err := usher.Check(context.Background(), r)
		if err != nil {
			b.Fatal(err)
		}
		if resp.GetOkResponse() != nil {
			allowed++
		}
	}
	if allowed != 1 {
		b.Fatalf("%d of the mix allowed, want 1", allowed)
	}

	b.Run("apikey-cold", func(b *testing.B) {
		ctx := context.Background()
		req := mix[0]
		assertAllowed(b, usher, req)
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			w.a.Apply(authz.Change{Kind: "bench-purge-all"}) // a kind it does not know: purges every cache
			b.StartTimer()
			if _, err := usher.Check(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("deny-mix", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := usher.Check(ctx, mix[i%len(mix)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	client := serveGRPC(b, usher)
	b.Run("grpc/deny-mix", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			i := 0
			for pb.Next() {
				if _, err := client.Check(ctx, mix[i%len(mix)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
