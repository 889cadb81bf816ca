package envoy_test

import (
	"context"
	"testing"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
)

// fixedDecider answers every request with one decision, so that what is
// measured is the adapter alone.
type fixedDecider struct{ d authz.Decision }

func (f *fixedDecider) Check(context.Context, *authz.Request) authz.Decision { return f.d }

// allowedDecision is what authz decides for a cached API key on a
// permission route: five identity headers, the credential removed.
var allowedDecision = authz.Decision{
	Status: 200, Reason: authz.ReasonAllowed,
	Identity: authz.Identity{Method: authz.AuthAPIKey, Subject: "apikey:ciacmekeyaaaaaaa", Tenant: "acme"},
	Seats:    "editors", Space: "proj1", Remove: []string{"x-api-key"},
}

// TestCheckAllocations guards the adapter's allocations per Check: request
// conversion, response building and the Server around the decision, with
// the decision itself fixed (authz has its own allocation guard).
func TestCheckAllocations(t *testing.T) {
	req := envoyRequest("GET", api, "/spaces/proj1/datasets/7?page=2", "x-api-key", "sk_x")
	tests := []struct {
		name string
		d    authz.Decision
	}{
		{"allowed", allowedDecision},
		{"allowed by the session cookie", authz.Decision{
			Status: 200, Reason: authz.ReasonAllowed,
			Identity: authz.Identity{Method: authz.AuthCookie, Subject: "alice-sub", Tenant: "acme",
				Email: "alice@example.test", Issuer: "https://idp.example.test"},
			Seats: "editors", Space: "proj1", Cookie: "_ga=GA1.2.3; theme=dark"}},
		{"redirect to log in", authz.Decision{Status: 302, Reason: authz.ReasonCredentialMissing,
			Location: "https://auth.example.test/login?next=https%3A%2F%2Fapi.example.test%2F"}},
		{"denied 401", authz.Deny(authz.ReasonCredentialMissing)},
		{"denied 403", authz.Decision{Status: 403, Reason: authz.ReasonPermissionDenied,
			Identity: allowedDecision.Identity}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &envoy.Server{Decider: &fixedDecider{tt.d}, Realm: "usher"}
			ctx := context.Background()
			conv := testing.AllocsPerRun(200, func() {
				r, err := envoy.RequestFrom(req)
				if err != nil || r.Path == "" {
					t.Fatal(err)
				}
				_ = envoy.ResponseFrom(&tt.d, "usher")
			})
			check := testing.AllocsPerRun(200, func() {
				if _, err := srv.Check(ctx, req); err != nil {
					t.Fatal(err)
				}
			})
			// Measured: 3 and 4 (before the adapter was reworked: 33 and
			// 39). The response's messages are one allocation, its
			// metadata map two; the Check adds its state.
			if conv > 4 {
				t.Errorf("RequestFrom+ResponseFrom: %v allocations, want at most 4", conv)
			}
			if check > 6 {
				t.Errorf("Server.Check: %v allocations, want at most 6", check)
			}
		})
	}
}
