package authz_test

import (
	"testing"

	"github.com/usher-dev/usher/authz"
)

// TestCheckConnectionCannotNominateReservedHeaders: a Connection header
// that names an identity header or a credential as hop-by-hop is refused,
// so no proxy behind Envoy can be made to drop usher's identity headers
// (docs/security-catalogue.md row 98). Ordinary hop-by-hop names pass.
func TestCheckConnectionCannotNominateReservedHeaders(t *testing.T) {
	w := newWorld(t)
	ci := w.keys["acme/ci"]
	for _, tc := range []struct {
		connection string
		want       authz.Reason
	}{
		{"keep-alive", authz.ReasonAllowed},
		{"Upgrade, keep-alive", authz.ReasonAllowed},
		{"x-usher-subject, x-usher-tenant", authz.ReasonRequestInvalid},
		{"keep-alive, X-Usher-Seats", authz.ReasonRequestInvalid},
		{"x_usher_subject", authz.ReasonRequestInvalid},
		{" x-api-key ", authz.ReasonRequestInvalid},
		{"Authorization", authz.ReasonRequestInvalid},
	} {
		t.Run(tc.connection, func(t *testing.T) {
			d := w.check(t, get("api.example.test", "/me", "x-api-key", ci, "connection", tc.connection))
			if d.Reason != tc.want {
				t.Errorf("Connection: %q: %d %s, want %s", tc.connection, d.Status, d.Reason, tc.want)
			}
		})
	}
	// Public routes too: the identity headers usher strips there must not
	// be re-nominated either.
	if d := w.check(t, get("api.example.test", "/public/x", "connection", "x-usher-subject")); d.Reason != authz.ReasonRequestInvalid {
		t.Errorf("public route: %s, want request_invalid", d.Reason)
	}
}

// TestCheckIgnoresUserAgent: no decision depends on the user agent; a
// health-check agent gets no free pass (docs/security-catalogue.md row 99).
func TestCheckIgnoresUserAgent(t *testing.T) {
	w := newWorld(t)
	for _, ua := range []string{"kube-probe/1.30", "ELB-HealthChecker/2.0", "GoogleHC/1.0", "Envoy/HC"} {
		if d := w.check(t, get("api.example.test", "/me", "user-agent", ua)); d.Status != 401 || d.Reason != authz.ReasonCredentialMissing {
			t.Errorf("user agent %q: %d %s, want 401 credential_missing", ua, d.Status, d.Reason)
		}
	}
}

// TestCheckIgnoresEnvoyInternal: x-envoy-internal (and any x-envoy-*
// header a client sends) grants nothing; the credential decides
// (docs/security-catalogue.md row 97).
func TestCheckIgnoresEnvoyInternal(t *testing.T) {
	w := newWorld(t)
	d := w.check(t, get("api.example.test", "/me", "x-envoy-internal", "true", "x-envoy-original-path", "/public/x"))
	if d.Status != 401 || d.Reason != authz.ReasonCredentialMissing {
		t.Errorf("x-envoy-internal: %d %s, want 401 credential_missing", d.Status, d.Reason)
	}
}
