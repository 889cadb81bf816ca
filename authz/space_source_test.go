package authz_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
)

// TestCheckSpaceNamedTwice (security catalogue row 103,
// docs/security-catalogue.md): a route has one space. Where the rule's path
// names one ({space}) and a context extension names another, fixed
// (usher.space) or by a header the client sends (usher.space_header), the
// upstream serves the path's space, so seats in the other must not
// authorise the request: 403 space_mismatch, whichever space the caller's
// seats grant. Where both name the same space, it decides as usual.
func TestCheckSpaceNamedTwice(t *testing.T) {
	w := newWorld(t)
	ci, multi := w.keys["acme/ci"], w.keys["acme/multi"] // ci: editors (proj1); multi: also admins (proj2=*)
	byHeader := map[string]string{authz.ExtSpaceHeader: "x-space-id"}
	fixed := func(space string) map[string]string { return map[string]string{authz.ExtSpace: space} }
	writeFixed := func(space string) map[string]string {
		return map[string]string{authz.ExtPermission: "datasets.write", authz.ExtSpace: space}
	}
	type result struct {
		Status int
		Reason authz.Reason
		Space  string
		Seats  string
	}
	mismatch := result{403, authz.ReasonSpaceMismatch, "", ""}
	tests := []struct {
		name   string
		method string
		path   string
		key    string
		header string // x-space-id, if set
		ext    map[string]string
		want   result
	}{
		{"header names a space the caller may read, path another", "GET", "/spaces/proj2/datasets/a", ci, "proj1", byHeader, mismatch},
		{"header names the path's space", "GET", "/spaces/proj1/datasets/a", ci, "proj1", byHeader, result{200, authz.ReasonAllowed, "proj1", "editors"}},
		{"header names a space without grants, path one with", "GET", "/spaces/proj1/datasets/a", ci, "proj2", byHeader, mismatch},
		{"caller may read both spaces", "GET", "/spaces/proj2/datasets/a", multi, "proj1", byHeader, mismatch},
		{"header in another case", "GET", "/spaces/proj1/datasets/a", ci, "PROJ1", byHeader, mismatch},
		{"header absent", "GET", "/spaces/proj1/datasets/a", ci, "", byHeader, result{400, authz.ReasonSpaceMissing, "", ""}},
		{"header not a space name", "GET", "/spaces/proj1/datasets/a", ci, "../proj1", byHeader, result{400, authz.ReasonSpaceInvalid, "", ""}},
		{"fixed space the caller may read, path another", "GET", "/spaces/proj2/datasets/a", ci, "", fixed("proj1"), mismatch},
		{"fixed space is the path's", "GET", "/spaces/proj1/datasets/a", ci, "", fixed("proj1"), result{200, authz.ReasonAllowed, "proj1", "editors"}},
		{"permission and fixed space, path another", "POST", "/spaces/proj2/datasets/a", ci, "", writeFixed("proj1"), mismatch},
		{"permission and fixed space, the path's", "POST", "/spaces/proj1/datasets/a", ci, "", writeFixed("proj1"), result{200, authz.ReasonAllowed, "proj1", "editors"}},
		{"rule without {space}: the header decides", "GET", "/projects/7", ci, "proj1", nil, result{200, authz.ReasonAllowed, "proj1", "editors"}},
		{"rule with a fixed space, extension another", "GET", "/admin/x", multi, "", fixed("proj2"), result{200, authz.ReasonAllowed, "proj2", "admins"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req(tt.method, "api.example.test", tt.path, "x-api-key", tt.key)
			if tt.header != "" {
				r.Headers["x-space-id"] = tt.header
			}
			r.ContextExtensions = tt.ext
			d := w.check(t, r)
			if diff := cmp.Diff(tt.want, result{d.Status, d.Reason, d.Space, d.Seats}); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
			if d.Identity.Tenant != "acme" {
				t.Errorf("tenant %q, want acme: a space mismatch is decided after authentication", d.Identity.Tenant)
			}
		})
	}
}
