package authz

import (
	"crypto/sha256"
	"testing"
)

// TestParsedKeys: the digest index answers only for the exact digest it
// was given; a digest that shares the slot replaces the entry instead of
// reading it.
func TestParsedKeys(t *testing.T) {
	var idx parsedKeys
	h1 := KeyHash(sha256.Sum256([]byte("one")))
	h2 := h1
	h2[len(h2)-1] ^= 1 // same slot, another digest
	if idx.slot(h1) != idx.slot(h2) {
		t.Fatal("test digests do not share a slot")
	}
	if _, ok := idx.lookup(h1); ok {
		t.Fatal("empty index answered")
	}
	one := ParsedAPIKey{Tenant: "acme", ID: "aaaaaaaaaaaaaaaa"}
	idx.remember(h1, one)
	if _, ok := idx.lookup(h2); ok {
		t.Error("a digest sharing the slot read another key's parse")
	}
	if got, ok := idx.lookup(h1); !ok || got != one {
		t.Errorf("lookup(h1) = %+v, %v; want %+v", got, ok, one)
	}
	two := ParsedAPIKey{Tenant: "beta", ID: "bbbbbbbbbbbbbbbb"}
	idx.remember(h2, two)
	if _, ok := idx.lookup(h1); ok {
		t.Error("an overwritten entry still answered for its old digest")
	}
	if got, ok := idx.lookup(h2); !ok || got != two {
		t.Errorf("lookup(h2) = %+v, %v; want %+v", got, ok, two)
	}
}
