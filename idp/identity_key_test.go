package idp_test

import (
	"testing"

	"github.com/usher-dev/usher/internal/testidp"
)

// TestIdentityIsIssuerAndSubject (docs/security-catalogue.md row 64, the
// Check path's part; the login app's account key waits for issue 9): an
// IdP token's caller is named to the upstream by its issuer and subject,
// never by its email. Two tokens carrying the same verified email but
// different subjects are two callers; a token whose email is not verified
// passes no email at all.
// Catalogue row 60 (docs/catalogue-map.md).
func TestIdentityIsIssuerAndSubject(t *testing.T) {
	w := newWorld(t, "memberOf")
	email := map[string]any{"email": "boss@acme.test", "email_verified": true}
	alice := testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": "alice-sub", "email": email["email"], "email_verified": true}), nil)
	mallory := testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": "mallory-sub", "email": email["email"], "email_verified": true}), nil)
	unverified := testidp.Sign(t, w.rsa, w.claims(map[string]any{"sub": "eve-sub", "email": email["email"], "email_verified": false}), nil)
	for _, tt := range []struct {
		tok, sub, email string
	}{
		{alice, "alice-sub", "boss@acme.test"},
		{mallory, "mallory-sub", "boss@acme.test"},
		{unverified, "eve-sub", ""},
	} {
		d := w.check(t, "/me", tt.tok)
		if !d.Allowed() || d.Identity.Issuer != w.idp.URL || d.Identity.Subject != tt.sub || d.Identity.Email != tt.email {
			t.Errorf("token of %s: %d %s, issuer %q subject %q email %q; want allowed as (%s, %s) with email %q",
				tt.sub, d.Status, d.Reason, d.Identity.Issuer, d.Identity.Subject, d.Identity.Email, w.idp.URL, tt.sub, tt.email)
		}
	}
}
