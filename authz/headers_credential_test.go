package authz_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
)

// forgedNone is an unsigned JWT ("alg": "none") claiming to be an admin.
const forgedNone = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiIsInRlbmFudCI6ImFjbWUifQ."

// TestCheckStripsUnverifiedCredentials: no credential usher understands
// reaches the upstream unless usher verified it, so an upstream that trusts
// a header "because the gateway checked it" cannot be handed a forgery
// (docs/SECURITY.md, "No identity spoofing"; issue: an x-api-key decides
// and a forged Authorization rode along). keep_credential keeps only the
// verified one. Authorization of a scheme usher does not read (Basic) is
// the upstream's own and stays.
// Catalogue rows 10, 100 (docs/catalogue-map.md).
func TestCheckStripsUnverifiedCredentials(t *testing.T) {
	const route = "/spaces/proj1/datasets/a"
	w := newWorld(t)
	kept := newWorld(t, func(c *authz.Config) { c.KeepCredential = true })
	ci := w.keys["acme/ci"]
	keptCI := kept.keys["acme/ci"]
	tests := []struct {
		name     string
		keep     bool
		path     string
		headers  []string
		want     authz.Reason
		wantGone []string
	}{
		{"api key decides, forged bearer goes", false, route,
			[]string{"x-api-key", ci, "authorization", "Bearer " + forgedNone},
			authz.ReasonAllowed, []string{"authorization", "x-api-key"}},
		{"api key decides and is kept, forged bearer still goes", true, route,
			[]string{"x-api-key", ci, "authorization", "Bearer " + forgedNone},
			authz.ReasonAllowed, []string{"authorization"}},
		{"api key decides, a second key as bearer goes", false, route,
			[]string{"x-api-key", ci, "authorization", "bearer " + ci},
			authz.ReasonAllowed, []string{"authorization", "x-api-key"}},
		{"api key decides, an unparseable authorization goes", false, route,
			[]string{"x-api-key", ci, "authorization", "Bearer  a b"},
			authz.ReasonAllowed, []string{"authorization", "x-api-key"}},
		{"api key decides, Basic is the upstream's and stays", false, route,
			[]string{"x-api-key", ci, "authorization", "Basic dXNlcjpwdw=="},
			authz.ReasonAllowed, []string{"x-api-key"}},
		{"api key decides and is kept, Basic stays", true, route,
			[]string{"x-api-key", ci, "authorization", "Basic dXNlcjpwdw=="},
			authz.ReasonAllowed, nil},
		{"bearer api key decides and is kept", true, route,
			[]string{"authorization", "Bearer " + ci},
			authz.ReasonAllowed, nil},
		{"public route: an unchecked key goes", false, "/public/x",
			[]string{"x-api-key", "sk_whatever"},
			authz.ReasonPublic, []string{"x-api-key"}},
		{"public route with keep: nothing was verified, both go", true, "/public/x",
			[]string{"x-api-key", ci, "authorization", "Bearer " + forgedNone},
			authz.ReasonPublic, []string{"authorization", "x-api-key"}},
		{"public route: Basic stays", false, "/public/x",
			[]string{"authorization", "Basic dXNlcjpwdw=="},
			authz.ReasonPublic, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ww := w
			h := tt.headers
			if tt.keep {
				ww = kept
				h = append([]string(nil), h...)
				for i := 1; i < len(h); i += 2 {
					switch h[i] {
					case ci:
						h[i] = keptCI
					case "Bearer " + ci, "bearer " + ci:
						h[i] = "Bearer " + keptCI
					}
				}
			}
			d := ww.check(t, get("api.example.test", tt.path, h...))
			if d.Reason != tt.want {
				t.Fatalf("reason %s, want %s", d.Reason, tt.want)
			}
			if diff := cmp.Diff(tt.wantGone, d.Remove); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
		})
	}
}
