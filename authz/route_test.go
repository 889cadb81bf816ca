package authz_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/usher-dev/usher/authz"
)

// TestRouteAgreesWithCheck: what Rules.Route reports (the rule, the
// permission, the space, a route-level reason) is what a Check of the
// same request decides with, for an allowed caller and for one without a
// credential. `usher rules test` and `usher explain` rely on it.
func TestRouteAgreesWithCheck(t *testing.T) {
	w := newWorld(t)
	rules, err := authz.ParseRules("test", []byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	key := w.keys["acme/multi"]
	tests := []struct {
		name string
		r    *authz.Request
		want authz.Route
	}{
		{"public", get("x.test", "/public/a"), authz.Route{Path: "/public/a", Rule: "rules[0]", Access: authz.AccessPublic, Reason: authz.ReasonPublic}},
		{"permission from the path", get("api.example.test", "/spaces/research/datasets/x"),
			authz.Route{Path: "/spaces/research/datasets/x", Rule: "rules[1]", Access: authz.AccessPermission, Permission: "datasets.read", Space: "research"}},
		{"fixed space", get("x.test", "/admin/users"), authz.Route{Path: "/admin/users", Rule: "rules[4]", Access: authz.AccessPermission, Permission: "admin", Space: "ops"}},
		{"space header", get("x.test", "/projects/p", "x-space-id", "research"),
			authz.Route{Path: "/projects/p", Rule: "rules[5]", Access: authz.AccessPermission, Permission: "datasets.read", Space: "research"}},
		{"space header missing", get("x.test", "/projects/p"),
			authz.Route{Path: "/projects/p", Rule: "rules[5]", Access: authz.AccessPermission, Permission: "datasets.read", Reason: authz.ReasonSpaceMissing}},
		{"authenticated", get("x.test", "/me"), authz.Route{Path: "/me", Rule: "rules[3]", Access: authz.AccessAuthenticated}},
		{"no rule", get("x.test", "/nowhere"), authz.Route{Path: "/nowhere", Rule: "default", Access: authz.AccessDeny, Reason: authz.ReasonNoRoute}},
		{"normalised", get("x.test", "//public//%61"), authz.Route{Path: "/public/a", Rule: "rules[0]", Access: authz.AccessPublic, Reason: authz.ReasonPublic}},
		{"dot segment", get("x.test", "/public/../admin"), authz.Route{Reason: authz.ReasonPathInvalid}},
		{"bad extension", &authz.Request{Method: "GET", Host: "x.test", Path: "/me", Headers: map[string]string{},
			ContextExtensions: map[string]string{"usher.public": "yes"}}, authz.Route{Path: "/me", Reason: authz.ReasonConfigInvalid}},
		{"extension makes it public", &authz.Request{Method: "GET", Host: "x.test", Path: "/me", Headers: map[string]string{},
			ContextExtensions: map[string]string{"usher.public": "true"}}, authz.Route{Path: "/me", Rule: "rules[3]+ext", Access: authz.AccessPublic, Reason: authz.ReasonPublic}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rules.Route(tt.r)
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(authz.Route{}, "Tried")); diff != "" {
				t.Fatalf("Route (-want +got):\n%s", diff)
			}
			// Without a credential, a reason decided before the
			// credential is the decision.
			anon := w.check(t, tt.r)
			if beforeCredential(got.Reason) && anon.Reason != got.Reason {
				t.Errorf("Check without a credential: %s, Route says %s", anon.Reason, got.Reason)
			}
			if got.Reason != "" && got.Reason != authz.ReasonConfigInvalid && got.Reason != authz.ReasonPathInvalid && anon.Rule != got.Rule {
				t.Errorf("Check's rule %q, Route's %q", anon.Rule, got.Rule)
			}
			if beforeCredential(got.Reason) {
				return
			}
			r := *tt.r
			r.Headers = map[string]string{"x-api-key": key}
			for k, v := range tt.r.Headers {
				r.Headers[k] = v
			}
			d := w.check(t, &r)
			if got.Reason != "" && d.Reason != got.Reason {
				t.Errorf("Check with a key: %s, Route says %s", d.Reason, got.Reason)
			}
			if d.Rule != got.Rule || d.Permission != got.Permission || d.Space != got.Space {
				t.Errorf("Check decided under rule %q permission %q space %q; Route says %+v", d.Rule, d.Permission, d.Space, got)
			}
		})
	}
}

// beforeCredential: reasons a Check gives before it reads a credential.
func beforeCredential(r authz.Reason) bool {
	switch r {
	case authz.ReasonPublic, authz.ReasonNoRoute, authz.ReasonPathInvalid, authz.ReasonRequestInvalid, authz.ReasonConfigInvalid:
		return true
	}
	return false
}

// TestRouteTried: the rules passed over, each with the part that did not
// match, for `usher explain`.
func TestRouteTried(t *testing.T) {
	rules, err := authz.ParseRules("test", []byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	got := rules.Route(get("x.test", "/admin/users")).Tried
	want := []string{"rules[0]: path", "rules[1]: host", "rules[2]: method", "rules[3]: path"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tried (-want +got):\n%s", diff)
	}
	if n := len(rules.Route(get("x.test", "/nowhere")).Tried); n != rules.Len() {
		t.Errorf("no match: tried %d rules, want all %d", n, rules.Len())
	}
}
