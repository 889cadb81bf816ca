package store_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

// keyFixture is a store with tenants acme (seats viewer, editor) and
// globex (seat viewer).
func keyFixture(t *testing.T) (*store.Store, *clock) {
	t.Helper()
	s, c := openStore(t)
	mustTenant(t, s, "acme")
	mustTenant(t, s, "globex")
	mustSeat(t, s, authz.Seat{Tenant: "acme", Name: "viewer"})
	mustSeat(t, s, authz.Seat{Tenant: "acme", Name: "editor"})
	mustSeat(t, s, authz.Seat{Tenant: "globex", Name: "viewer"})
	return s, c
}

func TestCreateAPIKey(t *testing.T) {
	t.Parallel()
	s, _ := keyFixture(t)
	month := t0.Add(30 * 24 * time.Hour)
	taken := newKey(t, "acme")
	mustKey(t, s, keyFor(taken, "acme", "taken", month))

	type result struct {
		seats   []string
		expires time.Time
	}
	tests := []struct {
		name string
		key  func(nk authz.NewAPIKey) store.APIKey
		want result
		err  error
	}{
		{name: "seats sorted and deduplicated",
			key: func(nk authz.NewAPIKey) store.APIKey {
				return keyFor(nk, "acme", "ci", month, "viewer", "editor", "viewer")
			},
			want: result{seats: []string{"editor", "viewer"}, expires: ms(month)}},
		{name: "expiry one year ahead",
			key:  func(nk authz.NewAPIKey) store.APIKey { return keyFor(nk, "acme", "year", t0.Add(store.MaxKeyLifetime)) },
			want: result{expires: ms(t0.Add(store.MaxKeyLifetime))}},
		{name: "name of another tenant's key",
			key:  func(nk authz.NewAPIKey) store.APIKey { return keyFor(nk, "globex", "taken", month, "viewer") },
			want: result{seats: []string{"viewer"}, expires: ms(month)}},
		{name: "name taken by an active key",
			key: func(nk authz.NewAPIKey) store.APIKey { return keyFor(nk, "acme", "taken", month) },
			err: store.ErrExists},
		{name: "duplicate id",
			key: func(authz.NewAPIKey) store.APIKey { return keyFor(taken, "acme", "other", month) },
			err: store.ErrExists},
		{name: "unknown tenant",
			key: func(nk authz.NewAPIKey) store.APIKey { return keyFor(nk, "initech", "ci", month) },
			err: store.ErrNotFound},
		{name: "unknown seat",
			key: func(nk authz.NewAPIKey) store.APIKey { return keyFor(nk, "acme", "ci", month, "viewer", "ghost") },
			err: store.ErrNotFound},
		{name: "seat of another tenant",
			key: func(nk authz.NewAPIKey) store.APIKey { return keyFor(nk, "globex", "ci", month, "editor") },
			err: store.ErrNotFound},
		{name: "expiry now",
			key: func(nk authz.NewAPIKey) store.APIKey { return keyFor(nk, "acme", "ci", t0) },
			err: errors.New("expiry: must be in the future")},
		{name: "expiry in the past",
			key: func(nk authz.NewAPIKey) store.APIKey { return keyFor(nk, "acme", "ci", t0.Add(-time.Hour)) },
			err: errors.New("expiry: must be in the future")},
		{name: "no expiry",
			key: func(nk authz.NewAPIKey) store.APIKey { return keyFor(nk, "acme", "ci", time.Time{}) },
			err: errors.New("expiry: must be in the future")},
		{name: "expiry one year and a second ahead",
			key: func(nk authz.NewAPIKey) store.APIKey {
				return keyFor(nk, "acme", "year-plus", t0.Add(store.MaxKeyLifetime+time.Second))
			},
			err: errors.New("expiry: at most 8760h (one year) from now")},
		{name: "expiry two years ahead",
			key: func(nk authz.NewAPIKey) store.APIKey {
				return keyFor(nk, "acme", "two-years", t0.Add(2*store.MaxKeyLifetime))
			},
			err: errors.New("expiry: at most 8760h (one year) from now")},
		{name: "invalid name",
			key: func(nk authz.NewAPIKey) store.APIKey { return keyFor(nk, "acme", "ci key", month) },
			err: authz.ValidateName("key", "ci key")},
		{name: "invalid seat name",
			key: func(nk authz.NewAPIKey) store.APIKey { return keyFor(nk, "acme", "ci", month, "a.b") },
			err: authz.ValidateName("seat", "a.b")},
		{name: "owner too long",
			key: func(nk authz.NewAPIKey) store.APIKey {
				k := keyFor(nk, "acme", "ci", month)
				k.Owner = strings.Repeat("o", 257)
				return k
			},
			err: errors.New("owner: at most 256 characters")},
		{name: "no id",
			key: func(nk authz.NewAPIKey) store.APIKey { k := keyFor(nk, "acme", "ci", month); k.ID = ""; return k },
			err: errors.New("api key: id and hash are required")},
		{name: "no hash",
			key: func(nk authz.NewAPIKey) store.APIKey {
				k := keyFor(nk, "acme", "ci", month)
				k.Hash = authz.KeyHash{}
				return k
			},
			err: errors.New("api key: id and hash are required")},
		{name: "every problem at once",
			key: func(authz.NewAPIKey) store.APIKey { return store.APIKey{Tenant: "A", Seats: []string{""}} },
			err: errors.Join(authz.ValidateTenant("A"), authz.ValidateName("key", ""),
				errors.New("api key: id and hash are required"), authz.ValidateName("seat", ""),
				errors.New("expiry: must be in the future"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nk := newKey(t, "acme")
			in := tc.key(nk)
			seq := lastChange(t, s)
			got, err := s.CreateAPIKey(t.Context(), in)
			wantErr(t, "CreateAPIKey", err, tc.err)
			if tc.err != nil {
				unchanged(t, s, seq)
				if in.ID != taken.ID {
					_, err := s.APIKeyRecord(t.Context(), in.ID)
					wantErr(t, "APIKeyRecord of a refused key", err, store.ErrNotFound)
				}
				return
			}
			want := store.APIKey{ID: nk.ID, Tenant: in.Tenant, Name: in.Name, Owner: "ops@example.com",
				Seats: tc.want.seats, Hash: nk.Hash, CreatedAt: ms(t0), ExpiresAt: tc.want.expires}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("CreateAPIKey (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, mustRecord(t, s, nk.ID)); diff != "" {
				t.Errorf("APIKeyRecord round trip (-want +got):\n%s", diff)
			}
			wantCh := []authz.Change{{Seq: seq + 1, Kind: authz.ChangeAPIKey, Tenant: in.Tenant, Key: nk.ID, At: ms(t0)}}
			if diff := cmp.Diff(wantCh, changesSince(t, s, seq)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCreateAPIKeyNameFreedByRevokeOrExpiry covers catalogue row 120
// (docs/catalogue-map.md).
func TestCreateAPIKeyNameFreedByRevokeOrExpiry(t *testing.T) {
	t.Parallel()
	s, c := keyFixture(t)
	ctx := t.Context()
	first := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "ci", t0.Add(time.Hour)))

	_, err := s.CreateAPIKey(ctx, keyFor(newKey(t, "acme"), "acme", "ci", t0.Add(2*time.Hour)))
	wantErr(t, "second active key of a name", err, store.ErrExists)

	if _, err := s.RevokeAPIKey(ctx, "acme", first.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	second := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "ci", t0.Add(time.Hour)))

	_, err = s.CreateAPIKey(ctx, keyFor(newKey(t, "acme"), "acme", "ci", t0.Add(2*time.Hour)))
	wantErr(t, "third while the second is active", err, store.ErrExists)

	c.Advance(time.Hour) // second expires exactly now
	third := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "ci", t0.Add(3*time.Hour)))

	keys, err := s.APIKeys(ctx, "acme")
	if err != nil {
		t.Fatalf("APIKeys: %v", err)
	}
	states := map[string]string{}
	for _, k := range keys {
		states[k.ID] = k.State(c.Now())
	}
	want := map[string]string{first.ID: "revoked", second.ID: "expired", third.ID: "active"}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("key states (-want +got):\n%s", diff)
	}
}

