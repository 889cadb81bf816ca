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

func TestRotateAPIKey(t *testing.T) {
	t.Parallel()
	const step = time.Minute // from creating the old key to rotating it
	tests := []struct {
		name       string
		oldExpires time.Time
		grace      time.Duration
		// wantOld is what rotation changes in the old key.
		wantOld func(old *store.APIKey, now time.Time)
	}{
		{name: "grace shortens the expiry", oldExpires: t0.Add(30 * 24 * time.Hour), grace: time.Hour,
			wantOld: func(old *store.APIKey, now time.Time) { old.ExpiresAt = ms(now.Add(time.Hour)) }},
		{name: "grace never extends the expiry", oldExpires: t0.Add(30 * time.Minute), grace: 2 * time.Hour,
			wantOld: func(*store.APIKey, time.Time) {}},
		{name: "grace ending with the key", oldExpires: t0.Add(step + time.Hour), grace: time.Hour,
			wantOld: func(*store.APIKey, time.Time) {}},
		{name: "no grace revokes at once", oldExpires: t0.Add(30 * 24 * time.Hour), grace: 0,
			wantOld: func(old *store.APIKey, now time.Time) { old.RevokedAt = ms(now) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := keyFixture(t)
			ctx := t.Context()
			old := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "deploy", tc.oldExpires, "viewer", "editor"))
			c.Advance(step)
			now := c.Now()
			seq := lastChange(t, s)

			nk := newKey(t, "acme")
			// What the caller puts in next besides id, hash and expiry is
			// replaced by the old key's.
			next := store.APIKey{ID: nk.ID, Hash: nk.Hash, ExpiresAt: now.Add(90 * 24 * time.Hour),
				Tenant: "globex", Name: "other", Owner: "mallory", Seats: []string{"viewer"}}
			created, ended, err := s.RotateAPIKey(ctx, old, next, tc.grace)
			if err != nil {
				t.Fatalf("RotateAPIKey: %v", err)
			}
			wantNew := store.APIKey{ID: nk.ID, Tenant: "acme", Name: "deploy", Owner: "ops@example.com",
				Seats: []string{"editor", "viewer"}, Hash: nk.Hash, CreatedAt: ms(now),
				ExpiresAt: ms(now.Add(90 * 24 * time.Hour))}
			wantOld := old
			wantOld.SupersededBy = nk.ID
			tc.wantOld(&wantOld, now)

			if diff := cmp.Diff(wantNew, created); diff != "" {
				t.Errorf("new key (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantOld, ended); diff != "" {
				t.Errorf("old key (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantNew, mustRecord(t, s, nk.ID)); diff != "" {
				t.Errorf("stored new key (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantOld, mustRecord(t, s, old.ID)); diff != "" {
				t.Errorf("stored old key (-want +got):\n%s", diff)
			}
			wantCh := []authz.Change{
				{Seq: seq + 1, Kind: authz.ChangeAPIKey, Tenant: "acme", Key: nk.ID, At: ms(now)},
				{Seq: seq + 2, Kind: authz.ChangeAPIKey, Tenant: "acme", Key: old.ID, At: ms(now)},
			}
			if diff := cmp.Diff(wantCh, changesSince(t, s, seq)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRotateAPIKeyRefused(t *testing.T) {
	t.Parallel()
	s, c := keyFixture(t)
	ctx := t.Context()
	year := t0.Add(store.MaxKeyLifetime)

	rotated := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "rotated", year))
	successor := newKey(t, "acme")
	if _, _, err := s.RotateAPIKey(ctx, rotated, keyFor(successor, "", "", year), 24*time.Hour); err != nil {
		t.Fatalf("first rotation: %v", err)
	}
	revoked := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "revoked", year))
	if _, err := s.RevokeAPIKey(ctx, "acme", revoked.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	expired := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "expired", t0.Add(time.Hour)))
	active := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "active", year))
	c.Advance(time.Hour)

	tests := []struct {
		name    string
		old     store.APIKey
		expires time.Time
		grace   time.Duration
		sameID  bool
		err     error
	}{
		{name: "already rotated", old: mustRecord(t, s, rotated.ID), expires: year,
			err: fmt.Errorf("api key %s was already rotated to %s; rotate that one", rotated.ID, successor.ID)},
		{name: "revoked", old: mustRecord(t, s, revoked.ID), expires: year,
			err: fmt.Errorf("api key %s is revoked; only an active key can be rotated", revoked.ID)},
		{name: "expired", old: mustRecord(t, s, expired.ID), expires: year,
			err: fmt.Errorf("api key %s is expired; only an active key can be rotated", expired.ID)},
		{name: "negative grace", old: active, expires: year, grace: -time.Second,
			err: errors.New("grace: must be between 0 and one year")},
		{name: "grace over a year", old: active, expires: year, grace: store.MaxKeyLifetime + time.Second,
			err: errors.New("grace: must be between 0 and one year")},
		{name: "new key already expired", old: active, expires: t0,
			err: errors.New("expiry: must be in the future")},
		{name: "new key lives too long", old: active, expires: c.Now().Add(2 * store.MaxKeyLifetime),
			err: errors.New("expiry: at most 8760h (one year) from now")},
		{name: "new key has the old id", old: active, expires: year, sameID: true, err: store.ErrExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := mustRecord(t, s, tc.old.ID)
			seq := lastChange(t, s)
			nk := newKey(t, "acme")
			next := keyFor(nk, "", "", tc.expires)
			if tc.sameID {
				next.ID = tc.old.ID
			}
			_, _, err := s.RotateAPIKey(t.Context(), tc.old, next, tc.grace)
			wantErr(t, "RotateAPIKey", err, tc.err)
			unchanged(t, s, seq)
			if diff := cmp.Diff(before, mustRecord(t, s, tc.old.ID)); diff != "" {
				t.Errorf("a refused rotation changed the old key (-want +got):\n%s", diff)
			}
			_, err = s.APIKeyRecord(t.Context(), nk.ID)
			wantErr(t, "the refused successor", err, store.ErrNotFound)
		})
	}
}

