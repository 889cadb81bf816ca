package envoy_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store/storetest"
)

// parityCase is one original request, sent through gRPC Check and every
// HTTP dialect.
type parityCase struct {
	name               string
	method, host, path string
	headers            []string // name, value pairs, in order
	storeDown          bool
	at                 time.Duration // the clock's time after storetest.Epoch
	want               authz.Reason
}

// httpDialects render an original request as each proxy sends its check
// request to usher.
var httpDialects = []struct {
	name    string
	request func(c parityCase) string
}{
	{"envoy-http", func(c parityCase) string {
		return rawRequest(c.method, "/ext_authz"+c.path, append([]string{"Host", c.host}, c.headers...)...)
	}},
	{"nginx", func(c parityCase) string {
		return rawRequest("GET", "/auth", append([]string{"Host", "usher", "X-Original-URI", c.path,
			"X-Original-Method", c.method, "X-Forwarded-Host", c.host, "X-Forwarded-Proto", "https"}, c.headers...)...)
	}},
	{"forward-auth", func(c parityCase) string {
		return rawRequest("GET", "/auth", append([]string{"Host", c.host, "X-Forwarded-Method", c.method,
			"X-Forwarded-Proto", "https", "X-Forwarded-Host", c.host, "X-Forwarded-Uri", c.path,
			"X-Forwarded-For", "10.0.0.7"}, c.headers...)...)
	}},
}

