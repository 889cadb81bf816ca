package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

func TestRotationTarget(t *testing.T) {
	t.Parallel()
	s, c := keyFixture(t)
	ctx := t.Context()
	month := t0.Add(30 * 24 * time.Hour)
	old := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "deploy", month))
	nk := newKey(t, "acme")
	successor, _, err := s.RotateAPIKey(ctx, old, keyFor(nk, "", "", month), time.Hour)
	if err != nil {
		t.Fatalf("RotateAPIKey: %v", err)
	}
	revoked := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "gone", month))
	if _, err := s.RevokeAPIKey(ctx, "acme", revoked.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	c.Advance(time.Minute)

	tests := []struct {
		name, tenant, ref string
		want              string // id
		err               error
	}{
		{name: "by name: the key no rotation replaced", tenant: "acme", ref: "deploy", want: successor.ID},
		{name: "by id, even one replaced", tenant: "acme", ref: old.ID, want: old.ID},
		{name: "by id, even one revoked", tenant: "acme", ref: revoked.ID, want: revoked.ID},
		{name: "by name, none active", tenant: "acme", ref: "gone",
			err: errors.New(`api key "gone" in tenant acme: no active key of that name to rotate`)},
		{name: "unknown", tenant: "acme", ref: "nothing", err: store.ErrNotFound},
		{name: "name in another tenant", tenant: "globex", ref: "deploy", err: store.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.RotationTarget(t.Context(), tc.tenant, tc.ref)
			wantErr(t, "RotationTarget", err, tc.err)
			if got.ID != tc.want {
				t.Errorf("RotationTarget(%q) = %s, want %s", tc.ref, got.ID, tc.want)
			}
		})
	}
}

func TestRotateAPIKeyByRef(t *testing.T) {
	t.Parallel()
	s, c := keyFixture(t)
	ctx := t.Context()
	old := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "deploy", t0.Add(30*24*time.Hour), "viewer"))
	c.Advance(time.Hour)

	// No expiry: the old key's lifetime from now.
	nk := newKey(t, "acme")
	created, ended, err := s.RotateAPIKeyByRef(ctx, "acme", "deploy", store.APIKey{ID: nk.ID, Hash: nk.Hash}, 0)
	if err != nil {
		t.Fatalf("RotateAPIKeyByRef: %v", err)
	}
	if want := ms(c.Now().Add(30 * 24 * time.Hour)); !created.ExpiresAt.Equal(want) {
		t.Errorf("new key expires %v, want the old key's lifetime from now: %v", created.ExpiresAt, want)
	}
	if ended.ID != old.ID || ended.State(c.Now()) != "revoked" || ended.SupersededBy != nk.ID {
		t.Errorf("ended key = %+v, want %s revoked and superseded by %s", ended, old.ID, nk.ID)
	}

	// An expiry given is kept; by id works as by name.
	c.Advance(time.Hour)
	nk2 := newKey(t, "acme")
	want := c.Now().Add(time.Hour)
	created, _, err = s.RotateAPIKeyByRef(ctx, "acme", nk.ID, store.APIKey{ID: nk2.ID, Hash: nk2.Hash, ExpiresAt: want}, time.Minute)
	if err != nil {
		t.Fatalf("RotateAPIKeyByRef by id: %v", err)
	}
	if !created.ExpiresAt.Equal(ms(want)) || created.Name != "deploy" {
		t.Errorf("new key = %+v, want name deploy, expiry %v", created, ms(want))
	}

	// A revoked key cannot be rotated, by name or by id.
	if _, err := s.RevokeAPIKeyByRef(ctx, "acme", "deploy"); err != nil {
		t.Fatalf("RevokeAPIKeyByRef: %v", err)
	}
	seq := lastChange(t, s)
	for ref, want := range map[string]error{
		"deploy": errors.New(`api key "deploy" in tenant acme: no active key of that name to rotate`),
		nk2.ID:   fmt.Errorf("api key %s is revoked; only an active key can be rotated", nk2.ID),
	} {
		nk3 := newKey(t, "acme")
		_, _, err := s.RotateAPIKeyByRef(ctx, "acme", ref, store.APIKey{ID: nk3.ID, Hash: nk3.Hash}, 0)
		wantErr(t, "rotating a revoked key by "+ref, err, want)
	}
	unchanged(t, s, seq)
}

