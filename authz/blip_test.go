package authz_test

import (
	"testing"

	"github.com/usher-dev/usher/authz"
)

// TestCheckStoreBlipNotCached (docs/security-catalogue.md row 112): a key
// and seats checked while the store fails are denied 503, and that failure
// is not remembered: the moment the store answers again, the same request,
// at the same instant (no cache entry has aged), is read afresh and
// allowed. A key that does not exist is still apikey_invalid (the only
// answer remembered, briefly).
func TestCheckStoreBlipNotCached(t *testing.T) {
	w := newWorld(t)
	reader := get("api.example.test", "/spaces/proj1/datasets/a", "x-api-key", w.keys["acme/reader"])
	w.st.Fail.Store(true)
	for range 3 {
		if d := w.check(t, reader); d.Status != 503 || d.Reason != authz.ReasonStoreUnavailable {
			t.Fatalf("while the store fails: %d %s; want 503 store_unavailable", d.Status, d.Reason)
		}
	}
	w.st.Fail.Store(false)
	if d := w.check(t, reader); !d.Allowed() {
		t.Errorf("once the store answers: %d %s (%v); want allowed, the failure not cached", d.Status, d.Reason, d.Cause)
	}
}
