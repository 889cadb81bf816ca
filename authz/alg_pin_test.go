package authz_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/usher-dev/usher/authz"
)

// TestCheckUsherTokenOnlyHS256 (docs/security-catalogue.md row 15): usher's
// own token re-signed with any algorithm but HS256 (HS384 and HS512 with
// the tenant's own secret, asymmetric ones with a key of the attacker's),
// with the tenant key's kid and otherwise valid claims, is refused 401
// token_invalid; the same claims signed HS256 with the tenant's key are
// allowed. Two pins hold it: the parser's WithValidMethods and the key
// function's own check of the method.
func TestCheckUsherTokenOnlyHS256(t *testing.T) {
	w := newWorld(t)
	acme := w.keyring(t)["acme"]
	now := w.clock.Now()
	claims := jwt.MapClaims{"iss": "usher", "aud": []string{"usher"}, "sub": "alice", "tenant_id": "acme",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"hash_perm": map[string]string{"proj1": "editors"}}
	sign := func(m jwt.SigningMethod, key any) string {
		tok := jwt.NewWithClaims(m, claims)
		tok.Header["kid"], tok.Header["typ"] = acme.ID, "at+jwt"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(tok string) authz.Decision {
		return w.check(t, get("api.example.test", "/spaces/proj1/datasets/a", "authorization", "Bearer "+tok))
	}
	for name, tok := range map[string]string{
		"HS384": sign(jwt.SigningMethodHS384, acme.Secret),
		"HS512": sign(jwt.SigningMethodHS512, acme.Secret),
		"RS256": sign(jwt.SigningMethodRS256, rsaKey),
		"RS512": sign(jwt.SigningMethodRS512, rsaKey),
		"PS256": sign(jwt.SigningMethodPS256, rsaKey),
		"ES384": sign(jwt.SigningMethodES384, ec384),
		"EdDSA": sign(jwt.SigningMethodEdDSA, ed),
	} {
		if d := ask(tok); d.Status != 401 || d.Reason != authz.ReasonTokenInvalid {
			t.Errorf("usher token signed %s: %d %s (%v); want 401 token_invalid", name, d.Status, d.Reason, d.Cause)
		}
	}
	hs := sign(jwt.SigningMethodHS256, acme.Secret)
	if d := ask(hs); !d.Allowed() {
		t.Errorf("the same claims signed HS256 with the tenant's key: %d %s (%v); want allowed", d.Status, d.Reason, d.Cause)
	}
}
