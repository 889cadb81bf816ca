package store_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/seal"
	"github.com/usher-dev/usher/internal/testclock"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

func keyringFixture(t *testing.T) (*store.Store, *testclock.Clock) {
	t.Helper()
	c := testclock.New(storetest.Epoch)
	s := storetest.Open(t, c.Now)
	for _, tn := range []string{"acme", "globex"} {
		if _, err := s.CreateTenant(t.Context(), tn); err != nil {
			t.Fatal(err)
		}
	}
	return s, c
}

// TestSigningKeyRotation covers catalogue rows 22, 45 (docs/catalogue-map.md).
func TestSigningKeyRotation(t *testing.T) {
	s, c := keyringFixture(t)
	ctx := t.Context()
	k1, retiring, err := s.RotateSigningKey(ctx, "acme", time.Hour)
	if err != nil || len(retiring) != 0 {
		t.Fatalf("first rotation: %v, retiring %v", err, retiring)
	}
	active, err := s.ActiveSigningKey(ctx, "acme")
	if err != nil || active.ID != k1.ID || len(active.Secret) != 32 || active.Tenant != "acme" {
		t.Fatalf("active key: %+v, %v", active, err)
	}
	c.Advance(time.Minute)
	k2, retiring, err := s.RotateSigningKey(ctx, "acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	retireAt := c.Now().Add(time.Hour)
	if diff := cmp.Diff([]store.SigningKey{{ID: k1.ID, Tenant: "acme", CreatedAt: storetest.Epoch, RetireAt: retireAt}}, retiring); diff != "" {
		t.Errorf("retiring keys (-want +got):\n%s", diff)
	}
	keys, err := s.SigningKeys(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.SigningKey{
		{ID: k1.ID, Tenant: "acme", CreatedAt: storetest.Epoch, RetireAt: retireAt},
		{ID: k2.ID, Tenant: "acme", CreatedAt: c.Now()},
	}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("keyring (-want +got):\n%s", diff)
	}
	states := func() []string {
		keys, _ := s.SigningKeys(ctx, "acme")
		var out []string
		for _, k := range keys {
			out = append(out, k.State(c.Now()))
		}
		return out
	}
	if diff := cmp.Diff([]string{"verifying", "active"}, states()); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	old, err := s.SigningKey(ctx, k1.ID)
	if err != nil || !old.RetireAt.Equal(retireAt) {
		t.Errorf("old key: %+v, %v", old, err)
	}
	c.Advance(time.Hour)
	if diff := cmp.Diff([]string{"retired", "active"}, states()); diff != "" {
		t.Errorf("states after an hour (-want +got):\n%s", diff)
	}
	// Other tenants' keyrings are their own.
	if _, err := s.ActiveSigningKey(ctx, "globex"); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "usher key rotate --tenant globex") {
		t.Errorf("globex without keys: %v", err)
	}
}

func TestSigningKeyRotationsWithinOneMillisecond(t *testing.T) {
	s, _ := keyringFixture(t)
	ctx := t.Context()
	var ids []string
	for range 5 {
		k, _, err := s.RotateSigningKey(ctx, "acme", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	keys, err := s.SigningKeys(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.ID)
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("order of keys made in one millisecond (-want +got):\n%s", diff)
	}
	active, err := s.ActiveSigningKey(ctx, "acme")
	if err != nil || active.ID != ids[4] {
		t.Errorf("active key %s, %v; want the newest, %s", active.ID, err, ids[4])
	}
}

// TestRevokeSigningKey covers catalogue row 118 (docs/catalogue-map.md).
func TestRevokeSigningKey(t *testing.T) {
	s, c := keyringFixture(t)
	ctx := t.Context()
	k, _, err := s.RotateSigningKey(ctx, "acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := s.LastChange(ctx)
	c.Advance(time.Second)
	got, err := s.RevokeSigningKey(ctx, "acme", k.ID)
	if err != nil || !got.RevokedAt.Equal(c.Now()) || got.State(c.Now()) != "revoked" {
		t.Fatalf("revoke: %+v, %v", got, err)
	}
	changes, _ := s.ChangesAfter(ctx, seq, 10)
	if len(changes) != 1 || changes[0].Kind != authz.ChangeSigningKey || changes[0].Key != k.ID {
		t.Errorf("changes: %+v", changes)
	}
	c.Advance(time.Second)
	again, err := s.RevokeSigningKey(ctx, "acme", k.ID)
	if err != nil || !again.RevokedAt.Equal(got.RevokedAt) {
		t.Errorf("second revocation moved the time: %+v, %v", again, err)
	}
	if _, err := s.RevokeSigningKey(ctx, "globex", k.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke in another tenant: %v", err)
	}
	if _, err := s.ActiveSigningKey(ctx, "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("active key after revoking the only one: %v", err)
	}
	sk, err := s.SigningKey(ctx, k.ID)
	if err != nil || sk.RevokedAt.IsZero() {
		t.Errorf("revoked key still verifies as unrevoked: %+v, %v", sk, err)
	}
}

// TestRevokeSigningKeyNotLostToRotation revokes a key while the tenant's
// keys rotate: on FerretDB a concurrent update of the same document could
// undo the revocation, so rotation must not write to older keys.
// Catalogue row 118 (docs/catalogue-map.md).
func TestRevokeSigningKeyNotLostToRotation(t *testing.T) {
	s, _ := keyringFixture(t)
	ctx := t.Context()
	for round := range 10 {
		k, _, err := s.RotateSigningKey(ctx, "acme", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, _, err := s.RotateSigningKey(context.WithoutCancel(ctx), "acme", time.Hour); err != nil {
					t.Error(err)
				}
			})
		}
		if _, err := s.RevokeSigningKey(ctx, "acme", k.ID); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		got, err := s.SigningKey(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.RevokedAt.IsZero() {
			t.Errorf("round %d: the revocation was undone by concurrent rotations", round)
		}
	}
}

// TestSigningKeyMasterKey covers catalogue row 45 (docs/catalogue-map.md).
func TestSigningKeyMasterKey(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	s := storetest.OpenDir(t, dir, nil)
	ctx := t.Context()
	if _, err := s.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CheckKeyring(ctx); n != 0 || err != nil {
		t.Fatalf("empty keyring: %d, %v", n, err)
	}
	k, _, err := s.RotateSigningKey(ctx, "acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := s.SigningKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.CheckKeyring(ctx); n != 1 || err != nil {
		t.Fatalf("keyring with the right master key: %d, %v", n, err)
	}
	// The same store through a client without the key, and with another.
	other, err := seal.ParseKey("b3RoZXItbWFzdGVyLWtleS10aGlydHktdHdvLWJ5dGU=")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		key  seal.Key
		want error
	}{"no master key": {seal.Key{}, seal.ErrNoKey}, "another master key": {other, seal.ErrOpen}} {
		t.Run(name, func(t *testing.T) {
			c, err := store.Open(ctx, store.Options{DataDir: dir, MasterKey: tc.key})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close(context.WithoutCancel(ctx)) }()
			if _, err := c.SigningKey(ctx, k.ID); !errors.Is(err, tc.want) {
				t.Errorf("SigningKey: %v, want %v", err, tc.want)
			}
			if n, err := c.CheckKeyring(ctx); n != 1 || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), k.ID) {
				t.Errorf("CheckKeyring: %d, %v; want it to name key %s", n, err, k.ID)
			}
			if _, _, err := c.RotateSigningKey(ctx, "acme", time.Hour); !errors.Is(err, tc.want) {
				t.Errorf("rotate: %v, want %v (a store is sealed with one master key)", err, tc.want)
			}
		})
	}
	if bytes.Equal(secret.Secret, make([]byte, 32)) {
		t.Error("the secret is all zero")
	}
}

