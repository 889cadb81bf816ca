package authz_test

import (
	"encoding/base64"
	"fmt"
	"runtime"
	"testing"

	"github.com/usher-dev/usher/authz"
)

// TestCheckFloodOfDistinctTokensStaysWithinMaxCost: distinct bogus bearer
// tokens (each verified once, and its failure remembered briefly) cannot
// grow memory past the caches' cost bound (docs/security-catalogue.md row
// 125): with cache.max_cost at 1 MiB, 20,000 distinct tokens of ~300 bytes
// (6 MB of credentials) leave the heap within a few MiB of where it was.
func TestCheckFloodOfDistinctTokensStaysWithinMaxCost(t *testing.T) {
	w := newWorld(t, func(c *authz.Config) { c.Cache.MaxCost = 1 << 20 })
	w.keyring(t) // usher's tokens verify against a real keyring
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"nokeyhere"}`))
	token := func(i int) string {
		claims := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(
			`{"iss":"usher","aud":"usher","sub":"user-%08d","tenant_id":"acme","exp":4102444800,"iat":1700000000,"pad":"%0200d"}`, i, i)))
		return header + "." + claims + ".c2lnbmF0dXJlLXRoYXQtZG9lcy1ub3QtdmVyaWZ5"
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for i := range 100 { // warm up: caches, pools, the keyring
		w.check(t, get("api.example.test", "/me", "authorization", "Bearer "+token(i)))
	}
	before := heap()
	const n = 20000
	for i := 100; i < n; i++ {
		if d := w.check(t, get("api.example.test", "/me", "authorization", "Bearer "+token(i))); d.Status != 401 {
			t.Fatalf("token %d: %d %s, want a 401", i, d.Status, d.Reason)
		}
	}
	after := heap()
	growth := int64(after) - int64(before)
	t.Logf("heap %d → %d bytes (%+d) after %d distinct tokens", before, after, growth, n)
	if growth > 8<<20 {
		t.Errorf("heap grew %d bytes over %d distinct bogus tokens; the caches' cost bound is 1 MiB each", growth, n)
	}
}
