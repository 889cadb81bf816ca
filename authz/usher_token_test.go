package authz_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// keyring rotates a signing key for each fixture tenant and returns the
// active keys (with secrets) by tenant.
func (w *world) keyring(t testing.TB) map[string]authz.SigningKey {
	t.Helper()
	keys := map[string]authz.SigningKey{}
	for _, tenant := range []string{"acme", "globex"} {
		if _, _, err := w.st.RotateSigningKey(t.Context(), tenant, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		k, err := w.st.ActiveSigningKey(t.Context(), tenant)
		if err != nil {
			t.Fatal(err)
		}
		keys[tenant] = k
	}
	return keys
}

// mint signs a well-formed access token the way `usher token mint` does.
func mint(t testing.TB, key authz.SigningKey, now time.Time, ttl time.Duration, hashPerm map[string]string) string {
	t.Helper()
	tok, err := authz.MintAccessToken(authz.DefaultTokenConfig(), key, authz.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: "alice"},
		Email:            "alice@acme.test",
		HashPerm:         hashPerm,
	}, now, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// forge signs raw header and payload JSON (so that anything, even repeated
// names, can be sent) with an HMAC of hash h.
func forge(h func() hash.Hash, secret []byte, header, payload string) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(h, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// claimsJSON renders claims for forge, with the usual ones filled in.
func claimsJSON(t testing.TB, now time.Time, override map[string]any) string {
	t.Helper()
	c := map[string]any{
		"iss": "usher", "aud": []string{"usher"}, "sub": "alice", "tenant_id": "acme",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"hash_perm": map[string]string{"proj1": "editors"},
	}
	for k, v := range override {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func denial(r authz.Reason) outcome { return outcome{Status: authz.StatusFor(r), Reason: r} }

// unsigned is a token with an empty signature.
func unsigned(header, payload string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "."
}

func header(kid string, extra string) string {
	return `{"alg":"HS256","kid":"` + kid + `","typ":"at+jwt"` + extra + `}`
}

// TestCheckUsherToken covers catalogue rows 12, 13, 15, 16, 17, 18, 19, 20,
// 23, 25, 26, 27, 28, 29, 71, 122 (docs/catalogue-map.md).
func TestCheckUsherToken(t *testing.T) {
	w := newWorld(t)
	keys := w.keyring(t)
	acme, globex := keys["acme"], keys["globex"]
	now := w.clock.Now()
	good := mint(t, acme, now, time.Hour, map[string]string{"proj1": "editors", "ops": "admins"})
	bearer := func(tok string) *authz.Request {
		return get("api.example.test", "/spaces/proj1/datasets/a", "authorization", "Bearer "+tok)
	}
	hs := func(hdr, payload string) string { return forge(sha256.New, acme.Secret, hdr, payload) }
	claims := func(o map[string]any) string { return claimsJSON(t, now, o) }
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es256, _ := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "usher", "aud": "usher", "sub": "alice",
		"tenant_id": "acme", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}).SignedString(ec)

	tests := []struct {
		name string
		req  *authz.Request
		want outcome
	}{
		{"valid token", bearer(good), outcome{200, authz.ReasonAllowed, "alice", "acme", authz.AuthJWT, "editors", []string{"authorization"}}},
		{"lower-case scheme, two spaces", get("api.example.test", "/spaces/proj1/datasets/a", "authorization", "bearer  "+good),
			outcome{200, authz.ReasonAllowed, "alice", "acme", authz.AuthJWT, "editors", []string{"authorization"}}},
		{"seat of another space", get("api.example.test", "/admin/x", "authorization", "Bearer "+good),
			outcome{200, authz.ReasonAllowed, "alice", "acme", authz.AuthJWT, "admins", []string{"authorization"}}},
		{"no seat in the space", get("api.example.test", "/spaces/proj2/datasets/a", "authorization", "Bearer "+good),
			outcome{403, authz.ReasonPermissionDenied, "alice", "acme", authz.AuthJWT, "", nil}},
		{"authenticated route lists all seats", get("api.example.test", "/me", "authorization", "Bearer "+good),
			outcome{200, authz.ReasonAllowed, "alice", "acme", authz.AuthJWT, "admins,editors", []string{"authorization"}}},
		{"hand-made but right", bearer(hs(header(acme.ID, ""), claims(nil))), outcome{200, authz.ReasonAllowed, "alice", "acme", authz.AuthJWT, "editors", []string{"authorization"}}},

		{"alg none, no signature", bearer(unsigned(`{"alg":"none","typ":"at+jwt"}`, claims(nil))), denial(authz.ReasonTokenMalformed)},
		{"alg none, junk signature", bearer(unsigned(`{"alg":"none","typ":"at+jwt","kid":"`+acme.ID+`"}`, claims(nil)) + "c2ln"), denial(authz.ReasonTokenInvalid)},
		{"alg None with a signature", bearer(hs(`{"alg":"None","kid":"`+acme.ID+`","typ":"at+jwt"}`, claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"alg HS384", bearer(forge(sha512.New384, acme.Secret, `{"alg":"HS384","kid":"`+acme.ID+`","typ":"at+jwt"}`, claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"alg HS512", bearer(forge(sha512.New, acme.Secret, `{"alg":"HS512","kid":"`+acme.ID+`","typ":"at+jwt"}`, claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"alg ES256", bearer(es256), denial(authz.ReasonTokenInvalid)},
		{"wrong secret", bearer(forge(sha256.New, globex.Secret, header(acme.ID, ""), claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"expired and bad signature", bearer(forge(sha256.New, globex.Secret, header(acme.ID, ""), claims(map[string]any{"exp": now.Add(-time.Hour).Unix()}))), denial(authz.ReasonTokenInvalid)},
		{"expired", bearer(hs(header(acme.ID, ""), claims(map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()}))), denial(authz.ReasonTokenExpired)},
		{"expired within leeway", bearer(hs(header(acme.ID, ""), claims(map[string]any{"exp": now.Add(-10 * time.Second).Unix()}))),
			outcome{200, authz.ReasonAllowed, "alice", "acme", authz.AuthJWT, "editors", []string{"authorization"}}},
		{"missing exp", bearer(hs(header(acme.ID, ""), claims(map[string]any{"exp": nil}))), denial(authz.ReasonTokenClaimsInvalid)},
		{"missing iat", bearer(hs(header(acme.ID, ""), claims(map[string]any{"iat": nil}))), denial(authz.ReasonTokenClaimsInvalid)},
		{"missing sub", bearer(hs(header(acme.ID, ""), claims(map[string]any{"sub": nil}))), denial(authz.ReasonTokenClaimsInvalid)},
		{"exp as a string", bearer(hs(header(acme.ID, ""), claims(map[string]any{"exp": "9999999999"}))), denial(authz.ReasonTokenClaimsInvalid)},
		{"nbf in the future", bearer(hs(header(acme.ID, ""), claims(map[string]any{"nbf": now.Add(time.Minute).Unix()}))), denial(authz.ReasonTokenNotYetValid)},
		{"iat in the future", bearer(hs(header(acme.ID, ""), claims(map[string]any{"iat": now.Add(time.Minute).Unix()}))), denial(authz.ReasonTokenNotYetValid)},
		// docs/security-catalogue.md row 25: past the leeway either way.
		{"exp 90s ago", bearer(hs(header(acme.ID, ""), claims(map[string]any{"iat": now.Add(-time.Hour).Unix(), "exp": now.Add(-90 * time.Second).Unix()}))), denial(authz.ReasonTokenExpired)},
		{"iat 10 min ahead", bearer(hs(header(acme.ID, ""), claims(map[string]any{"iat": now.Add(10 * time.Minute).Unix(), "exp": now.Add(time.Hour).Unix()}))), denial(authz.ReasonTokenNotYetValid)},
		{"lifetime over the cap", bearer(hs(header(acme.ID, ""), claims(map[string]any{"exp": now.Add(48 * time.Hour).Unix()}))), denial(authz.ReasonTokenClaimsInvalid)},
		{"wrong audience", bearer(hs(header(acme.ID, ""), claims(map[string]any{"aud": "other"}))), denial(authz.ReasonTokenClaimsInvalid)},
		{"audience with trailing slash", bearer(hs(header(acme.ID, ""), claims(map[string]any{"aud": "usher/"}))), denial(authz.ReasonTokenClaimsInvalid)},
		{"audience in other case", bearer(hs(header(acme.ID, ""), claims(map[string]any{"aud": "Usher"}))), denial(authz.ReasonTokenClaimsInvalid)},
		{"no audience", bearer(hs(header(acme.ID, ""), claims(map[string]any{"aud": nil}))), denial(authz.ReasonTokenClaimsInvalid)},
		{"issuer with trailing slash", bearer(hs(header(acme.ID, ""), claims(map[string]any{"iss": "usher/"}))), denial(authz.ReasonIssuerUnknown)},
		{"issuer in other case", bearer(hs(header(acme.ID, ""), claims(map[string]any{"iss": "Usher"}))), denial(authz.ReasonIssuerUnknown)},
		{"no issuer", bearer(hs(header(acme.ID, ""), claims(map[string]any{"iss": nil}))), denial(authz.ReasonIssuerUnknown)},
		{"tenant claim not the key's", bearer(hs(header(acme.ID, ""), claims(map[string]any{"tenant_id": "globex"}))), denial(authz.ReasonTokenClaimsInvalid)},
		{"other tenant's key names acme", bearer(forge(sha256.New, globex.Secret, header(globex.ID, ""), claims(nil))), denial(authz.ReasonTokenClaimsInvalid)},
		{"hash_perm with a bad seat", bearer(hs(header(acme.ID, ""), claims(map[string]any{"hash_perm": map[string]string{"proj1": "../x"}}))), denial(authz.ReasonTokenClaimsInvalid)},

		{"typ JWT (an ID token)", bearer(hs(`{"alg":"HS256","kid":"`+acme.ID+`","typ":"JWT"}`, claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"typ refresh", bearer(hs(`{"alg":"HS256","kid":"`+acme.ID+`","typ":"rt+jwt"}`, claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"no typ", bearer(hs(`{"alg":"HS256","kid":"`+acme.ID+`"}`, claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"crit header", bearer(hs(header(acme.ID, `,"crit":["exp"]`), claims(nil))), denial(authz.ReasonTokenInvalid)},

		{"kid path traversal", bearer(hs(header("../../etc/passwd", ""), claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"kid SQL", bearer(hs(header(`' OR 1=1--`, ""), claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"kid 10 KB", bearer(hs(header(strings.Repeat("a", 10<<10), ""), claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"kid 1 KB", bearer(hs(header(strings.Repeat("a", 1<<10), ""), claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"kid NUL", bearer(hs(`{"alg":"HS256","kid":"`+acme.ID+`\u0000","typ":"at+jwt"}`, claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"kid object", bearer(hs(`{"alg":"HS256","kid":{"id":"`+acme.ID+`"},"typ":"at+jwt"}`, claims(nil))), denial(authz.ReasonTokenInvalid)},
		{"kid unknown", bearer(hs(header("aaaaaaaaaaaaaaaa", ""), claims(nil))), denial(authz.ReasonTokenInvalid)},

		{"duplicate claim", bearer(hs(header(acme.ID, ""), strings.Replace(claims(nil), `"tenant_id":"acme"`, `"tenant_id":"acme","tenant_id":"globex"`, 1))), denial(authz.ReasonTokenMalformed)},
		{"case-variant claim", bearer(hs(header(acme.ID, ""), strings.Replace(claims(nil), `"tenant_id":"acme"`, `"tenant_id":"acme","Tenant_ID":"globex"`, 1))), denial(authz.ReasonTokenMalformed)},
		{"case-variant claim alone", bearer(hs(header(acme.ID, ""), strings.Replace(claims(nil), `"sub":"alice"`, `"SUB":"alice"`, 1))), denial(authz.ReasonTokenMalformed)},
		{"duplicate header", bearer(hs(`{"alg":"HS256","alg":"none","kid":"`+acme.ID+`","typ":"at+jwt"}`, claims(nil))), denial(authz.ReasonTokenMalformed)},
		{"payload not an object", bearer(hs(header(acme.ID, ""), `["alice"]`)), denial(authz.ReasonTokenMalformed)},
		{"trailing data after payload", bearer(hs(header(acme.ID, ""), claims(nil)+`{}`)), denial(authz.ReasonTokenMalformed)},
		{"four segments", bearer(good + ".c2ln"), denial(authz.ReasonTokenMalformed)},
		{"two segments", bearer(good[:strings.LastIndexByte(good, '.')]), denial(authz.ReasonTokenMalformed)},
		{"padded base64", bearer(strings.Replace(good, ".", "=.", 1)), denial(authz.ReasonBearerMalformed)},
		{"base64 with a stray character", bearer(good[:10] + "~" + good[11:]), denial(authz.ReasonTokenMalformed)},
		{"JSON serialisation", get("api.example.test", "/me", "authorization", `Bearer {"payload":"e30","signatures":[]}`), denial(authz.ReasonBearerMalformed)},

		{"two tokens", get("api.example.test", "/me", "authorization", "Bearer "+good+" "+good), denial(authz.ReasonBearerMalformed)},
		{"Basic", get("api.example.test", "/me", "authorization", "Basic "+good), denial(authz.ReasonUnsupportedCredential)},
		{"64 KB header", get("api.example.test", "/me", "authorization", "Bearer "+strings.Repeat("a", 64<<10)), denial(authz.ReasonBearerMalformed)},
		{"token too long for a token", get("api.example.test", "/me", "authorization", "Bearer "+strings.Repeat("a", 25<<10)), denial(authz.ReasonTokenMalformed)},
		{"token in the query string", get("api.example.test", "/me?access_token="+good), denial(authz.ReasonCredentialMissing)},
		{"bad api key before a good token", get("api.example.test", "/me", "x-api-key", "sk_x", "authorization", "Bearer "+good), denial(authz.ReasonAPIKeyMalformed)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, outcomeOf(w.check(t, tt.req))); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckTokenIgnoresKeyURLHeaders: jku, x5u, jwk and x5c name keys the
// attacker controls; usher never fetches them and verifies with the
// tenant's keyring only.
// Catalogue row 21 (docs/catalogue-map.md).
func TestCheckTokenIgnoresKeyURLHeaders(t *testing.T) {
	w := newWorld(t)
	acme := w.keyring(t)["acme"]
	var fetched atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { fetched.Add(1) }))
	defer attacker.Close()
	extra := `,"jku":"` + attacker.URL + `/jwks","x5u":"` + attacker.URL + `/cert","jwk":{"kty":"oct","k":"YWJj"},"x5c":["MIIB"]`
	now := w.clock.Now()
	right := forge(sha256.New, acme.Secret, header(acme.ID, extra), claimsJSON(t, now, nil))
	wrong := forge(sha256.New, []byte("abc"), header(acme.ID, extra), claimsJSON(t, now, nil))
	if d := w.check(t, get("api.example.test", "/me", "authorization", "Bearer "+right)); d.Reason != authz.ReasonAllowed {
		t.Errorf("signed with the keyring's key: %s", d.Reason)
	}
	if d := w.check(t, get("api.example.test", "/me", "authorization", "Bearer "+wrong)); d.Reason != authz.ReasonTokenInvalid {
		t.Errorf("signed with the key the jwk header names: %s", d.Reason)
	}
	if n := fetched.Load(); n != 0 {
		t.Errorf("usher fetched %d URLs named in token headers", n)
	}
}

// TestCheckTokenFloodOfDots: a megabyte of dots is refused before any
// parsing, in bounded time and memory.
// Catalogue row 122 (docs/catalogue-map.md).
func TestCheckTokenFloodOfDots(t *testing.T) {
	w := newWorld(t)
	r := get("api.example.test", "/me", "authorization", "Bearer "+strings.Repeat(".", 1<<20))
	if d := w.check(t, r); d.Reason != authz.ReasonBearerMalformed {
		t.Fatalf("reason %s", d.Reason)
	}
	ctx := t.Context()
	if allocs := testing.AllocsPerRun(10, func() { w.a.Check(ctx, r) }); allocs > 2 {
		t.Errorf("%v allocations for 1 MB of dots: it was parsed", allocs)
	}
	r.Headers["authorization"] = "Bearer " + strings.Repeat(".", 20<<10)
	if d := w.check(t, r); d.Reason != authz.ReasonTokenMalformed {
		t.Fatalf("20 KB of dots: reason %s", d.Reason)
	}
}

// TestCheckTokenLifecycle covers catalogue row 118 (docs/catalogue-map.md).
func TestCheckTokenLifecycle(t *testing.T) {
	w := newWorld(t)
	acme := w.keyring(t)["acme"]
	now := w.clock.Now()
	tok := mint(t, acme, now, 15*time.Minute, map[string]string{"proj1": "viewers"})
	write := req("POST", "api.example.test", "/spaces/proj1/datasets/a", "authorization", "Bearer "+tok)
	read := get("api.example.test", "/spaces/proj1/datasets/a", "authorization", "Bearer "+tok)
	apply := func() {
		t.Helper()
		changes, err := w.st.ChangesAfter(t.Context(), 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		w.a.Apply(changes[len(changes)-1])
	}

	if d := w.check(t, read); d.Reason != authz.ReasonAllowed {
		t.Fatalf("read: %s", d.Reason)
	}
	if d := w.check(t, write); d.Reason != authz.ReasonPermissionDenied {
		t.Fatalf("write before the seat change: %s", d.Reason)
	}
	// The seat's current permissions apply to the live token.
	grants := []authz.Grant{{Space: "proj1", Permissions: []string{"datasets.read", "datasets.write"}}}
	if _, err := w.st.UpdateSeat(t.Context(), "acme", "viewers", store.SeatUpdate{Grants: &grants}); err != nil {
		t.Fatal(err)
	}
	apply()
	if d := w.check(t, write); d.Reason != authz.ReasonAllowed {
		t.Errorf("write after the seat change: %s", d.Reason)
	}

	// A rotated key keeps verifying until it retires.
	if _, _, err := w.st.RotateSigningKey(t.Context(), "acme", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	apply()
	if d := w.check(t, read); d.Reason != authz.ReasonAllowed {
		t.Errorf("old key within its retirement delay: %s", d.Reason)
	}
	w.clock.Advance(10 * time.Minute)
	if d := w.check(t, read); d.Reason != authz.ReasonTokenInvalid {
		t.Errorf("retired key: %s", d.Reason)
	}

	// A revoked key fails at once.
	newKey, err := w.st.ActiveSigningKey(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	fresh := mint(t, newKey, w.clock.Now(), 15*time.Minute, map[string]string{"proj1": "viewers"})
	freshReq := get("api.example.test", "/spaces/proj1/datasets/a", "authorization", "Bearer "+fresh)
	if d := w.check(t, freshReq); d.Reason != authz.ReasonAllowed {
		t.Fatalf("new key: %s", d.Reason)
	}
	if _, err := w.st.RevokeSigningKey(t.Context(), "acme", newKey.ID); err != nil {
		t.Fatal(err)
	}
	apply()
	if d := w.check(t, freshReq); d.Reason != authz.ReasonTokenRevoked {
		t.Errorf("revoked key: %s", d.Reason)
	}

	// Expiry is enforced on the cached token: one of a key that neither
	// retires nor is revoked, ending within cache.ttl of its verification.
	if _, _, err := w.st.RotateSigningKey(t.Context(), "acme", 0); err != nil {
		t.Fatal(err)
	}
	apply()
	lastKey, err := w.st.ActiveSigningKey(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	short := get("api.example.test", "/spaces/proj1/datasets/a", "authorization",
		"Bearer "+mint(t, lastKey, w.clock.Now(), 20*time.Second, map[string]string{"proj1": "viewers"}))
	if d := w.check(t, short); d.Reason != authz.ReasonAllowed {
		t.Fatalf("short-lived token: %s", d.Reason)
	}
	verified := w.a.TokenCacheStats().Loads.Load()
	w.clock.Advance(20*time.Second + authz.DefaultTokenConfig().Leeway)
	if d := w.check(t, short); d.Reason != authz.ReasonTokenExpired {
		t.Errorf("expired: %s", d.Reason)
	}
	if n := w.a.TokenCacheStats().Loads.Load(); n != verified {
		t.Errorf("verified %d more times: expiry was not enforced on the cached token", n-verified)
	}
}

// TestCheckTokenCachedExpiryBoundary: a token verified once answers from
// the cache up to its exp plus leeway, and is expired from then on, also
// from the cache (a cache.ttl longer than the token's life, so that only
// the token's own end bounds the entry).
// Catalogue row 25 (docs/catalogue-map.md).
func TestCheckTokenCachedExpiryBoundary(t *testing.T) {
	w := newWorld(t, func(c *authz.Config) { c.Cache.TTL = time.Hour })
	acme := w.keyring(t)["acme"]
	now := w.clock.Now()
	r := get("api.example.test", "/me", "authorization", "Bearer "+mint(t, acme, now, time.Minute, nil))
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("first use: %s", d.Reason)
	}
	verified := w.a.TokenCacheStats().Loads.Load()
	leeway := authz.DefaultTokenConfig().Leeway
	w.clock.Set(now.Add(time.Minute + leeway - time.Millisecond))
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("just before exp+leeway, cached: %s", d.Reason)
	}
	w.clock.Set(now.Add(time.Minute + leeway))
	if d := w.check(t, r); d.Reason != authz.ReasonTokenExpired {
		t.Errorf("at exp+leeway, cached: %s", d.Reason)
	}
	if n := w.a.TokenCacheStats().Loads.Load(); n != verified {
		t.Errorf("verified %d more times: the cache did not answer", n-verified)
	}
}

// TestMintAccessTokenRefuses covers catalogue rows 17, 22, 71 (docs/catalogue-map.md).
func TestMintAccessTokenRefuses(t *testing.T) {
	key := authz.SigningKey{ID: "aaaaaaaaaaaaaaaa", Tenant: "acme", Secret: []byte(strings.Repeat("s", 32))}
	cfg := authz.DefaultTokenConfig()
	tests := []struct {
		name   string
		key    authz.SigningKey
		claims authz.AccessClaims
		ttl    time.Duration
		want   string
	}{
		{"ttl over the cap", key, authz.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "a"}}, 25 * time.Hour, "ttl"},
		{"no subject", key, authz.AccessClaims{}, time.Hour, "sub"},
		{"short secret", authz.SigningKey{ID: "k", Tenant: "acme", Secret: []byte("short")}, authz.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "a"}}, time.Hour, "signing key"},
		{"bad hash_perm", key, authz.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "a"}, HashPerm: map[string]string{"a b": "c"}}, time.Hour, "hash_perm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := authz.MintAccessToken(cfg, tt.key, tt.claims, storetest.Epoch, tt.ttl)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one about %s", err, tt.want)
			}
		})
	}
}

// TestCheckTokenRevocationWithoutTheChangeRecord: a server that misses a
// signing key's revocation record (a feed outage, a failed append) still
// refuses the key's tokens once cache.ttl has passed, as for API keys.
// Catalogue row 118 (docs/catalogue-map.md).
func TestCheckTokenRevocationWithoutTheChangeRecord(t *testing.T) {
	w := newWorld(t)
	acme := w.keyring(t)["acme"]
	r := get("api.example.test", "/me", "authorization", "Bearer "+mint(t, acme, w.clock.Now(), 12*time.Hour, nil))
	if d := w.check(t, r); d.Reason != authz.ReasonAllowed {
		t.Fatalf("before: %s", d.Reason)
	}
	if _, err := w.st.RevokeSigningKey(t.Context(), "acme", acme.ID); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(authz.DefaultCacheConfig().TTL)
	if d := w.check(t, r); d.Reason != authz.ReasonTokenRevoked {
		t.Errorf("cache.ttl after a revocation no change record announced: %s", d.Reason)
	}
}
