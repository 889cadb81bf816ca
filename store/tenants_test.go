package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

func TestCreateTenant(t *testing.T) {
	t.Parallel()
	s, c := openStore(t)
	ctx := t.Context()

	got, err := s.CreateTenant(ctx, "acme")
	if err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	want := store.Tenant{Name: "acme", CreatedAt: ms(t0)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CreateTenant (-want +got):\n%s", diff)
	}
	read, err := s.Tenant(ctx, "acme")
	if err != nil {
		t.Fatalf("Tenant: %v", err)
	}
	if diff := cmp.Diff(want, read); diff != "" {
		t.Errorf("Tenant round trip (-want +got):\n%s", diff)
	}

	c.Advance(time.Hour)
	seq := lastChange(t, s)
	_, err = s.CreateTenant(ctx, "acme")
	wantErr(t, "CreateTenant again", err, store.ErrExists)
	unchanged(t, s, seq)
	read, err = s.Tenant(ctx, "acme")
	if err != nil {
		t.Fatalf("Tenant: %v", err)
	}
	if diff := cmp.Diff(want, read); diff != "" {
		t.Errorf("a duplicate create changed the tenant (-want +got):\n%s", diff)
	}
}

func TestCreateTenantInvalid(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	for _, tc := range []struct{ name, tenant string }{
		{"empty", ""},
		{"upper case", "Acme"},
		{"underscore", "ac_me"},
		{"leading dash", "-acme"},
		{"trailing dash", "acme-"},
		{"dot", "ac.me"},
		{"slash", "ac/me"},
		{"dollar", "$acme"},
		{"NUL", "ac\x00me"},
		{"space", "ac me"},
		{"64 characters", strings.Repeat("a", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateTenant(t.Context(), tc.tenant)
			wantErr(t, "CreateTenant", err, authz.ValidateTenant(tc.tenant))
		})
	}
	tenants, err := s.Tenants(t.Context())
	if err != nil {
		t.Fatalf("Tenants: %v", err)
	}
	if len(tenants) != 0 {
		t.Errorf("invalid names were written: %v", tenants)
	}
	unchanged(t, s, 0)
}

func TestCreateTenantLongestName(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	name := strings.Repeat("a", 62) + "9"
	if _, err := s.CreateTenant(t.Context(), name); err != nil {
		t.Fatalf("CreateTenant(63 characters): %v", err)
	}
}

func TestTenantsSorted(t *testing.T) {
	t.Parallel()
	s, c := openStore(t)
	for _, name := range []string{"zeta", "acme", "m-2", "m-10", "0day"} {
		mustTenant(t, s, name)
		c.Advance(time.Second)
	}
	got, err := s.Tenants(t.Context())
	if err != nil {
		t.Fatalf("Tenants: %v", err)
	}
	want := []store.Tenant{
		{Name: "0day", CreatedAt: ms(t0.Add(4 * time.Second))},
		{Name: "acme", CreatedAt: ms(t0.Add(1 * time.Second))},
		{Name: "m-10", CreatedAt: ms(t0.Add(3 * time.Second))},
		{Name: "m-2", CreatedAt: ms(t0.Add(2 * time.Second))},
		{Name: "zeta", CreatedAt: ms(t0)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tenants (-want +got):\n%s", diff)
	}
}

func TestTenantNotFound(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	mustTenant(t, s, "acme")
	for _, name := range []string{"other", "ACME", "", "acme/x"} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Tenant(t.Context(), name)
			wantErr(t, "Tenant", err, store.ErrNotFound)
		})
	}
}

func TestCreateSpace(t *testing.T) {
	t.Parallel()
	s, c := openStore(t)
	ctx := t.Context()
	mustTenant(t, s, "acme")
	mustTenant(t, s, "globex")
	c.Advance(time.Minute)

	tests := []struct {
		name   string
		tenant string
		space  string
		want   store.Space
		err    error
	}{
		{name: "new", tenant: "acme", space: "prod",
			want: store.Space{Tenant: "acme", Name: "prod", CreatedAt: ms(t0.Add(time.Minute))}},
		{name: "second", tenant: "acme", space: "Dev_2",
			want: store.Space{Tenant: "acme", Name: "Dev_2", CreatedAt: ms(t0.Add(time.Minute))}},
		{name: "duplicate in tenant", tenant: "acme", space: "prod", err: store.ErrExists},
		{name: "same name in another tenant", tenant: "globex", space: "prod",
			want: store.Space{Tenant: "globex", Name: "prod", CreatedAt: ms(t0.Add(time.Minute))}},
		{name: "unknown tenant", tenant: "initech", space: "prod", err: store.ErrNotFound},
		{name: "invalid tenant", tenant: "ACME", space: "prod", err: store.ErrNotFound},
		{name: "invalid name", tenant: "acme", space: "-x", err: authz.ValidateName("space", "-x")},
		{name: "slash in name", tenant: "acme", space: "a/b", err: authz.ValidateName("space", "a/b")},
		{name: "dot in name", tenant: "acme", space: "a.b", err: authz.ValidateName("space", "a.b")},
		{name: "star", tenant: "acme", space: "*", err: authz.ValidateName("space", "*")},
		{name: "empty", tenant: "acme", space: "", err: authz.ValidateName("space", "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq := lastChange(t, s)
			got, err := s.CreateSpace(ctx, tc.tenant, tc.space)
			wantErr(t, "CreateSpace", err, tc.err)
			if tc.err != nil {
				unchanged(t, s, seq)
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("CreateSpace (-want +got):\n%s", diff)
			}
		})
	}

	for _, tc := range []struct {
		tenant string
		want   []store.Space
	}{
		{"acme", []store.Space{
			{Tenant: "acme", Name: "Dev_2", CreatedAt: ms(t0.Add(time.Minute))},
			{Tenant: "acme", Name: "prod", CreatedAt: ms(t0.Add(time.Minute))},
		}},
		{"globex", []store.Space{{Tenant: "globex", Name: "prod", CreatedAt: ms(t0.Add(time.Minute))}}},
		{"initech", []store.Space{}},
	} {
		t.Run("list "+tc.tenant, func(t *testing.T) {
			got, err := s.Spaces(ctx, tc.tenant)
			if err != nil {
				t.Fatalf("Spaces: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Spaces(%s) (-want +got):\n%s", tc.tenant, diff)
			}
		})
	}
}
