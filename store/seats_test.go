package store_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

// seatFixture is a store with tenants acme (spaces prod, dev) and globex
// (space prod).
func seatFixture(t *testing.T) *store.Store {
	t.Helper()
	s, _ := openStore(t)
	mustTenant(t, s, "acme")
	mustTenant(t, s, "globex")
	mustSpace(t, s, "acme", "prod")
	mustSpace(t, s, "acme", "dev")
	mustSpace(t, s, "globex", "prod")
	return s
}

func TestCreateSeat(t *testing.T) {
	t.Parallel()
	s := seatFixture(t)
	viewer := authz.Seat{Tenant: "acme", Name: "viewer",
		Grants: []authz.Grant{{Space: "prod", Permissions: []string{"datasets.read"}}}}

	tests := []struct {
		name string
		seat authz.Seat
		want authz.Seat
		err  error
	}{
		{name: "grants sorted by space", seat: authz.Seat{Tenant: "acme", Name: "editor",
			Grants: []authz.Grant{
				{Space: "prod", Permissions: []string{"datasets.read"}},
				{Space: "dev", Permissions: []string{"datasets.write", "datasets.read"}},
			}},
			want: authz.Seat{Tenant: "acme", Name: "editor", Groups: []string{},
				Grants: []authz.Grant{
					{Space: "dev", Permissions: []string{"datasets.write", "datasets.read"}},
					{Space: "prod", Permissions: []string{"datasets.read"}},
				}}},
		{name: "every space", seat: authz.Seat{Tenant: "acme", Name: "admin",
			Grants: []authz.Grant{{Space: "*", Permissions: []string{"*"}}}},
			want: authz.Seat{Tenant: "acme", Name: "admin", Groups: []string{},
				Grants: []authz.Grant{{Space: "*", Permissions: []string{"*"}}}}},
		{name: "groups", seat: authz.Seat{Tenant: "acme", Name: "viewers",
			Grants: []authz.Grant{{Space: "prod", Permissions: []string{"datasets.read"}}},
			Groups: []string{"CN=viewers,OU=groups", "f3b2c1d0-0000-4000-8000-000000000001"}},
			want: authz.Seat{Tenant: "acme", Name: "viewers",
				Grants: []authz.Grant{{Space: "prod", Permissions: []string{"datasets.read"}}},
				Groups: []string{"CN=viewers,OU=groups", "f3b2c1d0-0000-4000-8000-000000000001"}}},
		{name: "no grants", seat: authz.Seat{Tenant: "acme", Name: "nobody"},
			want: authz.Seat{Tenant: "acme", Name: "nobody", Groups: []string{}}},
		{name: "same name in another tenant", seat: authz.Seat{Tenant: "globex", Name: "viewer",
			Grants: []authz.Grant{{Space: "prod", Permissions: []string{"datasets.read"}}}},
			want: authz.Seat{Tenant: "globex", Name: "viewer", Groups: []string{},
				Grants: []authz.Grant{{Space: "prod", Permissions: []string{"datasets.read"}}}}},
		{name: "first of a name", seat: viewer, want: authz.Seat{Tenant: "acme", Name: "viewer",
			Groups: []string{}, Grants: []authz.Grant{{Space: "prod", Permissions: []string{"datasets.read"}}}}},
		{name: "duplicate", seat: viewer, err: store.ErrExists},
		{name: "unknown tenant", seat: authz.Seat{Tenant: "initech", Name: "viewer"}, err: store.ErrNotFound},
		{name: "unknown space", seat: authz.Seat{Tenant: "acme", Name: "x",
			Grants: []authz.Grant{{Space: "staging", Permissions: []string{"datasets.read"}}}}, err: store.ErrNotFound},
		{name: "space of another tenant", seat: authz.Seat{Tenant: "globex", Name: "x",
			Grants: []authz.Grant{{Space: "dev", Permissions: []string{"datasets.read"}}}}, err: store.ErrNotFound},
	}
	invalid := []struct {
		name string
		seat authz.Seat
	}{
		{"invalid seat name", authz.Seat{Tenant: "acme", Name: "a/b"}},
		{"invalid tenant", authz.Seat{Tenant: "Acme", Name: "viewer"}},
		{"space granted twice", authz.Seat{Tenant: "acme", Name: "x", Grants: []authz.Grant{
			{Space: "prod", Permissions: []string{"a"}}, {Space: "prod", Permissions: []string{"b"}}}}},
		{"no permissions", authz.Seat{Tenant: "acme", Name: "x", Grants: []authz.Grant{{Space: "prod"}}}},
		{"bad permission", authz.Seat{Tenant: "acme", Name: "x", Grants: []authz.Grant{
			{Space: "prod", Permissions: []string{"Datasets.Read"}}}}},
		{"bad space name", authz.Seat{Tenant: "acme", Name: "x", Grants: []authz.Grant{
			{Space: "a.b", Permissions: []string{"a"}}}}},
		{"blank group", authz.Seat{Tenant: "acme", Name: "x", Groups: []string{"  "}}},
		{"group with a control character", authz.Seat{Tenant: "acme", Name: "x", Groups: []string{"CN=a\nb"}}},
		{"every problem at once", authz.Seat{Tenant: "", Name: "", Groups: []string{""},
			Grants: []authz.Grant{{Space: "", Permissions: []string{""}}}}},
	}
	for _, tc := range invalid {
		tests = append(tests, struct {
			name string
			seat authz.Seat
			want authz.Seat
			err  error
		}{name: tc.name, seat: tc.seat, err: authz.ValidateSeat(tc.seat)})
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq := lastChange(t, s)
			got, err := s.CreateSeat(t.Context(), tc.seat)
			wantErr(t, "CreateSeat", err, tc.err)
			if tc.err != nil {
				unchanged(t, s, seq)
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("CreateSeat (-want +got):\n%s", diff)
			}
			read, err := s.Seat(t.Context(), tc.seat.Tenant, tc.seat.Name)
			if err != nil {
				t.Fatalf("Seat: %v", err)
			}
			if diff := cmp.Diff(tc.want, read); diff != "" {
				t.Errorf("Seat round trip (-want +got):\n%s", diff)
			}
		})
	}

	got, err := s.Seats(t.Context(), "acme")
	if err != nil {
		t.Fatalf("Seats: %v", err)
	}
	var names []string
	for _, seat := range got {
		names = append(names, seat.Name)
	}
	if diff := cmp.Diff([]string{"admin", "editor", "nobody", "viewer", "viewers"}, names); diff != "" {
		t.Errorf("Seats(acme) names (-want +got):\n%s", diff)
	}
}

