package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

// TestRevokeRacingRotation runs many revoke/rotate pairs at once, each on
// its own key: an operator revoking a leaked key while an automated
// rotation of it runs. After each pair settles, either the key and its
// successor are revoked, or the rotation failed; a revoked key never has
// a live successor. Revocations by id may leave alone a successor that
// the key already had when the revocation read it, and must say so.
func TestRevokeRacingRotation(t *testing.T) {
	t.Parallel()
	s, _ := keyFixture(t)
	const pairs = 16
	year := t0.Add(store.MaxKeyLifetime)
	type pair struct {
		old     store.APIKey
		byID    bool
		grace   time.Duration
		next    authz.NewAPIKey
		created store.APIKey
		revs    []store.Revocation
	}
	ps := make([]pair, pairs)
	for i := range ps {
		ps[i] = pair{
			old:   mustKey(t, s, keyFor(newKey(t, "acme"), "acme", fmt.Sprintf("k%02d", i), year, "viewer")),
			byID:  i%2 == 1,
			grace: time.Duration(i%3) * time.Hour,
			next:  newKey(t, "acme"),
		}
	}
	errs := start(t.Context(), 2*pairs, func(ctx context.Context, j int) error {
		p := &ps[j/2]
		ref := p.old.Name
		if p.byID {
			ref = p.old.ID
		}
		var err error
		if j%2 == 0 {
			p.created, _, err = s.RotateAPIKeyByRef(ctx, "acme", ref, store.APIKey{ID: p.next.ID, Hash: p.next.Hash}, p.grace)
		} else {
			p.revs, err = s.RevokeAPIKeyByRef(ctx, "acme", ref)
		}
		return err
	})

	rotated, kept := 0, 0
	for i, p := range ps {
		rotErr, revErr := errs[2*i], errs[2*i+1]
		if revErr != nil {
			t.Errorf("pair %d: revocation failed: %v", i, revErr)
			continue
		}
		if st := mustRecord(t, s, p.old.ID).State(t0); st != "revoked" {
			t.Errorf("pair %d: the revoked key is %s", i, st)
		}
		if rotErr != nil {
			if msg := rotErr.Error(); !strings.Contains(msg, "revoked") && !strings.Contains(msg, "no active key") {
				t.Errorf("pair %d: rotation failed for another reason than the revocation: %v", i, rotErr)
			}
			if _, err := s.APIKeyRecord(t.Context(), p.next.ID); err == nil {
				t.Errorf("pair %d: a failed rotation stored its successor", i)
			}
			continue
		}
		rotated++
		succ := mustRecord(t, s, p.created.ID)
		if succ.State(t0) == "revoked" {
			continue
		}
		if p.byID && len(p.revs) > 0 && p.revs[0].Kept == succ.ID {
			kept++ // the rotation came first; revoking the old key by id ends its grace
			continue
		}
		var did []string
		for _, r := range p.revs {
			did = append(did, fmt.Sprintf("%s (already %v, raced %v, kept %q)", r.Key.ID, r.Already, r.Raced, r.Kept))
		}
		t.Errorf("pair %d (by id: %v, grace %v): key %s is revoked but its successor %s is live; the revocation did %v",
			i, p.byID, p.grace, p.old.ID, succ.ID, did)
	}
	// Not asserted (the scheduler decides): how the pairs ended.
	t.Logf("%d of %d rotations succeeded before being revoked, %d successors kept by a revocation by id", rotated, pairs, kept)

	// Revoked keys are revoked on every read path: the cached lookup's
	// and the listing.
	keys, err := s.APIKeys(t.Context(), "acme")
	if err != nil {
		t.Fatalf("APIKeys: %v", err)
	}
	for _, k := range keys {
		ak, err := s.APIKey(t.Context(), k.ID)
		if err != nil {
			t.Fatalf("APIKey(%s): %v", k.ID, err)
		}
		if (k.State(t0) == "revoked") != !ak.RevokedAt.IsZero() {
			t.Errorf("key %s: the listing says %s, the lookup says revoked at %v", k.ID, k.State(t0), ak.RevokedAt)
		}
	}
}
