package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
)

// TestAPIKeyIDs lists every key the store holds, whatever its state, as
// the key index needs: a key it left out would be denied.
func TestAPIKeyIDs(t *testing.T) {
	t.Parallel()
	s, _ := keyFixture(t)
	ctx := t.Context()
	var want []string
	add := func(tenant, name string) string {
		k := mustKey(t, s, keyFor(newKey(t, tenant), tenant, name, t0.Add(time.Hour), "viewer"))
		want = append(want, tenant+"/"+k.ID)
		return k.ID
	}
	add("acme", "ci")
	revoked := add("acme", "revoked")
	if _, err := s.RevokeAPIKey(ctx, "acme", revoked); err != nil {
		t.Fatal(err)
	}
	rotated := add("globex", "ci")
	old, err := s.APIKeyRecord(ctx, rotated)
	if err != nil {
		t.Fatal(err)
	}
	next := newKey(t, "globex")
	if _, _, err := s.RotateAPIKey(ctx, old, keyFor(next, "", "", t0.Add(time.Hour)), 0); err != nil {
		t.Fatal(err)
	}
	want = append(want, "globex/"+next.ID)

	var source authz.KeyIndexSource = s
	var got []string
	if err := source.APIKeyIDs(ctx, func(tenant, id string) error {
		got = append(got, tenant+"/"+id)
		return nil
	}); err != nil {
		t.Fatalf("APIKeyIDs: %v", err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("APIKeyIDs (-want +got):\n%s", diff)
	}

	stop := errors.New("stop")
	calls := 0
	err = s.APIKeyIDs(ctx, func(string, string) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("APIKeyIDs with fn failing: %v after %d calls, want %v after 1", err, calls, stop)
	}
}
