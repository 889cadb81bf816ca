package idp_test

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/testidp"
)

// TestKeyConfusionEveryEncoding (docs/security-catalogue.md row 14): an
// HS256 token with the trusted issuer, HMAC-keyed with the provider's
// public key in each form an attacker can fetch it in (PEM, DER, the JWK
// JSON the key set publishes, the RSA modulus), is refused 401
// token_invalid: an issuer's tokens verify only with its asymmetric
// algorithms, whatever the header says.
func TestKeyConfusionEveryEncoding(t *testing.T) {
	w := newWorld(t, "memberOf")
	if d := w.check(t, "/me", testidp.Sign(t, w.rsa, w.claims(nil), nil)); !d.Allowed() {
		t.Fatalf("the provider's own token: %d %s (%v)", d.Status, d.Reason, d.Cause)
	}
	der, err := x509.MarshalPKIXPublicKey(w.rsa.Private.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := w.rsa.Private.Public().(*rsa.PublicKey)
	if !ok {
		t.Fatal("not an RSA key")
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(pub)
	jwk, err := json.Marshal(w.rsa.Public())
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(w.claims(nil))
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	for name, secret := range map[string][]byte{
		"PEM (PKIX)":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"PEM (PKCS1)": pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1}),
		"DER (PKIX)":  der,
		"DER (PKCS1)": pkcs1,
		"JWK JSON":    jwk,
		"modulus":     pub.N.Bytes(),
	} {
		for _, typ := range []string{"JWT", "at+jwt"} {
			signing := enc.EncodeToString([]byte(`{"alg":"HS256","kid":"`+w.rsa.ID+`","typ":"`+typ+`"}`)) + "." + enc.EncodeToString(payload)
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(signing))
			tok := signing + "." + enc.EncodeToString(mac.Sum(nil))
			if d := w.check(t, "/me", tok); d.Status != 401 || d.Reason != authz.ReasonTokenInvalid {
				t.Errorf("HS256 keyed with the public key as %s, typ %s: %d %s (%v); want 401 token_invalid", name, typ, d.Status, d.Reason, d.Cause)
			}
		}
	}
}
