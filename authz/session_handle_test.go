package authz

import (
	"strings"
	"testing"
)

func TestSessionHandleRoundTrip(t *testing.T) {
	n, err := GenerateSessionHandle("acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(n.Handle, "us_") || len(n.Handle) > 200 {
		t.Fatalf("handle %q: want us_ prefix and at most 200 bytes", n.Handle)
	}
	p, err := ParseSessionHandle(n.Handle)
	if err != nil || p.Tenant != "acme" || p.ID != n.ID {
		t.Fatalf("ParseSessionHandle = %+v, %v; want acme/%s", p, err, n.ID)
	}
	if HashAPIKey(n.Handle) != n.Hash {
		t.Fatal("hash is not the digest of the handle")
	}
	// An API key is not a session handle, nor the other way round.
	k, _ := GenerateAPIKey("acme")
	if _, err := ParseSessionHandle(k.Key); err == nil {
		t.Fatal("an sk_ key parsed as a session handle")
	}
	if _, err := ParseAPIKey(n.Handle); err == nil {
		t.Fatal("a session handle parsed as an API key")
	}
	m, _ := GenerateSessionHandle("acme")
	if m.ID == n.ID || m.Handle == n.Handle {
		t.Fatal("two handles are the same")
	}
}
