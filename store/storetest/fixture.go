package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

// Epoch is the time fixtures are created at, when tests use a fake clock.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Keys are the fixture's API keys by name; each is deterministic so that
// golden files can hold them.
type Keys map[string]string

// FixtureKey describes one fixture key.
type FixtureKey struct {
	Name, Tenant, ID string
	Seats            []string
	Expires          time.Duration // from the clock's now at seeding
	Revoked          bool
}

// FixtureKeys are the keys Seed creates. Ids are 16 characters of
// [a-z2-7], as real ones.
var FixtureKeys = []FixtureKey{
	{Name: "ci", Tenant: "acme", ID: "ciacmekeyaaaaaaa", Seats: []string{"editors"}, Expires: 30 * 24 * time.Hour},
	{Name: "reader", Tenant: "acme", ID: "readeracmekeyaaa", Seats: []string{"viewers"}, Expires: 30 * 24 * time.Hour},
	{Name: "multi", Tenant: "acme", ID: "multiacmekeyaaaa", Seats: []string{"viewers", "editors", "admins"}, Expires: 30 * 24 * time.Hour},
	{Name: "expiring", Tenant: "acme", ID: "expiringacmekeya", Seats: []string{"editors"}, Expires: time.Hour},
	{Name: "revoked", Tenant: "acme", ID: "revokedacmekeyaa", Seats: []string{"editors"}, Expires: 30 * 24 * time.Hour, Revoked: true},
	{Name: "ci", Tenant: "globex", ID: "ciglobexkeyaaaaa", Seats: []string{"editors"}, Expires: 30 * 24 * time.Hour},
}

// FixtureKeyString returns the plaintext of a fixture key: its secret is
// 32 copies of its id's first byte.
func FixtureKeyString(k FixtureKey) string {
	return authz.FormatAPIKey(k.Tenant, k.ID, bytes.Repeat([]byte{k.ID[0]}, 32))
}

// Seed fills s with two tenants (acme, globex), their spaces and seats, and
// FixtureKeys. It returns the plaintext keys by "tenant/name".
//
//	acme:   spaces proj1 proj2 ops
//	        editors: proj1=datasets.read,datasets.write
//	        viewers: proj1=datasets.read  (group "CN=viewers,OU=groups")
//	        admins:  ops=admin  proj2=*
//	globex: spaces proj1 proj2
//	        editors: proj1=datasets.read  proj2=datasets.read,datasets.write
//
// Both tenants have a seat editors and spaces proj1 and proj2, with
// different grants: a lookup or cache key that lost the tenant would give
// one tenant's keys the other's permissions (security catalogue row 4).
func Seed(t testing.TB, s *store.Store) Keys {
	t.Helper()
	ctx := context.Background()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	rw := []string{"datasets.read", "datasets.write"}
	for _, tn := range []string{"acme", "globex"} {
		must(s.CreateTenant(ctx, tn))
	}
	for _, sp := range []string{"proj1", "proj2", "ops"} {
		must(s.CreateSpace(ctx, "acme", sp))
	}
	for _, sp := range []string{"proj1", "proj2"} {
		must(s.CreateSpace(ctx, "globex", sp))
	}
	must(s.CreateSeat(ctx, authz.Seat{Tenant: "acme", Name: "editors", Grants: []authz.Grant{{Space: "proj1", Permissions: rw}}}))
	must(s.CreateSeat(ctx, authz.Seat{Tenant: "acme", Name: "viewers", Grants: []authz.Grant{{Space: "proj1", Permissions: []string{"datasets.read"}}},
		Groups: []string{"CN=viewers,OU=groups"}}))
	must(s.CreateSeat(ctx, authz.Seat{Tenant: "acme", Name: "admins", Grants: []authz.Grant{
		{Space: "ops", Permissions: []string{"admin"}}, {Space: "proj2", Permissions: []string{"*"}}}}))
	must(s.CreateSeat(ctx, authz.Seat{Tenant: "globex", Name: "editors", Grants: []authz.Grant{
		{Space: "proj1", Permissions: []string{"datasets.read"}}, {Space: "proj2", Permissions: rw}}}))

	keys := Keys{}
	for _, fk := range FixtureKeys {
		plain := FixtureKeyString(fk)
		must(s.CreateAPIKey(ctx, store.APIKey{ID: fk.ID, Tenant: fk.Tenant, Name: fk.Name, Seats: fk.Seats,
			Hash: authz.HashAPIKey(plain), ExpiresAt: s.Now().Add(fk.Expires)}))
		if fk.Revoked {
			must(s.RevokeAPIKey(ctx, fk.Tenant, fk.ID))
		}
		keys[fk.Tenant+"/"+fk.Name] = plain
	}
	return keys
}