// TestHTTPParity sends one table of requests (every reason code, spoofed
// identity headers and their '_' and '.' spellings, path tricks, methods)
// through gRPC Check and through each HTTP dialect, and requires the same
// decision everywhere: status, body, challenge, and the identity headers
// set and removed upstream. Catalogue rows 88, 93, 94, 98, 102.
func TestHTTPParity(t *testing.T) {
	w := newHTTPWorld(t)
	ci, multi := w.keys["acme/ci"], w.keys["acme/multi"]
	otherTenant := storetest.FixtureKeyString(storetest.FixtureKey{Tenant: "globex", ID: "ciacmekeyaaaaaaa"})
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	key := []string{"X-Api-Key", ci}
	with := func(a []string, b ...string) []string { return append(slices.Clone(a), b...) }
	read := "/spaces/proj1/datasets/7"
	tests := []parityCase{
		// Allowed, with every kind of credential.
		{name: "api key", method: "GET", path: read, headers: key, want: authz.ReasonAllowed},
		{name: "api key as bearer", method: "POST", path: read, headers: bearer(ci), want: authz.ReasonAllowed},
		{name: "usher token", method: "GET", path: read, headers: bearer(w.tokens["good"]), want: authz.ReasonAllowed},
		{name: "several seats", method: "GET", path: "/me", headers: []string{"X-Api-Key", multi}, want: authz.ReasonAllowed},
		{name: "HEAD on a GET rule", method: "HEAD", path: read, headers: key, want: authz.ReasonAllowed},
		{name: "lower-case method", method: "get", path: read, headers: key, want: authz.ReasonAllowed},
		{name: "query kept apart from the path", method: "GET", path: read + "?next=/admin&x=1", headers: key, want: authz.ReasonAllowed},
		{name: "escaped path", method: "GET", path: "/spaces/proj1/%64atasets/7", headers: key, want: authz.ReasonAllowed},
		{name: "merged slashes", method: "GET", path: "//spaces//proj1/datasets/7", headers: key, want: authz.ReasonAllowed},
		{name: "tenant in the path", method: "GET", path: "/tenants/acme/spaces/proj1/x", headers: key, want: authz.ReasonAllowed},
		{name: "tenant and space headers", method: "GET", path: "/reports/q1",
			headers: with(key, "X-Tenant-Id", "acme", "X-Space-Id", "proj1"), want: authz.ReasonAllowed},
		{name: "basic auth for the upstream stays", method: "GET", path: read,
			headers: with(key, "Authorization", "Basic YTpi"), want: authz.ReasonAllowed},
		{name: "public", method: "GET", path: "/public/logo.png", want: authz.ReasonPublic},
		{name: "public with an unchecked key", method: "GET", path: "/public/logo.png", headers: key, want: authz.ReasonPublic},

		// Spoofed identity headers: overwritten or removed, in every
		// spelling, on protected and public routes.
		{name: "spoofed identity", method: "GET", path: read, headers: with(key,
			"X-Usher-Subject", "root", "x-usher-tenant", "globex", "X-Usher-Email", "root@evil.test",
			"X-Usher-Issuer", "evil", "X-Usher-Admin", "true"), want: authz.ReasonAllowed},
		{name: "spoofed underscore and dot variants", method: "GET", path: read, headers: with(key,
			"x_usher_seats", "admins", "x.usher.auth", "jwt", "X_Usher-Subject", "root", "x-usher.space", "ops"), want: authz.ReasonAllowed},
		{name: "spoofed on a public route", method: "GET", path: "/public/x", headers: []string{
			"X-Usher-Subject", "root", "x_usher_tenant", "acme", "x.usher.seats", "admins"}, want: authz.ReasonPublic},
		{name: "spoofed on a denial", method: "GET", path: read, headers: []string{"X-Usher-Subject", "root"},
			want: authz.ReasonCredentialMissing},

		// 400s.
		{name: "method override is no method", method: "POST", path: read,
			headers: with(key, "X-HTTP-Method-Override", "DEL ETE"), want: authz.ReasonRequestInvalid},
		{name: "method overrides disagree", method: "POST", path: read + "?_method=PUT",
			headers: with(key, "X-HTTP-Method-Override", "DELETE"), want: authz.ReasonRequestInvalid},
		{name: "Connection names an identity header", method: "GET", path: read,
			headers: with(key, "Connection", "x-usher-subject"), want: authz.ReasonRequestInvalid},
		{name: "dot segments", method: "GET", path: "/public/../admin/users", headers: key, want: authz.ReasonPathInvalid},
		{name: "encoded dot segments", method: "GET", path: "/public/%2e%2e/admin", headers: key, want: authz.ReasonPathInvalid},
		{name: "encoded slash", method: "GET", path: "/public%2F..%2Fadmin", headers: key, want: authz.ReasonPathInvalid},
		{name: "path parameter", method: "GET", path: "/public/..;x=y/admin", headers: key, want: authz.ReasonPathInvalid},
		{name: "double encoding", method: "GET", path: "/public/%252e%252e/admin", headers: key, want: authz.ReasonPathInvalid},
		{name: "space header missing", method: "GET", path: "/reports/q1", headers: with(key, "X-Tenant-Id", "acme"),
			want: authz.ReasonSpaceMissing},
		{name: "space header invalid", method: "GET", path: "/reports/q1",
			headers: with(key, "X-Tenant-Id", "acme", "X-Space-Id", "Not A Space"), want: authz.ReasonSpaceInvalid},

		// 401s.
		{name: "no credential", method: "GET", path: "/me", want: authz.ReasonCredentialMissing},
		{name: "malformed key", method: "GET", path: "/me", headers: []string{"X-Api-Key", "sk_notakey"}, want: authz.ReasonAPIKeyMalformed},
		{name: "two keys", method: "GET", path: "/me", headers: []string{"X-Api-Key", ci, "X-Api-Key", ci}, want: authz.ReasonAPIKeyMalformed},
		{name: "bad key, good bearer", method: "GET", path: "/me", headers: with(bearer(ci), "X-Api-Key", "nope"),
			want: authz.ReasonAPIKeyMalformed},
		{name: "key re-encoded for another tenant", method: "GET", path: "/me", headers: []string{"X-Api-Key", otherTenant},
			want: authz.ReasonAPIKeyInvalid},
		{name: "expired key", method: "GET", path: "/me", headers: []string{"X-Api-Key", w.keys["acme/expiring"]}, at: time.Hour,
			want: authz.ReasonAPIKeyExpired},
		{name: "revoked key", method: "GET", path: "/me", headers: []string{"X-Api-Key", w.keys["acme/revoked"]},
			want: authz.ReasonAPIKeyRevoked},
		{name: "malformed bearer", method: "GET", path: "/me", headers: []string{"Authorization", "Bearer a b"},
			want: authz.ReasonBearerMalformed},
		{name: "basic", method: "GET", path: "/me", headers: []string{"Authorization", "Basic YTpi"},
			want: authz.ReasonUnsupportedCredential},
		{name: "malformed token", method: "GET", path: "/me", headers: bearer("a.b.c"), want: authz.ReasonTokenMalformed},
		{name: "tampered token", method: "GET", path: "/me", headers: bearer(w.tokens["tampered"]), want: authz.ReasonTokenInvalid},
		{name: "expired token", method: "GET", path: "/me", headers: bearer(w.tokens["expired"]), want: authz.ReasonTokenExpired},
		{name: "token from the future", method: "GET", path: "/me", headers: bearer(w.tokens["future"]),
			want: authz.ReasonTokenNotYetValid},
		{name: "token for another audience", method: "GET", path: "/me", headers: bearer(w.tokens["audience"]),
			want: authz.ReasonTokenClaimsInvalid},
		{name: "token of a revoked key", method: "GET", path: "/me", headers: bearer(w.tokens["revoked"]),
			want: authz.ReasonTokenRevoked},
		{name: "token of an unknown issuer", method: "GET", path: "/me", headers: bearer(w.tokens["issuer"]),
			want: authz.ReasonIssuerUnknown},

		// The session cookie (catalogue rows on sessions and CSRF).
		{name: "session cookie", method: "GET", path: read, headers: []string{"Cookie", "a=1; " + w.sessions["good"] + "; b=2"},
			want: authz.ReasonAllowed},
		{name: "session cookie, safe cross-site", method: "GET", path: read, headers: []string{"Cookie", w.sessions["good"],
			"Sec-Fetch-Site", "cross-site"}, want: authz.ReasonAllowed},
		{name: "session handle forged", method: "GET", path: "/me", headers: []string{"Cookie", authz.DefaultCookieName + "=us_forged"},
			want: authz.ReasonSessionInvalid},
		{name: "session expired", method: "GET", path: "/me", headers: []string{"Cookie", w.sessions["short"]}, at: 2 * time.Hour,
			want: authz.ReasonSessionExpired},
		{name: "session revoked", method: "GET", path: "/me", headers: []string{"Cookie", w.sessions["revoked"]},
			want: authz.ReasonSessionRevoked},
		{name: "two session cookies", method: "GET", path: "/me", headers: []string{"Cookie", w.sessions["good"] + "; " + w.sessions["good"]},
			want: authz.ReasonSessionDuplicate},
		{name: "unsafe cross-site with the cookie", method: "POST", path: read, headers: []string{"Cookie", w.sessions["good"],
			"Origin", "https://evil.test"}, want: authz.ReasonCSRF},

		// 403s.
		{name: "no permission", method: "GET", path: "/admin/users", headers: key, want: authz.ReasonPermissionDenied},
		{name: "write with a read-only key", method: "DELETE", path: read, headers: []string{"X-Api-Key", w.keys["acme/reader"]},
			want: authz.ReasonPermissionDenied},
		{name: "override to a method not allowed", method: "GET", path: read,
			headers: []string{"X-Api-Key", w.keys["acme/reader"], "X-HTTP-Method-Override", "DELETE"}, want: authz.ReasonPermissionDenied},
		{name: "no rule", method: "GET", path: "/nowhere", headers: key, want: authz.ReasonNoRoute},
		{name: "host of no rule", method: "GET", host: "other.example.test", path: read, headers: key, want: authz.ReasonNoRoute},
		{name: "another tenant in the path", method: "GET", path: "/tenants/globex/spaces/proj1/x", headers: key,
			want: authz.ReasonTenantMismatch},
		{name: "another tenant in the header", method: "GET", path: "/reports/q1",
			headers: with(key, "X-Tenant-Id", "globex", "X-Space-Id", "proj1"), want: authz.ReasonTenantMismatch},
		{name: "injected space mismatch", method: "GET", path: "/me", headers: []string{faultHeader, "space_mismatch"},
			want: authz.ReasonSpaceMismatch},

		// 5xx.
		{name: "store down", method: "GET", path: "/me", headers: []string{"X-Api-Key", w.keys["globex/ci"]}, storeDown: true,
			want: authz.ReasonStoreUnavailable},
		{name: "injected timeout (TestHTTPCheckDeadline has a real one)", method: "GET", path: "/me",
			headers: []string{faultHeader, "timeout"}, want: authz.ReasonTimeout},
		{name: "injected IdP outage", method: "GET", path: "/me", headers: []string{faultHeader, "issuer_unavailable"},
			want: authz.ReasonIssuerUnavailable},
		{name: "injected cancel", method: "GET", path: "/me", headers: []string{faultHeader, "canceled"}, want: authz.ReasonCanceled},
		{name: "injected config error", method: "GET", path: "/me", headers: []string{faultHeader, "config_invalid"},
			want: authz.ReasonConfigInvalid},
		{name: "panic", method: "GET", path: "/me", headers: []string{faultHeader, "panic"}, want: authz.ReasonInternal},
	}
	covered := map[authz.Reason]bool{}
	for _, tt := range tests {
		if tt.host == "" {
			tt.host = api
		}
		covered[tt.want] = true
		t.Run(tt.name, func(t *testing.T) {
			w.st.Fail.Store(tt.storeDown)
			w.clock.Set(storetest.Epoch.Add(tt.at))
			t.Cleanup(func() {
				w.clock.Set(storetest.Epoch)
				w.st.Fail.Store(false)
			})
			want := verdictOfGRPC(w.check(t, envoyRequest(tt.method, tt.host, tt.path, tt.headers...)))
			if got := reasonOf(want); got != tt.want {
				t.Fatalf("gRPC Check decided %s (%+v), want %s", got, want, tt.want)
			}
			for _, d := range httpDialects {
				got := verdictOfHTTP(t, roundTrip(t, w.addr, d.request(tt)))
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s differs from gRPC Check (-grpc +%s):\n%s", d.name, d.name, diff)
				}
			}
		})
	}
	for _, r := range authz.Reasons {
		if !covered[r] && r != authz.ReasonForwardedUntrusted { // HTTP check mode's own: TestHTTPForwardedTrust
			t.Errorf("no parity case for reason %s", r)
		}
	}
}

// reasonOf reads the reason of a verdict: a denial's from its body; an
// allow is allowed when it names someone, else public.
func reasonOf(v verdict) authz.Reason {
	if v.Status != 200 {
		return authz.Reason(reasonOfBody(v.Body))
	}
	if v.Set["x-usher-subject"] != "" {
		return authz.ReasonAllowed
	}
	return authz.ReasonPublic
}