func TestSeatNotFound(t *testing.T) {
	t.Parallel()
	s := seatFixture(t)
	mustSeat(t, s, authz.Seat{Tenant: "acme", Name: "viewer"})
	for _, tc := range []struct{ name, tenant, seat string }{
		{"unknown seat", "acme", "editor"},
		{"seat of another tenant", "globex", "viewer"},
		{"unknown tenant", "initech", "viewer"},
		{"case differs", "acme", "Viewer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Seat(t.Context(), tc.tenant, tc.seat)
			wantErr(t, "Seat", err, store.ErrNotFound)
		})
	}
}

func TestUpdateSeat(t *testing.T) {
	t.Parallel()
	orig := authz.Seat{Tenant: "acme", Name: "team",
		Grants: []authz.Grant{{Space: "prod", Permissions: []string{"datasets.read"}}},
		Groups: []string{"CN=team,OU=groups"}}
	newGrants := []authz.Grant{
		{Space: "prod", Permissions: []string{"datasets.write"}},
		{Space: "dev", Permissions: []string{"*"}},
	}
	sortedNew := []authz.Grant{
		{Space: "dev", Permissions: []string{"*"}},
		{Space: "prod", Permissions: []string{"datasets.write"}},
	}
	newGroups := []string{"CN=devs,OU=groups", "CN=ops,OU=groups"}
	var noGrants []authz.Grant
	noGroups := []string{}
	badGrants := []authz.Grant{{Space: "staging", Permissions: []string{"a"}}}
	invalidGrants := []authz.Grant{{Space: "prod", Permissions: []string{"Bad"}}}

	tests := []struct {
		name   string
		seat   string
		update store.SeatUpdate
		want   authz.Seat
		err    error
	}{
		{name: "grants only", seat: "team", update: store.SeatUpdate{Grants: &newGrants},
			want: authz.Seat{Tenant: "acme", Name: "team", Grants: sortedNew, Groups: orig.Groups}},
		{name: "groups only", seat: "team", update: store.SeatUpdate{Groups: &newGroups},
			want: authz.Seat{Tenant: "acme", Name: "team", Grants: orig.Grants, Groups: newGroups}},
		{name: "both", seat: "team", update: store.SeatUpdate{Grants: &newGrants, Groups: &newGroups},
			want: authz.Seat{Tenant: "acme", Name: "team", Grants: sortedNew, Groups: newGroups}},
		{name: "neither", seat: "team", update: store.SeatUpdate{}, want: orig},
		{name: "clear both", seat: "team", update: store.SeatUpdate{Grants: &noGrants, Groups: &noGroups},
			want: authz.Seat{Tenant: "acme", Name: "team", Groups: []string{}}},
		{name: "unknown seat", seat: "ghost", update: store.SeatUpdate{Groups: &newGroups}, err: store.ErrNotFound},
		{name: "unknown space", seat: "team", update: store.SeatUpdate{Grants: &badGrants}, err: store.ErrNotFound},
		{name: "invalid grant", seat: "team", update: store.SeatUpdate{Grants: &invalidGrants},
			err: authz.ValidateSeat(authz.Seat{Tenant: "acme", Name: "team", Grants: invalidGrants})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := seatFixture(t)
			mustSeat(t, s, orig)
			seq := lastChange(t, s)
			got, err := s.UpdateSeat(t.Context(), "acme", tc.seat, tc.update)
			wantErr(t, "UpdateSeat", err, tc.err)
			read, rerr := s.Seat(t.Context(), "acme", "team")
			if rerr != nil {
				t.Fatalf("Seat: %v", rerr)
			}
			if tc.err != nil {
				unchanged(t, s, seq)
				if diff := cmp.Diff(orig, read); diff != "" {
					t.Errorf("a failed update changed the seat (-want +got):\n%s", diff)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("UpdateSeat (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, read); diff != "" {
				t.Errorf("Seat after update (-want +got):\n%s", diff)
			}
			want := []authz.Change{{Seq: seq + 1, Kind: authz.ChangeSeat, Tenant: "acme", Key: "team", At: ms(t0)}}
			if diff := cmp.Diff(want, changesSince(t, s, seq)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeleteSeat(t *testing.T) {
	t.Parallel()
	s := seatFixture(t)
	ctx := t.Context()
	mustSeat(t, s, authz.Seat{Tenant: "acme", Name: "a"})
	mustSeat(t, s, authz.Seat{Tenant: "acme", Name: "b"})
	mustSeat(t, s, authz.Seat{Tenant: "globex", Name: "a"})

	seq := lastChange(t, s)
	if err := s.DeleteSeat(ctx, "acme", "a"); err != nil {
		t.Fatalf("DeleteSeat: %v", err)
	}
	_, err := s.Seat(ctx, "acme", "a")
	wantErr(t, "Seat after delete", err, store.ErrNotFound)
	if _, err := s.Seat(ctx, "globex", "a"); err != nil {
		t.Errorf("deleting acme's seat touched globex's: %v", err)
	}
	want := []authz.Change{{Seq: seq + 1, Kind: authz.ChangeSeat, Tenant: "acme", Key: "a", At: ms(t0)}}
	if diff := cmp.Diff(want, changesSince(t, s, seq)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}

	for _, tc := range []struct{ name, tenant, seat string }{
		{"deleted already", "acme", "a"},
		{"unknown", "acme", "zzz"},
		{"unknown tenant", "initech", "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq := lastChange(t, s)
			wantErr(t, "DeleteSeat", s.DeleteSeat(t.Context(), tc.tenant, tc.seat), store.ErrNotFound)
			unchanged(t, s, seq)
		})
	}

	got, err := s.Seats(ctx, "acme")
	if err != nil {
		t.Fatalf("Seats: %v", err)
	}
	if diff := cmp.Diff([]authz.Seat{{Tenant: "acme", Name: "b", Groups: []string{}}}, got); diff != "" {
		t.Errorf("Seats(acme) after delete (-want +got):\n%s", diff)
	}
}