// revocation is what a test asserts of a store.Revocation.
type revocation struct {
	ID             string
	State          string
	Already, Raced bool
	Kept           string
}

func revocations(revs []store.Revocation, now time.Time) []revocation {
	out := make([]revocation, len(revs))
	for i, r := range revs {
		out[i] = revocation{r.Key.ID, r.Key.State(now), r.Already, r.Raced, r.Kept}
	}
	return out
}

func TestRevokeAPIKeyByRef(t *testing.T) {
	t.Parallel()
	s, c := keyFixture(t)
	ctx := t.Context()
	month := t0.Add(30 * 24 * time.Hour)
	rotate := func(old store.APIKey, grace time.Duration) store.APIKey {
		t.Helper()
		c.Advance(time.Second)
		next, _, err := s.RotateAPIKey(ctx, old, keyFor(newKey(t, "acme"), "", "", month), grace)
		if err != nil {
			t.Fatalf("RotateAPIKey: %v", err)
		}
		return next
	}
	// deploy: first → second (in grace) → third. ci: one key, then one
	// in grace behind its successor.
	first := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "deploy", month))
	second := rotate(first, time.Hour)
	third := rotate(second, 0) // second revoked at once, first still in grace
	ci := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "ci", month))
	ciNext := rotate(ci, time.Hour)
	c.Advance(time.Minute)
	now := c.Now()

	steps := []struct {
		name, ref string
		want      []revocation
		changes   []string // the keys whose change is recorded
		err       error
	}{
		{name: "by id, a key in grace: its successor stays", ref: ci.ID,
			want:    []revocation{{ID: ci.ID, State: "revoked", Kept: ciNext.ID}},
			changes: []string{ci.ID}},
		{name: "by id, a revoked key: nothing new", ref: ci.ID,
			want: []revocation{{ID: ci.ID, State: "revoked", Already: true, Kept: ciNext.ID}}},
		{name: "by name: every key of the name, newest first", ref: "deploy",
			want: []revocation{
				{ID: third.ID, State: "revoked"},
				{ID: second.ID, State: "revoked", Already: true},
				{ID: first.ID, State: "revoked"},
			},
			changes: []string{third.ID, first.ID}},
		{name: "by name again", ref: "deploy",
			want: []revocation{
				{ID: third.ID, State: "revoked", Already: true},
				{ID: second.ID, State: "revoked", Already: true},
				{ID: first.ID, State: "revoked", Already: true},
			}},
		{name: "unknown", ref: "nothing", want: []revocation{}, err: store.ErrNotFound},
	}
	for _, st := range steps {
		seq := lastChange(t, s)
		revs, err := s.RevokeAPIKeyByRef(ctx, "acme", st.ref)
		wantErr(t, st.name, err, st.err)
		if diff := cmp.Diff(st.want, revocations(revs, now)); diff != "" {
			t.Errorf("%s: revocations (-want +got):\n%s", st.name, diff)
		}
		var got []string
		for _, ch := range changesSince(t, s, seq) {
			if ch.Kind != authz.ChangeAPIKey {
				t.Errorf("%s: change %+v, want only api key changes", st.name, ch)
			}
			got = append(got, ch.Key)
		}
		if diff := cmp.Diff(st.changes, got); diff != "" {
			t.Errorf("%s: changes (-want +got):\n%s", st.name, diff)
		}
	}
	if st := mustRecord(t, s, ciNext.ID).State(now); st != "active" {
		t.Errorf("the successor of a key revoked by id is %s, want active", st)
	}
	// The revocations' claims on the keys' rotations are no keys.
	keys, err := s.APIKeys(ctx, "acme")
	if err != nil {
		t.Fatalf("APIKeys: %v", err)
	}
	if len(keys) != 5 {
		t.Errorf("acme lists %d keys, want 5", len(keys))
	}
}
