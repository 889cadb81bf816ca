package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
	"github.com/usher-dev/usher/store"
)

func mustUpsert(t *testing.T, s *store.Store, u login.User) login.User {
	t.Helper()
	got, err := s.UpsertUser(t.Context(), u)
	if err != nil {
		t.Fatalf("UpsertUser(%s): %v", u.Subject, err)
	}
	return got
}

func TestUpsertUser(t *testing.T) {
	s, c := openStore(t)
	u := login.User{Tenant: "acme", Issuer: "https://idp.test", Subject: "alice", Email: "alice@acme.test", Name: "Alice", Groups: []string{"eng"}}
	first := ms(c.Now())
	want := u
	want.FirstLogin, want.LastLogin = first, first
	if diff := cmp.Diff(want, mustUpsert(t, s, u)); diff != "" {
		t.Errorf("first login (-want +got):\n%s", diff)
	}

	// A later login updates email, name, groups and LastLogin; FirstLogin
	// stays.
	c.Advance(time.Hour)
	u.Email, u.Name, u.Groups = "Alice.Smith@acme.test", "Alice Smith", []string{"eng", "ops"}
	want = u
	want.FirstLogin, want.LastLogin = first, ms(c.Now())
	if diff := cmp.Diff(want, mustUpsert(t, s, u)); diff != "" {
		t.Errorf("second login (-want +got):\n%s", diff)
	}
	// A login reported with an older time does not move LastLogin back.
	u.LastLogin = t0
	if got := mustUpsert(t, s, u); !got.LastLogin.Equal(want.LastLogin) || !got.FirstLogin.Equal(first) {
		t.Errorf("older login: FirstLogin %v LastLogin %v, want %v and %v", got.FirstLogin, got.LastLogin, first, want.LastLogin)
	}

	for name, bad := range map[string]login.User{
		"no issuer":  {Tenant: "acme", Subject: "x"},
		"no subject": {Tenant: "acme", Issuer: "https://idp.test"},
		"bad tenant": {Tenant: "Acme!", Issuer: "https://idp.test", Subject: "x"},
	} {
		if _, err := s.UpsertUser(t.Context(), bad); err == nil {
			t.Errorf("%s: UpsertUser succeeded, want an error", name)
		}
	}
}

// Catalogue row 64: a user is (tenant, issuer, subject), never the email;
// no issuer and subject holding "/" make another pair's record.
// Catalogue row 63: a known email under a new subject is another user.
func TestUsersKeyedByIssuerAndSubject(t *testing.T) {
	s, _ := openStore(t)
	pairs := []login.User{
		{Tenant: "acme", Issuer: "https://idp.test/a", Subject: "b", Email: "same@acme.test"},
		{Tenant: "acme", Issuer: "https://idp.test", Subject: "a/b", Email: "same@acme.test"},
		{Tenant: "acme", Issuer: "https://other.test", Subject: "a/b", Email: "same@acme.test"},
		{Tenant: "globex", Issuer: "https://idp.test", Subject: "a/b", Email: "same@acme.test"},
	}
	for _, u := range pairs {
		mustUpsert(t, s, u)
	}
	got, err := s.ListUsers(t.Context(), "acme")
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	type key struct{ Issuer, Subject string }
	var keys []key
	for _, u := range got {
		keys = append(keys, key{u.Issuer, u.Subject})
	}
	want := []key{{"https://idp.test", "a/b"}, {"https://idp.test/a", "b"}, {"https://other.test", "a/b"}}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("acme's users (-want +got):\n%s", diff)
	}
}

func TestListUsersSorted(t *testing.T) {
	s, _ := openStore(t)
	for _, e := range []string{"carol@acme.test", "Bob@acme.test", "alice@acme.test"} {
		mustUpsert(t, s, login.User{Tenant: "acme", Issuer: "https://idp.test", Subject: "sub-" + e, Email: e})
	}
	got, err := s.ListUsers(t.Context(), "acme")
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	var emails []string
	for _, u := range got {
		emails = append(emails, u.Email)
	}
	if diff := cmp.Diff([]string{"alice@acme.test", "Bob@acme.test", "carol@acme.test"}, emails); diff != "" {
		t.Errorf("ListUsers order (-want +got):\n%s", diff)
	}
	if got, err := s.ListUsers(t.Context(), "globex"); err != nil || len(got) != 0 {
		t.Errorf("ListUsers(globex) = %v, %v; want none", got, err)
	}
}

