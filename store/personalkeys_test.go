package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/login"
	"github.com/usher-dev/usher/store"
)

// A person's keys: listed by owner only, revoked only by their owner, a
// taken name answered without the holder's id.
func TestPersonalKeys(t *testing.T) {
	t.Parallel()
	s, _ := keyFixture(t)
	ctx := t.Context()
	month := t0.Add(30 * 24 * time.Hour)
	mk := func(owner, name string, seats ...string) login.APIKey {
		t.Helper()
		nk := newKey(t, "acme")
		k, err := s.CreatePersonalKey(ctx, login.APIKey{ID: nk.ID, Tenant: "acme", Name: name, Owner: owner, Seats: seats, Hash: nk.Hash, ExpiresAt: month})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a1 := mk("user:alice@acme.test", "a1", "viewer")
	mk("user:bob@acme.test", "b1", "editor")
	mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "ci", month)) // an operator's key, no owner

	keys, err := s.PersonalKeys(ctx, "acme", "user:alice@acme.test")
	if err != nil || len(keys) != 1 || keys[0].ID != a1.ID || keys[0].Seats[0] != "viewer" {
		t.Fatalf("alice's keys = %+v, %v; want only %s", keys, err, a1.ID)
	}
	if keys, err := s.PersonalKeys(ctx, "globex", "user:alice@acme.test"); err != nil || len(keys) != 0 {
		t.Fatalf("alice's keys in globex = %+v, %v; want none", keys, err)
	}
	if _, err := s.PersonalKeys(ctx, "acme", ""); err == nil {
		t.Fatal("listing keys of no owner: want an error, not the tenant's unowned keys")
	}

	nk := newKey(t, "acme")
	_, err = s.CreatePersonalKey(ctx, login.APIKey{ID: nk.ID, Tenant: "acme", Name: "a1", Owner: "user:alice@acme.test", Hash: nk.Hash, ExpiresAt: month})
	if !errors.Is(err, login.ErrKeyNameTaken) || strings.Contains(err.Error(), a1.ID) {
		t.Fatalf("taken name: %v; want ErrKeyNameTaken without the holder's id", err)
	}

	if err := s.RevokePersonalKey(ctx, "acme", "user:bob@acme.test", a1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bob revoking alice's key: %v; want ErrNotFound", err)
	}
	if err := s.RevokePersonalKey(ctx, "globex", "user:alice@acme.test", a1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking in another tenant: %v; want ErrNotFound", err)
	}
	if k, _ := s.APIKeyRecord(ctx, a1.ID); !k.RevokedAt.IsZero() {
		t.Fatal("alice's key was revoked by someone else")
	}
	if err := s.RevokePersonalKey(ctx, "acme", "user:alice@acme.test", a1.ID); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.APIKeyRecord(ctx, a1.ID); k.RevokedAt.IsZero() {
		t.Fatal("alice's key not revoked")
	}
}
