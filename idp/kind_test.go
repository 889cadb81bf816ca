package idp_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/store"
)

// TestTokenTypeAndClients: a trust requiring typ at+jwt and naming its
// clients refuses the IdP's ID tokens and other clients' tokens for the
// same audience; a trust without them (an old record) does not look.
// Catalogue row 23 (docs/catalogue-map.md).
func TestTokenTypeAndClients(t *testing.T) {
	w := newWorld(t, "memberOf")
	if err := w.st.RemoveIssuer(t.Context(), "acme", w.idp.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.AddIssuer(t.Context(), store.Issuer{Tenant: "acme", Issuer: w.idp.URL, Audience: "api://usher", GroupsClaim: "memberOf",
		TokenType: "at+jwt", ClientIDs: []string{"app-1", "app-2"}}); err != nil {
		t.Fatal(err)
	}
	w.apply(t)
	at := map[string]any{"typ": "at+jwt"}
	sign := func(hdr map[string]any, claims map[string]any) string {
		return testidp.Sign(t, w.rsa, w.claims(claims), hdr)
	}
	allowed := outcome{200, authz.ReasonAllowed, "user-42", "acme", "viewers"}
	tests := []struct {
		name  string
		token string
		want  outcome
	}{
		{"access token of an allowed client (azp)", sign(at, map[string]any{"azp": "app-1"}), allowed},
		{"access token of an allowed client (client_id)", sign(at, map[string]any{"client_id": "app-2"}), allowed},
		{"typ as a full media type, other case", sign(map[string]any{"typ": "Application/AT+JWT"}, map[string]any{"azp": "app-1"}), allowed},
		{"ID token (typ JWT)", sign(nil, map[string]any{"azp": "app-1"}), denial(authz.ReasonTokenInvalid)},
		{"empty typ", sign(map[string]any{"typ": ""}, map[string]any{"azp": "app-1"}), denial(authz.ReasonTokenInvalid)},
		{"another type", sign(map[string]any{"typ": "logout+jwt"}, map[string]any{"azp": "app-1"}), denial(authz.ReasonTokenInvalid)},
		{"another client", sign(at, map[string]any{"azp": "app-3"}), denial(authz.ReasonTokenClaimsInvalid)},
		{"no client named", sign(at, nil), denial(authz.ReasonTokenClaimsInvalid)},
		{"azp allowed, client_id not", sign(at, map[string]any{"azp": "app-1", "client_id": "app-3"}), denial(authz.ReasonTokenClaimsInvalid)},
		{"client id not a string", sign(at, map[string]any{"client_id": []any{"app-1"}}), denial(authz.ReasonTokenClaimsInvalid)},
		{"client id in other case", sign(at, map[string]any{"azp": "APP-1"}), denial(authz.ReasonTokenClaimsInvalid)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, outcomeOf(w.check(t, "/spaces/proj1/datasets/x", tt.token))); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGroupNamesMatchSeatsOnlyWhenOptedIn: a group whose name is a seat's
// name gives that seat only where the trust opts in; a seat's --group
// aliases always match.
// Catalogue row 70 (docs/catalogue-map.md).
func TestGroupNamesMatchSeatsOnlyWhenOptedIn(t *testing.T) {
	tests := []struct {
		name      string
		optIn     bool
		wantSeats string
	}{
		{"by default, aliases only", false, "viewers"},
		{"opted in, names too", true, "admins,viewers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, "memberOf")
			if err := w.st.RemoveIssuer(t.Context(), "acme", w.idp.URL); err != nil {
				t.Fatal(err)
			}
			if _, err := w.st.AddIssuer(t.Context(), store.Issuer{Tenant: "acme", Issuer: w.idp.URL, Audience: "api://usher",
				GroupsClaim: "memberOf", MatchGroupNames: tt.optIn}); err != nil {
				t.Fatal(err)
			}
			w.apply(t)
			// Anyone allowed to create a group named "admins" at the IdP.
			tok := testidp.Sign(t, w.rsa, w.claims(map[string]any{"memberOf": []any{"admins", "CN=viewers,OU=groups"}}), nil)
			if d := w.check(t, "/me", tok); d.Reason != authz.ReasonAllowed || d.Seats != tt.wantSeats {
				t.Errorf("%s, seats %q; want seats %q", d.Reason, d.Seats, tt.wantSeats)
			}
		})
	}
}
