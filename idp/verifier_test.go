package idp_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/idp"
	"github.com/usher-dev/usher/internal/testclock"
	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

const rules = `
rules:
  - path: /spaces/{space}/datasets/**
    permission: datasets.read
  - path: /me
    authenticated: true
`

// world is usher with the real store, trusting a provider served over
// HTTP on loopback.
type world struct {
	a     *authz.Authorizer
	v     *idp.Verifier
	st    *store.Store
	idp   *testidp.Provider
	rsa   testidp.Key
	ec    testidp.Key
	clock *testclock.Clock
}

func newWorld(t *testing.T, groupsClaim string) *world {
	t.Helper()
	clock := testclock.New(time.Now().Truncate(time.Second))
	st := storetest.Open(t, clock.Now)
	storetest.Seed(t, st)
	w := &world{st: st, clock: clock, rsa: testidp.NewRSAKey(t, "rsa-1"), ec: testidp.NewECKey(t, "ec-1")}
	w.idp = testidp.Start(t, w.rsa, w.ec)
	if _, err := st.AddIssuer(t.Context(), store.Issuer{Tenant: "acme", Issuer: w.idp.URL, Audience: "api://usher", GroupsClaim: groupsClaim}); err != nil {
		t.Fatal(err)
	}
	w.v = idp.New(idp.Config{Lookup: lookup(st), Leeway: 30 * time.Second, Now: clock.Now})
	r, err := authz.ParseRules("rules", []byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	w.a, err = authz.New(authz.Config{Rules: r, Keys: st, Seats: st, External: w.v, SeatLister: st,
		Cache: authz.DefaultCacheConfig(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.a.Close)
	return w
}

func lookup(st *store.Store) idp.Lookup {
	return idp.LookupFunc(func(ctx context.Context) ([]idp.Trust, error) {
		is, err := st.AllIssuers(ctx)
		var out []idp.Trust
		for _, x := range is {
			out = append(out, idp.Trust{Tenant: x.Tenant, Issuer: x.Issuer, Audience: x.Audience, GroupsClaim: x.GroupsClaim,
				TokenType: x.TokenType, ClientIDs: x.ClientIDs, MatchGroupNames: x.MatchGroupNames})
		}
		return out, err
	})
}

// apply applies every change so far, as a running server's feed would.
func (w *world) apply(t *testing.T) {
	t.Helper()
	changes, err := w.st.ChangesAfter(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		w.a.Apply(c)
	}
}

// check sends a bearer token to path and returns the decision.
func (w *world) check(t *testing.T, path, token string) authz.Decision {
	t.Helper()
	return w.a.Check(t.Context(), &authz.Request{Method: "GET", Host: "api.example.test", Path: path,
		Headers: map[string]string{"authorization": "Bearer " + token}})
}

type outcome struct {
	Status  int
	Reason  authz.Reason
	Subject string
	Tenant  string
	Seats   string
}

func outcomeOf(d authz.Decision) outcome {
	return outcome{d.Status, d.Reason, d.Identity.Subject, d.Identity.Tenant, d.Seats}
}

func denial(r authz.Reason) outcome { return outcome{Status: authz.StatusFor(r), Reason: r} }

func (w *world) claims(extra map[string]any) map[string]any {
	c := w.idp.Claims("user-42", "api://usher", w.clock.Now())
	c["memberOf"] = []any{"CN=viewers,OU=groups", "unrelated"}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// hmacWithPublicKey signs HS256 with the provider's RSA public key as the
// secret: the algorithm confusion attack.
func hmacWithPublicKey(t *testing.T, key testidp.Key, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Private.Public())
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	enc := base64.RawURLEncoding
	payload, _ := json.Marshal(claims)
	signing := enc.EncodeToString([]byte(`{"alg":"HS256","kid":"`+key.ID+`","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// TestCheckIdPToken covers catalogue rows 13, 14, 16, 17, 18, 26, 69
// (docs/catalogue-map.md).
func TestCheckIdPToken(t *testing.T) {
	w := newWorld(t, "memberOf")
	now := w.clock.Now()
	sign := func(k testidp.Key, c map[string]any) string { return testidp.Sign(t, k, c, nil) }
	allowed := outcome{200, authz.ReasonAllowed, "user-42", "acme", "viewers"}
	other := testidp.NewRSAKey(t, "rsa-1") // same kid, not the provider's key
	enc := base64.RawURLEncoding
	noneToken := enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString([]byte(`{"iss":"`+w.idp.URL+`"}`)) + "."

	tests := []struct {
		name  string
		token string
		want  outcome
	}{
		{"RS256", sign(w.rsa, w.claims(nil)), allowed},
		{"ES256", sign(w.ec, w.claims(nil)), allowed},
		{"signed with another key of the same kid", sign(other, w.claims(nil)), denial(authz.ReasonTokenInvalid)},
		{"RS256 to HS256 with the public key", hmacWithPublicKey(t, w.rsa, w.claims(nil)), denial(authz.ReasonTokenInvalid)},
		{"alg none", noneToken, denial(authz.ReasonTokenMalformed)},
		{"expired", sign(w.rsa, w.claims(map[string]any{"exp": now.Add(-time.Hour).Unix()})), denial(authz.ReasonTokenExpired)},
		{"expired within leeway", sign(w.rsa, w.claims(map[string]any{"exp": now.Add(-10 * time.Second).Unix()})), allowed},
		{"expired and signed by another key", sign(other, w.claims(map[string]any{"exp": now.Add(-time.Hour).Unix()})), denial(authz.ReasonTokenInvalid)},
		{"no exp", sign(w.rsa, w.claims(map[string]any{"exp": nil})), denial(authz.ReasonTokenClaimsInvalid)},
		{"nbf in the future", sign(w.rsa, w.claims(map[string]any{"nbf": now.Add(2 * time.Minute).Unix()})), denial(authz.ReasonTokenNotYetValid)},
		{"iat in the future", sign(w.rsa, w.claims(map[string]any{"iat": now.Add(2 * time.Minute).Unix()})), denial(authz.ReasonTokenNotYetValid)},
		{"wrong audience", sign(w.rsa, w.claims(map[string]any{"aud": "api://other"})), denial(authz.ReasonTokenClaimsInvalid)},
		{"audience with trailing slash", sign(w.rsa, w.claims(map[string]any{"aud": "api://usher/"})), denial(authz.ReasonTokenClaimsInvalid)},
		{"audience in other case", sign(w.rsa, w.claims(map[string]any{"aud": "API://usher"})), denial(authz.ReasonTokenClaimsInvalid)},
		{"audience among others", sign(w.rsa, w.claims(map[string]any{"aud": []string{"x", "api://usher"}})), allowed},
		{"issuer with trailing slash", sign(w.rsa, w.claims(map[string]any{"iss": w.idp.URL + "/"})), denial(authz.ReasonIssuerUnknown)},
		{"issuer in other case", sign(w.rsa, w.claims(map[string]any{"iss": strings.ToUpper(w.idp.URL)})), denial(authz.ReasonIssuerUnknown)},
		{"no subject", sign(w.rsa, w.claims(map[string]any{"sub": nil})), denial(authz.ReasonTokenClaimsInvalid)},
		{"duplicate claim", duplicateSub(t, w), denial(authz.ReasonTokenMalformed)},
		{"groups not strings", sign(w.rsa, w.claims(map[string]any{"memberOf": []any{1, 2}})), denial(authz.ReasonTokenClaimsInvalid)},
		{"no groups: no seats", sign(w.rsa, w.claims(map[string]any{"memberOf": nil})), outcome{403, authz.ReasonPermissionDenied, "user-42", "acme", ""}},
		{"overage: no seats, never all", sign(w.rsa, w.claims(map[string]any{"memberOf": nil,
			"_claim_names": map[string]any{"groups": "src1"}, "_claim_sources": map[string]any{"src1": map[string]any{"endpoint": "https://graph.example/x"}}})),
			outcome{403, authz.ReasonPermissionDenied, "user-42", "acme", ""}},
		{"seat name is no group alias", sign(w.rsa, w.claims(map[string]any{"memberOf": []any{"editors"}})), outcome{403, authz.ReasonPermissionDenied, "user-42", "acme", ""}},
		{"group as a single string", sign(w.rsa, w.claims(map[string]any{"memberOf": "CN=viewers,OU=groups"})), allowed},
		{"2000 groups", sign(w.rsa, w.claims(map[string]any{"memberOf": manyGroups(2000)})), denial(authz.ReasonTokenClaimsInvalid)},
		{"1000 groups", sign(w.rsa, w.claims(map[string]any{"memberOf": append(manyGroups(999), "CN=viewers,OU=groups")})), allowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, outcomeOf(w.check(t, "/spaces/proj1/datasets/x", tt.token))); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
	// The overage token is still a valid identity.
	over := sign(w.rsa, w.claims(map[string]any{"memberOf": nil, "_claim_names": map[string]any{"groups": "src1"},
		"_claim_sources": map[string]any{"src1": map[string]any{"endpoint": "https://graph.example/x"}}}))
	if d := w.check(t, "/me", over); d.Reason != authz.ReasonAllowed || d.Seats != "" {
		t.Errorf("overage on an authenticated route: %s, seats %q", d.Reason, d.Seats)
	}
}

func manyGroups(n int) []any {
	g := make([]any, n)
	for i := range g {
		g[i] = fmt.Sprintf("g%d", i)
	}
	return g
}

// duplicateSub is a correctly signed token whose payload names sub twice.
func duplicateSub(t *testing.T, w *world) string {
	t.Helper()
	c, err := json.Marshal(w.claims(nil))
	if err != nil {
		t.Fatal(err)
	}
	payload := strings.Replace(string(c), `"sub":"user-42"`, `"sub":"user-42","sub":"admin"`, 1)
	return testidp.SignRaw(t, w.rsa, []byte(payload), nil)
}

// TestGroupsClaims covers catalogue row 70 (docs/catalogue-map.md).
func TestGroupsClaims(t *testing.T) {
	tests := []struct {
		claim  string
		groups any
	}{
		{"memberOf", []any{"CN=viewers,OU=groups"}},
		{"groups", []any{"CN=viewers,OU=groups"}},
		{"roles", "CN=viewers,OU=groups"},
		{"realm_access.roles", map[string]any{"roles": []any{"CN=viewers,OU=groups"}}},
	}
	for _, tt := range tests {
		t.Run(tt.claim, func(t *testing.T) {
			w := newWorld(t, tt.claim)
			head, _, _ := strings.Cut(tt.claim, ".")
			tok := testidp.Sign(t, w.rsa, w.claims(map[string]any{"memberOf": nil, head: tt.groups}), nil)
			if d := w.check(t, "/spaces/proj1/datasets/x", tok); d.Reason != authz.ReasonAllowed || d.Seats != "viewers" {
				t.Errorf("%s: %s, seats %q", tt.claim, d.Reason, d.Seats)
			}
		})
	}
}

// TestKeyURLHeadersIgnored: a token naming its own keys (jku, x5u, jwk,
// x5c) is verified with the provider's key set only; no URL it names is
// fetched, nor the provider's keys again.
// Catalogue row 21 (docs/catalogue-map.md).
func TestKeyURLHeadersIgnored(t *testing.T) {
	w := newWorld(t, "memberOf")
	var hits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer attacker.Close()
	evil := testidp.NewRSAKey(t, "rsa-1")
	hdr := map[string]any{"jku": attacker.URL + "/jwks", "x5u": attacker.URL + "/x5u", "jwk": evil.Public(), "x5c": []string{selfSigned(t, evil)}}
	if d := w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(nil), hdr)); d.Reason != authz.ReasonAllowed {
		t.Errorf("provider's key with extra headers: %s", d.Reason)
	}
	before := w.idp.KeySetHits.Load()
	if d := w.check(t, "/me", testidp.Sign(t, evil, w.claims(map[string]any{"sub": "x"}), hdr)); d.Reason != authz.ReasonTokenInvalid {
		t.Errorf("attacker's key named by the headers: %s", d.Reason)
	}
	junk := testidp.Sign(t, w.rsa, w.claims(nil), map[string]any{"x5c": []string{"MIIB"}})
	if d := w.check(t, "/me", junk); d.Reason != authz.ReasonTokenInvalid {
		t.Errorf("an x5c that is no certificate: %s", d.Reason)
	}
	if hits.Load() != 0 || w.idp.KeySetHits.Load() != before || w.idp.OtherHits.Load() != 0 {
		t.Errorf("fetches: attacker %d, key set %d more, other %d", hits.Load(), w.idp.KeySetHits.Load()-before, w.idp.OtherHits.Load())
	}
}

// selfSigned returns a base64 DER certificate for key, as x5c carries it.
func selfSigned(t *testing.T, key testidp.Key) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evil"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Private.Public(), key.Private)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// TestProviderDownAndRotation covers catalogue rows 116, 117 (docs/catalogue-map.md).
func TestProviderDownAndRotation(t *testing.T) {
	w := newWorld(t, "memberOf")
	known := testidp.Sign(t, w.rsa, w.claims(nil), nil)
	if d := w.check(t, "/me", known); d.Reason != authz.ReasonAllowed {
		t.Fatalf("warm-up: %s", d.Reason)
	}
	w.idp.SetDown(true)
	// A new token with a known kid verifies from the cached keys.
	w.clock.Advance(time.Minute)
	fresh := testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": "user-43"}), nil)
	if d := w.check(t, "/me", fresh); d.Reason != authz.ReasonAllowed {
		t.Errorf("known kid while the provider is down: %s", d.Reason)
	}
	// An unknown kid cannot be fetched: 503, not a wrong 401.
	rotated := testidp.NewRSAKey(t, "rsa-2")
	next := testidp.Sign(t, rotated, w.claims(map[string]any{"sub": "user-44"}), nil)
	if d := w.check(t, "/me", next); d.Status != 503 || d.Reason != authz.ReasonIssuerUnavailable {
		t.Errorf("unknown kid while the provider is down: %d %s", d.Status, d.Reason)
	}
	// The provider comes back having rotated to rsa-2.
	w.idp.SetDown(false)
	w.idp.SetKeys(rotated, w.ec)
	w.clock.Advance(31 * time.Second)
	next2 := testidp.Sign(t, rotated, w.claims(map[string]any{"sub": "user-45"}), nil)
	if d := w.check(t, "/me", next2); d.Reason != authz.ReasonAllowed {
		t.Errorf("after the IdP rotated its key: %s", d.Reason)
	}
}

// TestUnknownKidFloodFetchesOncePer30s covers catalogue rows 117, 124
// (docs/catalogue-map.md).
func TestUnknownKidFloodFetchesOncePer30s(t *testing.T) {
	w := newWorld(t, "memberOf")
	if d := w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(nil), nil)); d.Reason != authz.ReasonAllowed {
		t.Fatalf("warm-up: %s", d.Reason)
	}
	base := w.idp.KeySetHits.Load()
	flood := func(n int) {
		for i := range n {
			k := testidp.Key{ID: fmt.Sprintf("made-up-%d-%d", w.clock.Now().Unix(), i), Alg: w.rsa.Alg, Private: w.rsa.Private}
			if d := w.check(t, "/me", testidp.Sign(t, k, w.claims(map[string]any{"sub": fmt.Sprint(i)}), nil)); d.Reason != authz.ReasonTokenInvalid {
				t.Fatalf("made-up kid: %s", d.Reason)
			}
		}
	}
	// The warm-up fetched the keys just now: no fetch for 30s.
	flood(50)
	if got := w.idp.KeySetHits.Load() - base; got != 0 {
		t.Errorf("50 unknown kids right after a fetch made %d fetches; want 0", got)
	}
	w.clock.Advance(30 * time.Second)
	flood(50)
	if got := w.idp.KeySetHits.Load() - base; got != 1 {
		t.Errorf("50 unknown kids 30s later made %d fetches; want 1", got)
	}
	w.clock.Advance(29 * time.Second)
	flood(20)
	if got := w.idp.KeySetHits.Load() - base; got != 1 {
		t.Errorf("29s after that: %d fetches; want still 1", got)
	}
	w.clock.Advance(2 * time.Second)
	flood(20)
	if got := w.idp.KeySetHits.Load() - base; got != 2 {
		t.Errorf("31s after that: %d fetches; want 2", got)
	}
}

func TestTrustChanges(t *testing.T) {
	w := newWorld(t, "memberOf")
	tok := testidp.Sign(t, w.rsa, w.claims(nil), nil)
	if d := w.check(t, "/me", tok); d.Reason != authz.ReasonAllowed {
		t.Fatalf("trusted: %s", d.Reason)
	}
	// globex trusts the same issuer for another audience: tokens go to the
	// tenant whose audience they carry. (Its groups match seats by name.)
	if _, err := w.st.AddIssuer(t.Context(), store.Issuer{Tenant: "globex", Issuer: w.idp.URL, Audience: "api://globex", GroupsClaim: "groups", MatchGroupNames: true}); err != nil {
		t.Fatal(err)
	}
	w.apply(t)
	g := testidp.Sign(t, w.rsa, w.claims(map[string]any{"aud": "api://globex", "groups": []any{"editors"}}), nil)
	if d := w.check(t, "/spaces/proj1/datasets/x", g); d.Reason != authz.ReasonAllowed || d.Identity.Tenant != "globex" || d.Seats != "editors" {
		t.Errorf("globex token: %s tenant %s seats %q", d.Reason, d.Identity.Tenant, d.Seats)
	}
	if d := w.check(t, "/me", tok); d.Identity.Tenant != "acme" {
		t.Errorf("acme token now goes to %q", d.Identity.Tenant)
	}
	// Both trust one audience: ambiguous, refused.
	if err := w.st.RemoveIssuer(t.Context(), "globex", w.idp.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.AddIssuer(t.Context(), store.Issuer{Tenant: "globex", Issuer: w.idp.URL, Audience: "api://usher", GroupsClaim: "groups"}); err != nil {
		t.Fatal(err)
	}
	w.apply(t)
	if d := w.check(t, "/me", tok); d.Reason != authz.ReasonTokenClaimsInvalid {
		t.Errorf("audience trusted by two tenants: %s", d.Reason)
	}
	// Nobody trusts it any more.
	for _, tenant := range []string{"acme", "globex"} {
		if err := w.st.RemoveIssuer(t.Context(), tenant, w.idp.URL); err != nil {
			t.Fatal(err)
		}
	}
	w.apply(t)
	if d := w.check(t, "/me", tok); d.Reason != authz.ReasonIssuerUnknown {
		t.Errorf("issuer removed: %s", d.Reason)
	}
}

func TestCheckIssuerURL(t *testing.T) {
	tests := []struct {
		url     string
		warning bool
		err     string
	}{
		{"https://login.example.com/tenant/v2.0", false, ""},
		{"http://127.0.0.1:5556", true, ""},
		{"http://localhost:5556/realms/x", true, ""},
		{"http://[::1]:5556", true, ""},
		{"http://idp.example.com", false, "must be https"},
		{"http://10.0.0.1", false, "must be https"},
		{"ftp://idp.example.com", false, "must be https"},
		{"https://user:pw@idp.example.com", false, "no user info"},
		{"https://idp.example.com?x=1", false, "no user info, query or fragment"},
		{"https://idp.example.com#f", false, "no user info, query or fragment"},
		{"/relative", false, "not an absolute URL"},
		{"", false, "not an absolute URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			warning, err := idp.CheckIssuerURL(tt.url)
			if (warning != "") != tt.warning || (tt.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Errorf("CheckIssuerURL = %q, %v; want warning %v, error %q", warning, err, tt.warning, tt.err)
			}
		})
	}
}

// TestDiscover covers catalogue rows 14, 57 (docs/catalogue-map.md).
func TestDiscover(t *testing.T) {
	p := testidp.Start(t, testidp.NewRSAKey(t, "k"))
	p.Algs = []string{"HS256", "RS256", "ES384", "none"}
	d, err := idp.Discover(t.Context(), idp.NewClient(5*time.Second), p.URL)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"RS256", "ES384"}, d.Algorithms); diff != "" {
		t.Errorf("algorithms (-want +got): %s", diff)
	}
	if d.JWKSURL != p.URL+"/jwks" {
		t.Errorf("jwks_uri %s", d.JWKSURL)
	}
	p.IssuerOverride = p.URL + "/"
	if _, err := idp.Discover(t.Context(), idp.NewClient(5*time.Second), p.URL); err == nil || !strings.Contains(err.Error(), "configure exactly that") {
		t.Errorf("issuer mismatch: %v", err)
	}
	p.SetDown(true)
	if _, err := idp.Discover(t.Context(), idp.NewClient(5*time.Second), p.URL); err == nil || !strings.Contains(err.Error(), "discovery") {
		t.Errorf("down: %v", err)
	}
}

// TestWithdrawnKeyStopsVerifying: a key the provider drops from its key set
// (while its successor was already published) stops verifying once the
// set is refreshed, at most an hour later.
// Catalogue row 117 (docs/catalogue-map.md).
func TestWithdrawnKeyStopsVerifying(t *testing.T) {
	w := newWorld(t, "memberOf")
	if d := w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(nil), nil)); d.Reason != authz.ReasonAllowed {
		t.Fatalf("warm-up: %s", d.Reason)
	}
	w.idp.SetKeys(w.ec) // the RSA key is withdrawn
	w.clock.Advance(30 * time.Minute)
	if d := w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": "a"}), nil)); d.Reason != authz.ReasonAllowed {
		t.Errorf("within the refresh period the known key still verifies: %s", d.Reason)
	}
	w.clock.Advance(30 * time.Minute)
	if d := w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": "b"}), nil)); d.Reason != authz.ReasonTokenInvalid {
		t.Errorf("an hour later the withdrawn key: %s", d.Reason)
	}
	if d := w.check(t, "/me", testidp.Sign(t, w.ec, w.claims(map[string]any{"sub": "c"}), nil)); d.Reason != authz.ReasonAllowed {
		t.Errorf("the key still published: %s", d.Reason)
	}
}

// TestIssuerRemovalNotLostToInflightRead removes an issuer while a read of
// the trusts, begun before, is still in flight: what that read brings back
// must not be kept, or the removed trust would live on.
// Catalogue row 110 (docs/catalogue-map.md).
func TestIssuerRemovalNotLostToInflightRead(t *testing.T) {
	w := newWorld(t, "memberOf")
	readDone, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	inner := lookup(w.st)
	w.withVerifier(t, idp.Config{Lookup: idp.LookupFunc(func(ctx context.Context) ([]idp.Trust, error) {
		ts, err := inner.Trusts(ctx)
		if held.CompareAndSwap(false, true) {
			close(readDone)
			<-release
		}
		return ts, err
	})})

	done := make(chan authz.Decision, 1)
	go func() { done <- w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": "u1"}), nil)) }()
	<-readDone
	if err := w.st.RemoveIssuer(t.Context(), "acme", w.idp.URL); err != nil {
		t.Fatal(err)
	}
	w.apply(t)
	close(release)
	<-done
	if d := w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": "attacker"}), nil)); d.Reason != authz.ReasonIssuerUnknown {
		t.Errorf("a token first seen after the removal: %s", d.Reason)
	}
}

// TestEmailOnlyWhenVerified: the IdP's email goes upstream only when the
// IdP says it verified it; some IdPs let users set their own.
// Catalogue row 60 (docs/catalogue-map.md).
func TestEmailOnlyWhenVerified(t *testing.T) {
	w := newWorld(t, "memberOf")
	tests := []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"verified", map[string]any{"email": "alice@acme.test", "email_verified": true}, "alice@acme.test"},
		{"unverified", map[string]any{"email": "alice@acme.test", "email_verified": false}, ""},
		{"no verdict", map[string]any{"email": "alice@acme.test"}, ""},
		{"verdict as a string", map[string]any{"email": "alice@acme.test", "email_verified": "true"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.claims["sub"] = "user-" + tt.name
			d := w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(tt.claims), nil))
			if d.Reason != authz.ReasonAllowed || d.Identity.Email != tt.want || d.Identity.Issuer != w.idp.URL {
				t.Errorf("%s: email %q issuer %q, want %q and %s", d.Reason, d.Identity.Email, d.Identity.Issuer, tt.want, w.idp.URL)
			}
		})
	}
}
