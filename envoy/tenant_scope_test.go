package envoy_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
)

// TestCheckSameNamedSeatsPerTenantOverGRPC (security catalogue row 4,
// docs/security-catalogue.md): over ext_authz, acme's and globex's keys
// each get only their own tenant's "editors" grants in the spaces both
// tenants name proj1 and proj2 (storetest.Seed gives them different
// grants), whichever tenant's seat was read first.
func TestCheckSameNamedSeatsPerTenantOverGRPC(t *testing.T) {
	inSpace := func(a answer, space string) answer {
		a.Set["x-usher-space"] = space
		return a
	}
	for _, acmeFirst := range []bool{true, false} {
		w := newWorld(t, nil)
		acme, globex := w.keys["acme/ci"], w.keys["globex/ci"]
		type step struct {
			name         string
			method, path string
			key          string
			want         answer
		}
		acmeSteps := []step{
			{"acme writes its proj1", "POST", "/spaces/proj1/datasets/7", acme,
				allowed("apikey:ciacmekeyaaaaaaa", "acme", "editors", "x-api-key")},
			{"acme reads its proj2 (globex's editors could)", "GET", "/spaces/proj2/datasets/7", acme,
				denied(codes.PermissionDenied, 403, "permission_denied")},
		}
		globexSteps := []step{
			{"globex writes its proj2", "POST", "/spaces/proj2/datasets/7", globex,
				inSpace(allowed("apikey:ciglobexkeyaaaaa", "globex", "editors", "x-api-key"), "proj2")},
			{"globex writes its proj1 (acme's editors could)", "POST", "/spaces/proj1/datasets/7", globex,
				denied(codes.PermissionDenied, 403, "permission_denied")},
			{"globex reads its proj1", "GET", "/spaces/proj1/datasets/7", globex,
				allowed("apikey:ciglobexkeyaaaaa", "globex", "editors", "x-api-key")},
		}
		steps := slices.Concat(acmeSteps, globexSteps)
		if !acmeFirst {
			steps = slices.Concat(globexSteps, acmeSteps)
		}
		for _, s := range steps {
			got := w.check(t, envoyRequest(s.method, api, s.path, "x-api-key", s.key))
			if diff := cmp.Diff(s.want, got); diff != "" {
				t.Errorf("acme first %v, %s: answer (-want +got):\n%s", acmeFirst, s.name, diff)
			}
		}
	}
}