func TestIssuers(t *testing.T) {
	s, _ := keyringFixture(t)
	ctx := t.Context()
	acme := store.Issuer{Tenant: "acme", Issuer: "https://idp.example.com", Audience: "api://usher", GroupsClaim: "memberOf"}
	got, err := s.AddIssuer(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	acme.CreatedAt = got.CreatedAt
	if diff := cmp.Diff(acme, got); diff != "" {
		t.Errorf("added (-want +got):\n%s", diff)
	}
	if _, err := s.AddIssuer(ctx, acme); !errors.Is(err, store.ErrExists) {
		t.Errorf("added twice: %v", err)
	}
	globex := store.Issuer{Tenant: "globex", Issuer: "https://idp.example.com", Audience: "api://globex", GroupsClaim: "realm_access.roles"}
	if _, err := s.AddIssuer(ctx, globex); err != nil {
		t.Fatal(err)
	}
	trusts, err := s.AllIssuers(ctx)
	if err != nil || len(trusts) != 2 {
		t.Errorf("trusts of the issuer: %v, %v", trusts, err)
	}
	if list, err := s.Issuers(ctx, "acme"); err != nil || len(list) != 1 || list[0].Audience != "api://usher" {
		t.Errorf("acme's issuers: %v, %v", list, err)
	}
	for name, bad := range map[string]store.Issuer{
		"no audience":       {Tenant: "acme", Issuer: "https://x.example", GroupsClaim: "groups"},
		"bad groups claim":  {Tenant: "acme", Issuer: "https://x.example", Audience: "a", GroupsClaim: "a..b"},
		"space in issuer":   {Tenant: "acme", Issuer: "https://x.example /", Audience: "a", GroupsClaim: "groups"},
		"no such tenant":    {Tenant: "nope", Issuer: "https://x.example", Audience: "a", GroupsClaim: "groups"},
		"bad tenant":        {Tenant: "No", Issuer: "https://x.example", Audience: "a", GroupsClaim: "groups"},
		"empty groups path": {Tenant: "acme", Issuer: "https://x.example", Audience: "a", GroupsClaim: ""},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.AddIssuer(ctx, bad); err == nil {
				t.Error("accepted")
			}
		})
	}
	seq, _ := s.LastChange(ctx)
	if err := s.RemoveIssuer(ctx, "acme", "https://idp.example.com"); err != nil {
		t.Fatal(err)
	}
	if changes, _ := s.ChangesAfter(ctx, seq, 10); len(changes) != 1 || changes[0].Kind != authz.ChangeIssuer || changes[0].Key != "https://idp.example.com" {
		t.Errorf("changes: %+v", changes)
	}
	if err := s.RemoveIssuer(ctx, "acme", "https://idp.example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removed twice: %v", err)
	}
	if trusts, _ := s.AllIssuers(ctx); len(trusts) != 1 || trusts[0].Tenant != "globex" {
		t.Errorf("trusts after removal: %v", trusts)
	}
}