// TestAPIKeyLookup covers catalogue row 120 (docs/catalogue-map.md).
func TestAPIKeyLookup(t *testing.T) {
	t.Parallel()
	s, _ := keyFixture(t)
	nk := newKey(t, "acme")
	mustKey(t, s, keyFor(nk, "acme", "ci", t0.Add(time.Hour), "viewer", "editor"))

	var lookup authz.KeyLookup = s
	got, err := lookup.APIKey(t.Context(), nk.ID)
	if err != nil {
		t.Fatalf("APIKey: %v", err)
	}
	want := authz.APIKey{ID: nk.ID, Tenant: "acme", Name: "ci", Hash: nk.Hash,
		Seats: []string{"editor", "viewer"}, ExpiresAt: ms(t0.Add(time.Hour))}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("APIKey (-want +got):\n%s", diff)
	}

	other := newKey(t, "acme")
	for _, tc := range []struct{ name, id string }{
		{"never stored", other.ID},
		{"empty", ""},
		{"the plaintext key", nk.Key},
		{"the hash", nk.Hash.String()},
		{"id upper case", strings.ToUpper(nk.ID)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lookup.APIKey(t.Context(), tc.id)
			wantErr(t, "APIKey", err, store.ErrNotFound)
			_, err = s.APIKeyRecord(t.Context(), tc.id)
			wantErr(t, "APIKeyRecord", err, store.ErrNotFound)
		})
	}
}

