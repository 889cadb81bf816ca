package envoy_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
)

// TestCheckSpaceNamedTwiceOverGRPC (security catalogue row 103,
// docs/security-catalogue.md): a route whose context extension takes the
// space from a header, on a rule whose path names the space, is denied
// 403 space_mismatch over ext_authz when the two differ, even though the
// caller's seats grant the permission in the header's space.
func TestCheckSpaceNamedTwiceOverGRPC(t *testing.T) {
	w := newWorld(t, nil)
	ci := w.keys["acme/ci"] // editors: proj1 only
	for _, tt := range []struct {
		name, path string
		want       answer
	}{
		{"header proj1, path proj2", "/spaces/proj2/datasets/7", denied(codes.PermissionDenied, 403, "space_mismatch")},
		{"header and path proj1", "/spaces/proj1/datasets/7", allowed("apikey:ciacmekeyaaaaaaa", "acme", "editors", "x-api-key")},
	} {
		req := envoyRequest("GET", api, tt.path, "x-api-key", ci, "x-space-id", "proj1")
		req.Attributes.ContextExtensions = map[string]string{"usher.space_header": "x-space-id"}
		if diff := cmp.Diff(tt.want, w.check(t, req)); diff != "" {
			t.Errorf("%s: answer (-want +got):\n%s", tt.name, diff)
		}
	}
}
