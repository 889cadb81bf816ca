package authz_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// TestCheck covers catalogue rows 3, 5, 9, 12, 88, 90, 91, 92, 100, 101, 102,
// 107 (docs/catalogue-map.md).
func TestCheck(t *testing.T) {
	w := newWorld(t)
	ci, reader, multi := w.keys["acme/ci"], w.keys["acme/reader"], w.keys["acme/multi"]
	const api = "api.example.test"
	ciSubject := "apikey:ciacmekeyaaaaaaa"
	acmeCI := storetest.FixtureKeys[0]
	wrongSecret := authz.FormatAPIKey("acme", acmeCI.ID, []byte(strings.Repeat("x", 32)))
	unknownID := authz.FormatAPIKey("acme", "zzzzzzzzzzzzzzzz", []byte(strings.Repeat("c", 32)))
	allowCI := outcome{200, authz.ReasonAllowed, ciSubject, "acme", authz.AuthAPIKey, "editors", []string{"x-api-key"}}
	deny := func(s int, r authz.Reason) outcome { return outcome{Status: s, Reason: r} }
	denyCI := func(r authz.Reason, seats string) outcome {
		return outcome{authz.StatusFor(r), r, ciSubject, "acme", authz.AuthAPIKey, seats, nil}
	}

	tests := []struct {
		name string
		req  *authz.Request
		want outcome
	}{
		{"allow read", get(api, "/spaces/proj1/datasets/a", "x-api-key", ci), allowCI},
		{"allow HEAD", req("HEAD", api, "/spaces/proj1/datasets/a", "x-api-key", ci), allowCI},
		{"allow write", req("POST", "any.host", "/spaces/proj1/datasets/a", "x-api-key", ci), allowCI},
		{"bearer sk_ key", get(api, "/spaces/proj1/datasets/a", "authorization", "Bearer "+ci),
			outcome{200, authz.ReasonAllowed, ciSubject, "acme", authz.AuthAPIKey, "editors", []string{"authorization"}}},
		{"host case and port", get("API.Example.Test:443", "/spaces/proj1/datasets/a", "x-api-key", ci), allowCI},
		{"host with a trailing dot", get("api.example.test.", "/spaces/proj1/datasets/a", "x-api-key", ci), allowCI},
		{"IPv6 host", get("[::1]:8443", "/me", "x-api-key", ci), allowCI},
		{"host with user info", get("evil@api.example.test", "/spaces/proj1/datasets/a", "x-api-key", ci), deny(400, authz.ReasonRequestInvalid)},
		{"host with a path", get("api.example.test/x", "/me", "x-api-key", ci), deny(400, authz.ReasonRequestInvalid)},
		{"host with a space", get("api.example.test x", "/me", "x-api-key", ci), deny(400, authz.ReasonRequestInvalid)},
		{"host with a colon in a name", get("a:b:c", "/me", "x-api-key", ci), deny(400, authz.ReasonRequestInvalid)},
		{"query is not the path", get(api, "/spaces/proj1/datasets/a?x=/admin", "x-api-key", ci), allowCI},
		{"reader cannot write", req("PUT", api, "/spaces/proj1/datasets/a", "x-api-key", reader),
			outcome{403, authz.ReasonPermissionDenied, "apikey:readeracmekeyaaa", "acme", authz.AuthAPIKey, "viewers", nil}},
		{"seats that matter in proj1", get(api, "/spaces/proj1/datasets/a", "x-api-key", multi),
			outcome{200, authz.ReasonAllowed, "apikey:multiacmekeyaaaa", "acme", authz.AuthAPIKey, "editors,viewers", []string{"x-api-key"}}},
		{"seats that matter in ops", get(api, "/admin/users", "x-api-key", multi),
			outcome{200, authz.ReasonAllowed, "apikey:multiacmekeyaaaa", "acme", authz.AuthAPIKey, "admins", []string{"x-api-key"}}},
		{"permission wildcard", req("DELETE", api, "/spaces/proj2/datasets/a", "x-api-key", multi),
			outcome{200, authz.ReasonAllowed, "apikey:multiacmekeyaaaa", "acme", authz.AuthAPIKey, "admins", []string{"x-api-key"}}},
		{"no grant in space", get(api, "/spaces/proj2/datasets/a", "x-api-key", ci), denyCI(authz.ReasonPermissionDenied, "")},
		{"space of another tenant's name", get(api, "/spaces/nope/datasets/a", "x-api-key", ci), denyCI(authz.ReasonPermissionDenied, "")},
		{"admin needs admin", get(api, "/admin/x", "x-api-key", ci), denyCI(authz.ReasonPermissionDenied, "")},
		{"dot segments are ambiguous", get(api, "/public/../admin/x", "x-api-key", ci), deny(400, authz.ReasonPathInvalid)},
		{"encoded dot segments are ambiguous", get(api, "/public/%2e%2E/admin/x", "x-api-key", ci), deny(400, authz.ReasonPathInvalid)},
		{"dot dot after a protected prefix", get(api, "/admin/..", "x-api-key", ci), deny(400, authz.ReasonPathInvalid)},
		{"escaped letters reach the admin rule", get(api, "/%61dmin/x", "x-api-key", ci), denyCI(authz.ReasonPermissionDenied, "")},
		{"method override to a stricter rule", get(api, "/spaces/proj1/datasets/a", "x-api-key", reader, "x-http-method-override", "DELETE"),
			outcome{403, authz.ReasonPermissionDenied, "apikey:readeracmekeyaaa", "acme", authz.AuthAPIKey, "viewers", nil}},
		{"method override, lower case", get(api, "/spaces/proj1/datasets/a", "x-api-key", reader, "x-method-override", "put"),
			outcome{403, authz.ReasonPermissionDenied, "apikey:readeracmekeyaaa", "acme", authz.AuthAPIKey, "viewers", nil}},
		{"method override allowed both ways", get(api, "/spaces/proj1/datasets/a", "x-api-key", ci, "x-http-method", "POST"), allowCI},
		{"method override not a method", get(api, "/spaces/proj1/datasets/a", "x-api-key", ci, "x-http-method-override", "DE LETE"), deny(400, authz.ReasonRequestInvalid)},
		{"path case matters by default", get(api, "/ADMIN/x", "x-api-key", ci), deny(403, authz.ReasonNoRoute)},
		{"lower-case method meets the write rule", req("post", api, "/spaces/proj1/datasets/a", "x-api-key", w.keys["acme/reader"]),
			outcome{403, authz.ReasonPermissionDenied, "apikey:readeracmekeyaaa", "acme", authz.AuthAPIKey, "viewers", nil}},
		{"double slash reaches the admin rule", get(api, "//admin//x", "x-api-key", ci), denyCI(authz.ReasonPermissionDenied, "")},
		{"authenticated route", get(api, "/me", "x-api-key", multi),
			outcome{200, authz.ReasonAllowed, "apikey:multiacmekeyaaaa", "acme", authz.AuthAPIKey, "admins,editors,viewers", []string{"x-api-key"}}},
		{"authenticated route, trailing slash", get(api, "/me/", "x-api-key", ci), allowCI},
		{"space from header", get(api, "/projects/x", "x-api-key", ci, "x-space-id", "proj1"), allowCI},
		{"space header missing", get(api, "/projects/x", "x-api-key", ci), denyCI(authz.ReasonSpaceMissing, "")},
		{"space header invalid", get(api, "/projects/x", "x-api-key", ci, "x-space-id", "../proj1"), denyCI(authz.ReasonSpaceInvalid, "")},
		{"space param invalid", get(api, "/spaces/a%20b/datasets/x", "x-api-key", ci), denyCI(authz.ReasonSpaceInvalid, "")},

		{"public without credential", get(api, "/public/x"), outcome{Status: 200, Reason: authz.ReasonPublic}},
		{"public ignores a bad credential, and strips it", get(api, "/public/x", "x-api-key", "garbage"), outcome{Status: 200, Reason: authz.ReasonPublic, Remove: []string{"x-api-key"}}},
		{"no rule", get(api, "/elsewhere", "x-api-key", ci), deny(403, authz.ReasonNoRoute)},
		{"method without rule", req("PATCH", api, "/spaces/proj1/datasets/a", "x-api-key", ci), deny(403, authz.ReasonNoRoute)},
		{"read rule is host-bound", get("other.test", "/spaces/proj1/datasets/a", "x-api-key", ci), deny(403, authz.ReasonNoRoute)},

		{"no credential", get(api, "/me"), deny(401, authz.ReasonCredentialMissing)},
		{"empty x-api-key", get(api, "/me", "x-api-key", ""), deny(401, authz.ReasonAPIKeyMalformed)},
		{"not a key", get(api, "/me", "x-api-key", "hunter2"), deny(401, authz.ReasonAPIKeyMalformed)},
		{"merged duplicate x-api-key", get(api, "/me", "x-api-key", ci+","+ci), deny(401, authz.ReasonAPIKeyMalformed)},
		{"key with trailing space", get(api, "/me", "x-api-key", ci+" "), deny(401, authz.ReasonAPIKeyMalformed)},
		{"key with NUL", get(api, "/me", "x-api-key", ci+"\x00"), deny(401, authz.ReasonAPIKeyMalformed)},
		{"key upper-cased prefix", get(api, "/me", "x-api-key", "SK_"+ci[3:]), deny(401, authz.ReasonAPIKeyMalformed)},
		{"wrong secret", get(api, "/me", "x-api-key", wrongSecret), deny(401, authz.ReasonAPIKeyInvalid)},
		{"unknown key id", get(api, "/me", "x-api-key", unknownID), deny(401, authz.ReasonAPIKeyInvalid)},
		{"tenant re-encoded", get(api, "/me", "x-api-key", reencode(t, acmeCI, "globex")), deny(401, authz.ReasonAPIKeyInvalid)},
		{"revoked key", get(api, "/me", "x-api-key", w.keys["acme/revoked"]), deny(401, authz.ReasonAPIKeyRevoked)},
		{"bad x-api-key never falls through", get(api, "/me", "x-api-key", "sk_bad", "authorization", "Bearer "+ci), deny(401, authz.ReasonAPIKeyMalformed)},
		{"x-api-key wins over authorization", get(api, "/me", "x-api-key", ci, "authorization", "Basic Zm9vOmJhcg=="), allowCI},
		{"basic auth", get(api, "/me", "authorization", "Basic Zm9vOmJhcg=="), deny(401, authz.ReasonUnsupportedCredential)},
		{"bearer JWT of no known issuer", get(api, "/me", "authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln"), deny(401, authz.ReasonIssuerUnknown)},
		{"bearer two tokens", get(api, "/me", "authorization", "Bearer "+ci+" "+ci), deny(401, authz.ReasonBearerMalformed)},
		{"bearer merged duplicates", get(api, "/me", "authorization", "Bearer "+ci+",Bearer "+ci), deny(401, authz.ReasonBearerMalformed)},
		{"bearer without token", get(api, "/me", "authorization", "Bearer"), deny(401, authz.ReasonBearerMalformed)},

		{"dot segments in a bad escape", get(api, "/spaces/proj1/datasets/%2F..", "x-api-key", ci), deny(400, authz.ReasonPathInvalid)},
		{"semicolon parameter", get(api, "/public/..;/admin", "x-api-key", ci), deny(400, authz.ReasonPathInvalid)},
		{"backslash", get(api, "/public\\..\\admin"), deny(400, authz.ReasonPathInvalid)},
		{"NUL escape", get(api, "/public/x%00"), deny(400, authz.ReasonPathInvalid)},
		{"relative path", get(api, "admin"), deny(400, authz.ReasonPathInvalid)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := outcomeOf(w.check(t, tt.req))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckRemovesSpoofedIdentityHeaders covers catalogue rows 93, 94
// (docs/catalogue-map.md).
func TestCheckRemovesSpoofedIdentityHeaders(t *testing.T) {
	w := newWorld(t)
	spoofs := []string{"x-usher-subject", "x-usher-tenant", "x-usher-email", "x-usher-auth", "x-usher-seats",
		"x_usher_subject", "x.usher.tenant", "x-usher_email", "X-Usher-Seats", "x-usher-anything-new"}
	headers := func(extra ...string) []string {
		var h []string
		for _, s := range spoofs {
			h = append(h, s, "admin")
		}
		return append(h, extra...)
	}
	tests := []struct {
		name string
		req  *authz.Request
		want []string
	}{
		{
			// Every variant goes, on a public route too.
			name: "public route",
			req:  get("api.example.test", "/public/x", headers()...),
			want: []string{"X-Usher-Seats", "x-usher-anything-new", "x-usher-auth", "x-usher-email", "x-usher-seats",
				"x-usher-subject", "x-usher-tenant", "x-usher_email", "x.usher.tenant", "x_usher_subject"},
		},
		{
			// The headers usher sets are overwritten, not removed; the
			// rest go, with the consumed key.
			name: "api key",
			req:  get("api.example.test", "/spaces/proj1/datasets/a", headers("x-api-key", w.keys["acme/ci"])...),
			want: []string{"X-Usher-Seats", "x-api-key", "x-usher-anything-new", "x-usher-email", "x-usher_email", "x.usher.tenant", "x_usher_subject"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := w.check(t, tt.req)
			if !d.Allowed() {
				t.Fatalf("denied: %s", d.Reason)
			}
			if diff := cmp.Diff(tt.want, d.Remove); diff != "" {
				t.Errorf("removed headers (-want +got):\n%s", diff)
			}
			set := map[string]string{}
			d.IdentityHeaders(func(k, v string) { set[k] = v })
			for k, v := range set {
				if v == "admin" {
					t.Errorf("header %s kept the client's value", k)
				}
			}
		})
	}
}

func TestCheckCaseInsensitiveRules(t *testing.T) {
	rules, err := authz.ParseRules("ci", []byte("case_insensitive: true\nrules:\n  - path: /admin/**\n    permission: admin\n    space: ops\n  - path: /**\n    authenticated: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, func(c *authz.Config) { c.Rules = rules })
	for _, p := range []string{"/admin/x", "/ADMIN/x", "/Admin/x"} {
		if d := w.check(t, get("x.test", p, "x-api-key", w.keys["acme/ci"])); d.Reason != authz.ReasonPermissionDenied {
			t.Errorf("%s: %s, want the admin rule's permission_denied", p, d.Reason)
		}
	}
}

// TestCheckKeepCredential covers catalogue row 10 (docs/catalogue-map.md).
func TestCheckKeepCredential(t *testing.T) {
	w := newWorld(t, func(c *authz.Config) { c.KeepCredential = true })
	d := w.check(t, get("api.example.test", "/spaces/proj1/datasets/a", "x-api-key", w.keys["acme/ci"]))
	if d.Status != 200 || len(d.Remove) != 0 {
		t.Errorf("got status %d, remove %q; want 200 and nothing removed", d.Status, d.Remove)
	}
}

// TestCheckContextExtensions covers catalogue row 101 (docs/catalogue-map.md).
func TestCheckContextExtensions(t *testing.T) {
	w := newWorld(t)
	ci, multi := w.keys["acme/ci"], w.keys["acme/multi"]
	tests := []struct {
		name string
		path string
		key  string
		ext  map[string]string
		want authz.Reason
	}{
		{"public route made protected", "/public/x", ci, map[string]string{"usher.permission": "admin", "usher.space": "ops"}, authz.ReasonPermissionDenied},
		{"protected by extension, allowed", "/public/x", multi, map[string]string{"usher.permission": "admin", "usher.space": "ops"}, authz.ReasonAllowed},
		{"no rule, made public", "/nowhere", "", map[string]string{"usher.public": "true"}, authz.ReasonPublic},
		{"no rule, made authenticated", "/nowhere", ci, map[string]string{"usher.authenticated": "true"}, authz.ReasonAllowed},
		{"rule's space param kept", "/spaces/proj1/datasets/x", ci, map[string]string{"usher.permission": "datasets.write"}, authz.ReasonAllowed},
		{"space from header", "/nowhere", ci, map[string]string{"usher.permission": "datasets.read", "usher.space_header": "x-space-id"}, authz.ReasonAllowed},
		{"invalid flag value", "/public/x", ci, map[string]string{"usher.public": "yes"}, authz.ReasonConfigInvalid},
		{"permission without space", "/nowhere", ci, map[string]string{"usher.permission": "datasets.read"}, authz.ReasonConfigInvalid},
		{"two kinds at once", "/nowhere", ci, map[string]string{"usher.public": "true", "usher.permission": "a"}, authz.ReasonConfigInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get("api.example.test", tt.path, "x-space-id", "proj1")
			if tt.key != "" {
				r.Headers["x-api-key"] = tt.key
			}
			r.ContextExtensions = tt.ext
			d := w.check(t, r)
			if d.Reason != tt.want {
				t.Errorf("reason = %s (cause %v), want %s", d.Reason, d.Cause, tt.want)
			}
			if tt.want == authz.ReasonConfigInvalid && (d.Status != 500 || d.Cause == nil) {
				t.Errorf("config_invalid: status %d cause %v; want 500 with a cause", d.Status, d.Cause)
			}
		})
	}
}

// TestFollowAppliesChanges covers catalogue row 8 (docs/catalogue-map.md).
func TestFollowAppliesChanges(t *testing.T) {
	w := newWorld(t)
	storetest.Follow(t, w.a, w.st.Store, 10*time.Millisecond)

	write := get("api.example.test", "/spaces/proj1/datasets/a", "x-api-key", w.keys["acme/reader"])
	write.Method = "POST"
	if d := w.check(t, write); d.Reason != authz.ReasonPermissionDenied {
		t.Fatalf("before the seat change: %s", d.Reason)
	}
	grants := []authz.Grant{{Space: "proj1", Permissions: []string{"datasets.read", "datasets.write"}}}
	if _, err := w.st.UpdateSeat(t.Context(), "acme", "viewers", store.SeatUpdate{Grants: &grants}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return w.check(t, write).Reason == authz.ReasonAllowed }, "the seat change to apply")

	key := get("api.example.test", "/me", "x-api-key", w.keys["acme/reader"])
	if _, err := w.st.RevokeAPIKey(t.Context(), "acme", "readeracmekeyaaa"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return w.check(t, key).Reason == authz.ReasonAPIKeyRevoked }, "the revocation to apply")
}

// TestFollowPurgesAfterAGap: a server that could not read the feed while
// its changes were pruned cannot know what changed, so it purges every
// cache.
// Catalogue row 8 (docs/catalogue-map.md).
func TestFollowPurgesAfterAGap(t *testing.T) {
	w := newWorld(t)
	r := get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("warm-up: %s", d.Reason)
	}
	pos, err := authz.Position(t.Context(), w.st.Store)
	if err != nil {
		t.Fatal(err)
	}
	// Revoke, then prune the revocation's record and all before it, as a
	// feed outage longer than changes_retention would.
	if _, err := w.st.RevokeAPIKey(t.Context(), "acme", "ciacmekeyaaaaaaa"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.CreateTenant(t.Context(), "later"); err != nil {
		t.Fatal(err)
	}
	if n, err := w.st.PruneChanges(t.Context(), w.clock.Now().Add(time.Hour)); err != nil || n == 0 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("still cached before following: %s", d.Reason)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.a.Follow(ctx, w.st.Store, 10*time.Millisecond, pos) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitFor(t, func() bool { return w.check(t, r).Reason == authz.ReasonAPIKeyRevoked }, "the purge after the gap")
}

// TestCheckStoreFailures covers catalogue row 111 (docs/catalogue-map.md).
func TestCheckStoreFailures(t *testing.T) {
	w := newWorld(t, func(c *authz.Config) {
		c.Cache.TTL = time.Minute
		c.Cache.StaleMax = 5 * time.Minute
	})
	ci := get("api.example.test", "/spaces/proj1/datasets/a", "x-api-key", w.keys["acme/ci"])
	reader := get("api.example.test", "/spaces/proj1/datasets/a", "x-api-key", w.keys["acme/reader"])

	// Cache ci's key and seat, then fail the store.
	if d := w.check(t, ci); d.Reason != authz.ReasonAllowed {
		t.Fatalf("warm-up: %s", d.Reason)
	}
	w.st.Fail.Store(true)

	// Nothing cached for reader: deny with 503.
	if d := w.check(t, reader); d.Status != 503 || d.Reason != authz.ReasonStoreUnavailable || !errors.Is(d.Cause, storetest.ErrInjected) {
		t.Errorf("uncached while failing: %d %s %v; want 503 store_unavailable caused by the injected failure", d.Status, d.Reason, d.Cause)
	}
	// Fresh cache: no store read at all.
	if d := w.check(t, ci); d.Reason != authz.ReasonAllowed {
		t.Errorf("cached while failing: %s", d.Reason)
	}
	// Past the TTL, within the stale bound: served stale.
	w.clock.Advance(3 * time.Minute)
	if d := w.check(t, ci); d.Reason != authz.ReasonAllowed {
		t.Errorf("stale within bound: %s", d.Reason)
	}
	if w.a.KeyCacheStats().Stale.Load() == 0 {
		t.Error("stale counter did not move")
	}
	// Past TTL+StaleMax: deny.
	w.clock.Advance(3*time.Minute + time.Second)
	if d := w.check(t, ci); d.Reason != authz.ReasonStoreUnavailable {
		t.Errorf("beyond the stale bound: %s, want store_unavailable", d.Reason)
	}
	// The store recovers: allowed again.
	w.st.Fail.Store(false)
	if d := w.check(t, ci); d.Reason != authz.ReasonAllowed {
		t.Errorf("after recovery: %s", d.Reason)
	}
}

// TestCheckStorePanicDenies covers catalogue row 85 (docs/catalogue-map.md).
func TestCheckStorePanicDenies(t *testing.T) {
	w := newWorld(t)
	w.st.Panic.Store(true)
	d := w.check(t, get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"]))
	if d.Status != 503 || d.Reason != authz.ReasonStoreUnavailable {
		t.Errorf("got %d %s, want 503 store_unavailable", d.Status, d.Reason)
	}
}

// TestCheckDeadline covers catalogue row 104 (docs/catalogue-map.md).
func TestCheckDeadline(t *testing.T) {
	w := newWorld(t)
	w.st.Delay.Store(int64(300 * time.Millisecond))
	r := get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if d := w.a.Check(ctx, r); d.Status != 503 || d.Reason != authz.ReasonTimeout {
		t.Fatalf("slow store: %d %s, want 503 timeout", d.Status, d.Reason)
	}
	cctx, ccancel := context.WithCancel(t.Context())
	ccancel()
	if d := w.a.Check(cctx, r); d.Reason != authz.ReasonCanceled {
		t.Errorf("canceled caller: %s, want canceled", d.Reason)
	}
	// The shared load outlives the caller's deadline and fills the cache.
	w.st.Delay.Store(0)
	waitFor(t, func() bool { return w.check(t, r).Reason == authz.ReasonAllowed }, "the slow load to fill the cache")
}

// TestCheckMissStormReadsOnce covers catalogue rows 6, 115 (docs/catalogue-map.md).
func TestCheckMissStormReadsOnce(t *testing.T) {
	w := newWorld(t)
	w.st.Delay.Store(int64(50 * time.Millisecond))
	r := get("api.example.test", "/spaces/proj1/datasets/a", "x-api-key", w.keys["acme/ci"])
	var wg sync.WaitGroup
	var allowed atomic.Int64
	for range 64 {
		wg.Go(func() {
			if w.a.Check(t.Context(), r).Allowed() {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 64 {
		t.Errorf("%d of 64 allowed", allowed.Load())
	}
	if k, s := w.st.KeyReads.Load(), w.st.SeatReads.Load(); k != 1 || s != 1 {
		t.Errorf("store reads: %d key, %d seat; want 1 each", k, s)
	}
}