// TestRotateAPIKeyChecksStoredKey rotates with a copy of the old key that
// no longer (or never) matches the store. RotateAPIKey must judge the key
// as stored, not the caller's copy: a CLI that read the key before another
// admin revoked it must not mint an active successor of a revoked key.
func TestRotateAPIKeyChecksStoredKey(t *testing.T) {
	t.Parallel()
	year := t0.Add(store.MaxKeyLifetime)
	tests := []struct {
		name string
		// stale returns the caller's copy of the old key after changing
		// the stored one behind its back, and the error rotating it must
		// give.
		stale func(t *testing.T, s *store.Store, old store.APIKey) (store.APIKey, error)
	}{
		{name: "revoked since it was read",
			stale: func(t *testing.T, s *store.Store, old store.APIKey) (store.APIKey, error) {
				if _, err := s.RevokeAPIKey(t.Context(), "acme", old.ID); err != nil {
					t.Fatalf("RevokeAPIKey: %v", err)
				}
				return old, fmt.Errorf("api key %s is revoked; only an active key can be rotated", old.ID)
			}},
		{name: "rotated since it was read",
			stale: func(t *testing.T, s *store.Store, old store.APIKey) (store.APIKey, error) {
				nk := newKey(t, "acme")
				if _, _, err := s.RotateAPIKey(t.Context(), old, keyFor(nk, "", "", year), time.Hour); err != nil {
					t.Fatalf("first rotation: %v", err)
				}
				return old, fmt.Errorf("api key %s was already rotated to %s; rotate that one", old.ID, nk.ID)
			}},
		{name: "never stored",
			stale: func(t *testing.T, _ *store.Store, old store.APIKey) (store.APIKey, error) {
				nk := newKey(t, "acme")
				old.ID, old.Hash = nk.ID, nk.Hash
				return old, store.ErrNotFound
			}},
		{name: "of another tenant",
			stale: func(t *testing.T, s *store.Store, old store.APIKey) (store.APIKey, error) {
				foreign := mustKey(t, s, keyFor(newKey(t, "globex"), "globex", "deploy", year))
				old.ID = foreign.ID
				return old, store.ErrNotFound
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := keyFixture(t)
			old := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "deploy", year, "viewer"))
			stale, want := tc.stale(t, s, old)
			before := allKeys(t, s)
			seq := lastChange(t, s)
			_, _, err := s.RotateAPIKey(t.Context(), stale, keyFor(newKey(t, "acme"), "", "", year), time.Hour)
			if diff := cmp.Diff(before, allKeys(t, s)); diff != "" {
				t.Errorf("a rotation of a stale copy changed stored keys (-want +got):\n%s", diff)
			}
			unchanged(t, s, seq)
			wantErr(t, "RotateAPIKey with a stale copy", err, want)
		})
	}
}

// allKeys returns the keys of both fixture tenants.
func allKeys(t *testing.T, s *store.Store) []store.APIKey {
	t.Helper()
	var all []store.APIKey
	for _, tenant := range []string{"acme", "globex"} {
		keys, err := s.APIKeys(t.Context(), tenant)
		if err != nil {
			t.Fatalf("APIKeys(%s): %v", tenant, err)
		}
		all = append(all, keys...)
	}
	return all
}