// TestAPIKeyOnlyHashStored covers catalogue row 2 (docs/catalogue-map.md).
func TestAPIKeyOnlyHashStored(t *testing.T) {
	t.Parallel()
	s, _ := keyFixture(t)
	nk := newKey(t, "acme")
	created := mustKey(t, s, keyFor(nk, "acme", "ci", t0.Add(time.Hour)))
	rec := mustRecord(t, s, nk.ID)
	if rec.Hash != authz.HashAPIKey(nk.Key) {
		t.Errorf("stored hash %s, want SHA-256 of the key %s", rec.Hash, authz.HashAPIKey(nk.Key))
	}
	if !rec.Hash.Equal(created.Hash) {
		t.Errorf("APIKeyRecord hash %s differs from CreateAPIKey's %s", rec.Hash, created.Hash)
	}
	for name, k := range map[string]store.APIKey{"created": created, "record": rec} {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		for _, secret := range []string{"hash", nk.Key, nk.Hash.String()} {
			if strings.Contains(strings.ToLower(string(b)), strings.ToLower(secret)) {
				t.Errorf("JSON of the %s key holds %q: %s", name, secret, b)
			}
		}
	}
}

func TestResolveAPIKeys(t *testing.T) {
	t.Parallel()
	s, c := keyFixture(t)
	ctx := t.Context()
	oldest := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "deploy", t0.Add(time.Hour)))
	c.Advance(2 * time.Hour) // oldest expires
	middle := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "deploy", c.Now().Add(time.Hour)))
	if _, err := s.RevokeAPIKey(ctx, "acme", middle.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	c.Advance(time.Minute)
	newest := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "deploy", c.Now().Add(time.Hour)))
	middle = mustRecord(t, s, middle.ID)
	foreign := mustKey(t, s, keyFor(newKey(t, "globex"), "globex", "deploy", c.Now().Add(time.Hour)))

	tests := []struct {
		name, tenant, ref string
		want              []store.APIKey
		err               error
	}{
		{name: "by id", tenant: "acme", ref: middle.ID, want: []store.APIKey{middle}},
		{name: "by name, newest first", tenant: "acme", ref: "deploy", want: []store.APIKey{newest, middle, oldest}},
		{name: "name in another tenant", tenant: "globex", ref: "deploy", want: []store.APIKey{foreign}},
		{name: "id of another tenant", tenant: "acme", ref: foreign.ID, err: store.ErrNotFound},
		{name: "unknown", tenant: "acme", ref: "nothing", err: store.ErrNotFound},
		{name: "unknown tenant", tenant: "initech", ref: "deploy", err: store.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ResolveAPIKeys(t.Context(), tc.tenant, tc.ref)
			wantErr(t, "ResolveAPIKeys", err, tc.err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ResolveAPIKeys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRevokeAPIKey(t *testing.T) {
	t.Parallel()
	s, c := keyFixture(t)
	ctx := t.Context()
	k := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "ci", t0.Add(time.Hour), "viewer"))
	c.Advance(time.Minute)
	revokedAt := ms(c.Now())

	for _, tc := range []struct{ name, tenant, id string }{
		{"wrong tenant", "globex", k.ID},
		{"unknown tenant", "initech", k.ID},
		{"unknown id", "acme", newKey(t, "acme").ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq := lastChange(t, s)
			_, err := s.RevokeAPIKey(t.Context(), tc.tenant, tc.id)
			wantErr(t, "RevokeAPIKey", err, store.ErrNotFound)
			unchanged(t, s, seq)
			if got := mustRecord(t, s, k.ID); !got.RevokedAt.IsZero() {
				t.Errorf("key revoked through %s at %v", tc.name, got.RevokedAt)
			}
		})
	}

	want := k
	want.RevokedAt = revokedAt
	for i, advance := range []time.Duration{0, time.Hour} {
		c.Advance(advance)
		seq := lastChange(t, s)
		got, err := s.RevokeAPIKey(ctx, "acme", k.ID)
		if err != nil {
			t.Fatalf("RevokeAPIKey #%d: %v", i+1, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("RevokeAPIKey #%d (-want +got):\n%s", i+1, diff)
		}
		if diff := cmp.Diff(want, mustRecord(t, s, k.ID)); diff != "" {
			t.Errorf("APIKeyRecord after revoke #%d (-want +got):\n%s", i+1, diff)
		}
		wantCh := []authz.Change{{Seq: seq + 1, Kind: authz.ChangeAPIKey, Tenant: "acme", Key: k.ID, At: ms(c.Now())}}
		if diff := cmp.Diff(wantCh, changesSince(t, s, seq)); diff != "" {
			t.Errorf("changes of revoke #%d (-want +got):\n%s", i+1, diff)
		}
	}
	looked, err := s.APIKey(ctx, k.ID)
	if err != nil {
		t.Fatalf("APIKey: %v", err)
	}
	if !looked.RevokedAt.Equal(revokedAt) {
		t.Errorf("APIKey RevokedAt = %v, want %v", looked.RevokedAt, revokedAt)
	}
}

func TestTouchAPIKeys(t *testing.T) {
	t.Parallel()
	s, _ := keyFixture(t)
	ctx := t.Context()
	a := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "a", t0.Add(time.Hour)))
	b := mustKey(t, s, keyFor(newKey(t, "acme"), "acme", "b", t0.Add(time.Hour)))
	ghost := newKey(t, "acme").ID
	t1 := t0.Add(time.Minute)

	steps := []struct {
		name  string
		used  map[string]time.Time
		wantA time.Time
		wantB time.Time
	}{
		{name: "nothing", used: nil},
		{name: "first use", used: map[string]time.Time{a.ID: t1}, wantA: ms(t1)},
		{name: "earlier time is ignored", used: map[string]time.Time{a.ID: t0, b.ID: t0},
			wantA: ms(t1), wantB: ms(t0)},
		{name: "later time moves forward", used: map[string]time.Time{a.ID: t1.Add(time.Second), b.ID: t1},
			wantA: ms(t1.Add(time.Second)), wantB: ms(t1)},
		{name: "unknown id is ignored", used: map[string]time.Time{ghost: t1, b.ID: t1.Add(-time.Hour)},
			wantA: ms(t1.Add(time.Second)), wantB: ms(t1)},
	}
	for _, st := range steps {
		if err := s.TouchAPIKeys(ctx, st.used); err != nil {
			t.Fatalf("%s: TouchAPIKeys: %v", st.name, err)
		}
		got := map[string]time.Time{"a": mustRecord(t, s, a.ID).LastUsed, "b": mustRecord(t, s, b.ID).LastUsed}
		want := map[string]time.Time{"a": st.wantA, "b": st.wantB}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: last used (-want +got):\n%s", st.name, diff)
		}
	}
	_, err := s.APIKeyRecord(ctx, ghost)
	wantErr(t, "touching an unknown id", err, store.ErrNotFound)
	unchanged(t, s, 5+2)
}