func TestInvitations(t *testing.T) {
	s, c := openStore(t)
	mustTenant(t, s, "acme")
	mustSpace(t, s, "acme", "proj1")
	for _, name := range []string{"editors", "viewers"} {
		mustSeat(t, s, authz.Seat{Tenant: "acme", Name: name, Grants: []authz.Grant{{Space: "proj1", Permissions: []string{"datasets.read"}}}})
	}
	ctx := t.Context()
	if err := s.InviteUser(ctx, login.Invitation{Tenant: "acme", Email: "Alice@ACME.test", Seats: []string{"editors"}}); err != nil {
		t.Fatalf("InviteUser: %v", err)
	}
	want := login.Invitation{Tenant: "acme", Email: "alice@acme.test", Seats: []string{"editors"}, CreatedAt: ms(c.Now())}
	got, err := s.Invitation(ctx, "acme", "aLiCe@acme.TEST")
	if err != nil {
		t.Fatalf("Invitation: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Invitation (-want +got):\n%s", diff)
	}

	// Inviting again replaces.
	c.Advance(time.Minute)
	if err := s.InviteUser(ctx, login.Invitation{Tenant: "acme", Email: "alice@acme.test", Seats: []string{"viewers"}}); err != nil {
		t.Fatalf("InviteUser again: %v", err)
	}
	want.Seats, want.CreatedAt = []string{"viewers"}, ms(c.Now())
	if got, err = s.Invitation(ctx, "acme", "alice@acme.test"); err != nil || !cmp.Equal(want, got) {
		t.Errorf("replaced Invitation = %+v, %v; want %+v", got, err, want)
	}

	tests := []struct {
		name string
		inv  login.Invitation
		is   error
	}{
		{"unknown seat", login.Invitation{Tenant: "acme", Email: "bob@acme.test", Seats: []string{"admins"}}, store.ErrNotFound},
		{"unknown tenant", login.Invitation{Tenant: "globex", Email: "bob@acme.test"}, store.ErrNotFound},
		{"no email", login.Invitation{Tenant: "acme", Email: " "}, nil},
		{"not an address", login.Invitation{Tenant: "acme", Email: "bob"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.InviteUser(ctx, tt.inv)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("InviteUser = %v, want an error (wrapping %v)", err, tt.is)
			}
			if _, err := s.Invitation(ctx, tt.inv.Tenant, tt.inv.Email); !errors.Is(err, authz.ErrNotFound) {
				t.Errorf("refused invitation was stored: Invitation = %v", err)
			}
		})
	}
	if _, err := s.Invitation(ctx, "acme", "nobody@acme.test"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("Invitation of nobody = %v, want one wrapping authz.ErrNotFound", err)
	}
}

func TestRemoveUser(t *testing.T) {
	s, _ := openStore(t)
	mustTenant(t, s, "acme")
	ctx := t.Context()
	if err := s.InviteUser(ctx, login.Invitation{Tenant: "acme", Email: "alice@acme.test"}); err != nil {
		t.Fatal(err)
	}
	mustUpsert(t, s, login.User{Tenant: "acme", Issuer: "https://idp.test", Subject: "alice", Email: "Alice@acme.test"})
	mustUpsert(t, s, login.User{Tenant: "acme", Issuer: "https://github.test", Subject: "42", Email: "alice@acme.test"})
	mustUpsert(t, s, login.User{Tenant: "acme", Issuer: "https://idp.test", Subject: "bob", Email: "bob@acme.test"})
	mustUpsert(t, s, login.User{Tenant: "globex", Issuer: "https://idp.test", Subject: "alice", Email: "alice@acme.test"})

	if err := s.RemoveUser(ctx, "acme", "ALICE@acme.test"); err != nil {
		t.Fatalf("RemoveUser: %v", err)
	}
	if _, err := s.Invitation(ctx, "acme", "alice@acme.test"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("invitation after RemoveUser: %v, want not found", err)
	}
	for tenant, want := range map[string]int{"acme": 1, "globex": 1} {
		us, err := s.ListUsers(ctx, tenant)
		if err != nil || len(us) != want {
			t.Errorf("ListUsers(%s) after RemoveUser = %d users, %v; want %d", tenant, len(us), err, want)
		}
	}
	if err := s.RemoveUser(ctx, "acme", "alice@acme.test"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("second RemoveUser = %v, want one wrapping authz.ErrNotFound", err)
	}
	// An invitation alone is removed too.
	if err := s.InviteUser(ctx, login.Invitation{Tenant: "acme", Email: "carol@acme.test"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveUser(ctx, "acme", "carol@acme.test"); err != nil {
		t.Errorf("RemoveUser of an invitation alone: %v", err)
	}
}
