package authz_test

import (
	"testing"

	"github.com/usher-dev/usher/authz"
)

// pathRowRules put a public prefix beside protected ones, as the attacks
// of rows 88 to 92 assume.
const pathRowRules = `
default: deny
rules:
  - path: /public/**
    public: true
  - path: /user/**
    public: true
  - path: /something/**
    public: true
  - path: /admin/**
    permission: admin
    space: ops
  - name: private
    path: /private/**
    authenticated: true
  - path: /spaces/{space}/admin
    permission: admin
`

// TestCheckCataloguePathInputs sends the exact paths of
// docs/security-catalogue.md rows 88 (dot segments and encoded slashes),
// 89 (encoded-slash bypass), 90 (path parameters and fragments), 91 (query
// string matched as path) and 92 (a // prefix read as an authority), each
// aimed at a protected rule from a public one. Neither an anonymous caller
// nor a key without the admin permission is ever allowed (but for the
// key on /private, which it may use, whatever the query says): each is
// refused as an ambiguous path (400), or meets the protected rule it
// really names.
// A public path and the private one with a key are the controls.
func TestCheckCataloguePathInputs(t *testing.T) {
	w := newWorld(t, func(c *authz.Config) {
		r, err := authz.ParseRules("path-rows", []byte(pathRowRules))
		if err != nil {
			t.Fatal(err)
		}
		c.Rules = r
	})
	ci := w.keys["acme/ci"] // no admin permission anywhere
	attacks := []struct {
		row  int
		path string
	}{
		{88, "/public/../admin"},
		{88, "/public/%2e%2e/admin"},
		{88, "/public/%2E%2E/admin"},
		{88, "/public%2F..%2Fadmin"},
		{88, "/public/./../admin"},
		{88, "//admin"},
		{88, "/public/..%2Fadmin"},
		{88, "/public/%2e%2e%2fadmin"},
		{89, "/something%2F..%2Fadmin"},
		{89, "/something%2f..%2fadmin"},
		{89, "/something%252F..%252Fadmin"},
		{90, "/user/..;x=y/admin"},
		{90, "/public/..;/admin"},
		{90, "/admin;jsessionid=1"},
		{90, "/spaces/1/admin#x"},
		{90, "/public#/../admin"},
		{91, "/private?x=/public"},
		{91, "/private?/public"},
		{91, "/private%3F/public"},
		{92, "//admin/spaces/1"},
		{92, "///admin/spaces/1"},
		{92, "//admin//x"},
	}
	for _, a := range attacks {
		for _, cred := range [][]string{nil, {"x-api-key", ci}} {
			d := w.check(t, get("api.example.test", a.path, cred...))
			if d.Allowed() && !(cred != nil && d.Rule == "private" && a.row == 91) { // the key may use /private

				t.Errorf("row %d: %s (credential %v): allowed by rule %q as %s; want refused", a.row, a.path, cred != nil, d.Rule, d.Reason)
			}
		}
	}
	for _, c := range []struct {
		path string
		cred []string
		want authz.Reason
	}{
		{"/public/x", nil, authz.ReasonPublic},
		{"/private/x", []string{"x-api-key", ci}, authz.ReasonAllowed},
		{"/private/x", nil, authz.ReasonCredentialMissing},
	} {
		if d := w.check(t, get("api.example.test", c.path, c.cred...)); d.Reason != c.want {
			t.Errorf("control %s: %s, want %s", c.path, d.Reason, c.want)
		}
	}
}
