package store_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

// newSession is a browser session of email in tenant created at the
// store's now, with a fresh handle (returned).
func newSession(t *testing.T, s *store.Store, tenant, email string) (authz.Session, string) {
	t.Helper()
	h, err := authz.GenerateSessionHandle(tenant)
	if err != nil {
		t.Fatal(err)
	}
	now := s.Now()
	return authz.Session{
		ID: h.ID, Tenant: tenant, Issuer: "https://idp.test", Subject: "sub-" + email, Email: email, Name: "Person",
		Seats: []string{"editors"}, Groups: []string{"eng"}, Hash: h.Hash, Provider: "oidc",
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(12 * time.Hour),
		IDPRefresh: "v1.sealed-refresh", IDToken: "v1.sealed-id-token", GroupsCheckedAt: now,
	}, h.Handle
}

func mustCreateSession(t *testing.T, s *store.Store, sess authz.Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.ID, err)
	}
}

func mustSession(t *testing.T, s *store.Store, id string) authz.Session {
	t.Helper()
	got, err := s.Session(t.Context(), id)
	if err != nil {
		t.Fatalf("Session(%s): %v", id, err)
	}
	return got
}

// stored is what the store keeps of sess: times to the millisecond.
func stored(sess authz.Session) authz.Session {
	for _, p := range []*time.Time{&sess.CreatedAt, &sess.LastSeenAt, &sess.ExpiresAt, &sess.RevokedAt, &sess.GroupsCheckedAt} {
		if !p.IsZero() {
			*p = ms(*p).UTC()
		}
	}
	return sess
}

// Catalogue row 43: only the handle's digest is stored.
func TestSessionRoundTrip(t *testing.T) {
	s, _ := openStore(t)
	sess, handle := newSession(t, s, "acme", "alice@acme.test")
	mustCreateSession(t, s, sess)
	if diff := cmp.Diff(stored(sess), mustSession(t, s, sess.ID)); diff != "" {
		t.Errorf("Session (-want +got):\n%s", diff)
	}

	// An API client's family has no cookie: a zero hash round-trips.
	family := authz.Session{ID: "familyaaaaaaaaaa", Tenant: "acme", Issuer: "https://idp.test", Subject: "sub-cli",
		Email: "cli@acme.test", ClientID: "usher-cli", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	mustCreateSession(t, s, family)
	want := stored(family)
	want.LastSeenAt = want.CreatedAt
	if diff := cmp.Diff(want, mustSession(t, s, family.ID)); diff != "" {
		t.Errorf("family Session (-want +got):\n%s", diff)
	}

	docs, err := store.RawDocuments(t.Context(), s, "sessions")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("%d session documents, want 2", len(docs))
	}
	for _, d := range docs {
		if bytes.Contains(d, []byte(handle)) {
			t.Errorf("a stored session holds the session handle: %s", d)
		}
	}
	if !bytes.Contains(docs[0], []byte(sess.Hash.String())) && !bytes.Contains(docs[1], []byte(sess.Hash.String())) {
		t.Errorf("no stored session holds the handle's digest %s", sess.Hash)
	}
}

func TestCreateSessionRefused(t *testing.T) {
	s, _ := openStore(t)
	sess, _ := newSession(t, s, "acme", "alice@acme.test")
	mustCreateSession(t, s, sess)
	if err := s.RevokeSession(t.Context(), "acme", sess.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(t.Context(), sess); !errors.Is(err, store.ErrExists) {
		t.Errorf("CreateSession with a used id = %v, want ErrExists", err)
	}
	for name, mutate := range map[string]func(*authz.Session){
		"no id":        func(x *authz.Session) { x.ID = "" },
		"bad tenant":   func(x *authz.Session) { x.Tenant = "Not A Tenant" },
		"no expiry":    func(x *authz.Session) { x.ExpiresAt = time.Time{} },
		"id too long":  func(x *authz.Session) { x.ID = string(bytes.Repeat([]byte("a"), 65)) },
		"empty tenant": func(x *authz.Session) { x.Tenant = "" },
	} {
		t.Run(name, func(t *testing.T) {
			bad, _ := newSession(t, s, "acme", "bob@acme.test")
			mutate(&bad)
			err := s.CreateSession(t.Context(), bad)
			if err == nil || errors.Is(err, store.ErrExists) {
				t.Fatalf("CreateSession = %v, want a validation error", err)
			}
			if bad.ID != "" && len(bad.ID) <= 64 {
				if _, err := s.Session(t.Context(), bad.ID); !errors.Is(err, authz.ErrNotFound) {
					t.Errorf("refused session was stored: Session = %v", err)
				}
			}
		})
	}
}

func TestSessionNotFound(t *testing.T) {
	s, _ := openStore(t)
	sess, _ := newSession(t, s, "acme", "alice@acme.test")
	mustCreateSession(t, s, sess)
	tests := []struct {
		name string
		call func() error
	}{
		{"Session", func() error { _, err := s.Session(t.Context(), "nosuchsessionaaa"); return err }},
		{"RevokeSession", func() error { return s.RevokeSession(t.Context(), "acme", "nosuchsessionaaa") }},
		// A session of another tenant is none of this tenant's.
		{"RevokeSession other tenant", func() error { return s.RevokeSession(t.Context(), "globex", sess.ID) }},
		{"UpdateSessionGroups", func() error {
			return s.UpdateSessionGroups(t.Context(), "nosuchsessionaaa", nil, nil, "", t0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, authz.ErrNotFound) {
				t.Errorf("err = %v, want one wrapping authz.ErrNotFound", err)
			}
		})
	}
	if got := mustSession(t, s, sess.ID); !got.RevokedAt.IsZero() {
		t.Errorf("another tenant's revoke revoked the session at %v", got.RevokedAt)
	}
}

// Catalogue rows 8 and 32: a revocation is stored and reaches every server
// through the change feed.
func TestRevokeSession(t *testing.T) {
	s, c := openStore(t)
	sess, _ := newSession(t, s, "acme", "alice@acme.test")
	mustCreateSession(t, s, sess)
	seq := lastChange(t, s)
	c.Advance(time.Minute)
	revokedAt := ms(c.Now())
	if err := s.RevokeSession(t.Context(), "acme", sess.ID); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if got := mustSession(t, s, sess.ID).RevokedAt; !got.Equal(revokedAt) {
		t.Errorf("RevokedAt = %v, want %v", got, revokedAt)
	}
	want := []authz.Change{{Seq: seq + 1, Kind: authz.ChangeSession, Tenant: "acme", Key: sess.ID, At: revokedAt}}
	if diff := cmp.Diff(want, changesSince(t, s, seq)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}

	// Again: not an error, the first time stays, the change is recorded
	// again (which repairs a first attempt whose append failed).
	c.Advance(time.Minute)
	if err := s.RevokeSession(t.Context(), "acme", sess.ID); err != nil {
		t.Fatalf("second RevokeSession: %v", err)
	}
	if got := mustSession(t, s, sess.ID).RevokedAt; !got.Equal(revokedAt) {
		t.Errorf("after a second revoke RevokedAt = %v, want the first %v", got, revokedAt)
	}
	if chs := changesSince(t, s, seq+1); len(chs) != 1 || chs[0].Kind != authz.ChangeSession || chs[0].Key != sess.ID {
		t.Errorf("changes after the second revoke = %+v, want one ChangeSession of %s", chs, sess.ID)
	}
}

func TestRevokeUserSessions(t *testing.T) {
	s, c := openStore(t)
	var alice []authz.Session
	for _, email := range []string{"alice@acme.test", "Alice@ACME.test", "alice@acme.test"} {
		sess, _ := newSession(t, s, "acme", email)
		mustCreateSession(t, s, sess)
		alice = append(alice, sess)
		c.Advance(time.Second)
	}
	bob, _ := newSession(t, s, "acme", "bob@acme.test")
	mustCreateSession(t, s, bob)
	otherTenant, _ := newSession(t, s, "globex", "alice@acme.test")
	mustCreateSession(t, s, otherTenant)
	if err := s.RevokeSession(t.Context(), "acme", alice[0].ID); err != nil {
		t.Fatal(err)
	}
	seq := lastChange(t, s)

	n, err := s.RevokeUserSessions(t.Context(), "acme", "ALICE@acme.TEST")
	if err != nil {
		t.Fatalf("RevokeUserSessions: %v", err)
	}
	if n != 2 {
		t.Errorf("RevokeUserSessions = %d, want 2 (the third was revoked before)", n)
	}
	for _, a := range alice {
		if mustSession(t, s, a.ID).RevokedAt.IsZero() {
			t.Errorf("alice's session %s is not revoked", a.ID)
		}
	}
	for _, other := range []authz.Session{bob, otherTenant} {
		if got := mustSession(t, s, other.ID).RevokedAt; !got.IsZero() {
			t.Errorf("session %s of %s/%s revoked at %v", other.ID, other.Tenant, other.Email, got)
		}
	}
	keys := map[string]bool{}
	for _, ch := range changesSince(t, s, seq) {
		if ch.Kind != authz.ChangeSession || ch.Tenant != "acme" {
			t.Errorf("unexpected change %+v", ch)
		}
		keys[ch.Key] = true
	}
	if diff := cmp.Diff(map[string]bool{alice[0].ID: true, alice[1].ID: true, alice[2].ID: true}, keys); diff != "" {
		t.Errorf("sessions in the change feed (-want +got):\n%s", diff)
	}

	if n, err := s.RevokeUserSessions(t.Context(), "acme", "alice@acme.test"); err != nil || n != 0 {
		t.Errorf("RevokeUserSessions again = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.RevokeUserSessions(t.Context(), "acme", "nobody@acme.test"); err != nil || n != 0 {
		t.Errorf("RevokeUserSessions of nobody = %d, %v; want 0, nil", n, err)
	}
	if _, err := s.RevokeUserSessions(t.Context(), "acme", ""); err == nil {
		t.Error("RevokeUserSessions with no email: want an error")
	}
}

func TestListSessions(t *testing.T) {
	s, c := openStore(t)
	var ids []string
	for _, email := range []string{"alice@acme.test", "bob@acme.test", "Alice@acme.test"} {
		sess, _ := newSession(t, s, "acme", email)
		mustCreateSession(t, s, sess)
		ids = append(ids, sess.ID)
		c.Advance(time.Second)
	}
	other, _ := newSession(t, s, "globex", "alice@acme.test")
	mustCreateSession(t, s, other)
	if err := s.RevokeSession(t.Context(), "acme", ids[1]); err != nil {
		t.Fatal(err)
	}
	listIDs := func(email string) []string {
		t.Helper()
		got, err := s.ListSessions(t.Context(), "acme", email)
		if err != nil {
			t.Fatalf("ListSessions(%q): %v", email, err)
		}
		out := []string{}
		for _, g := range got {
			out = append(out, g.ID)
			if g.ID == ids[1] && g.RevokedAt.IsZero() {
				t.Errorf("ListSessions shows revoked session %s without RevokedAt", g.ID)
			}
		}
		return out
	}
	if diff := cmp.Diff([]string{ids[2], ids[1], ids[0]}, listIDs("")); diff != "" {
		t.Errorf("ListSessions newest first (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{ids[2], ids[0]}, listIDs("ALICE@acme.test")); diff != "" {
		t.Errorf("ListSessions of alice (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{}, listIDs("nobody@acme.test")); diff != "" {
		t.Errorf("ListSessions of nobody (-want +got):\n%s", diff)
	}
}

func TestTouchSessionsNeverMovesBack(t *testing.T) {
	s, _ := openStore(t)
	a, _ := newSession(t, s, "acme", "alice@acme.test")
	b, _ := newSession(t, s, "acme", "bob@acme.test")
	mustCreateSession(t, s, a)
	mustCreateSession(t, s, b)
	seen := func(id string) time.Time { t.Helper(); return mustSession(t, s, id).LastSeenAt }
	touch := func(used map[string]time.Time) {
		t.Helper()
		if err := s.TouchSessions(t.Context(), used); err != nil {
			t.Fatalf("TouchSessions: %v", err)
		}
	}
	touch(map[string]time.Time{a.ID: t0.Add(10 * time.Minute), b.ID: t0.Add(time.Minute), "unknownsessionaa": t0})
	if got, want := seen(a.ID), ms(t0.Add(10*time.Minute)); !got.Equal(want) {
		t.Errorf("a LastSeenAt = %v, want %v", got, want)
	}
	touch(map[string]time.Time{a.ID: t0.Add(5 * time.Minute), b.ID: t0.Add(-time.Hour)})
	if got, want := seen(a.ID), ms(t0.Add(10*time.Minute)); !got.Equal(want) {
		t.Errorf("an earlier touch moved a's LastSeenAt back to %v, want %v", got, want)
	}
	if got, want := seen(b.ID), ms(t0.Add(time.Minute)); !got.Equal(want) {
		t.Errorf("an earlier touch moved b's LastSeenAt back to %v, want %v", got, want)
	}
	touch(map[string]time.Time{a.ID: t0.Add(20 * time.Minute)})
	if got, want := seen(a.ID), ms(t0.Add(20*time.Minute)); !got.Equal(want) {
		t.Errorf("a LastSeenAt = %v, want %v", got, want)
	}
	// The creation's LastSeenAt is a floor too.
	c, _ := newSession(t, s, "acme", "carol@acme.test")
	c.LastSeenAt = t0.Add(time.Hour)
	mustCreateSession(t, s, c)
	touch(map[string]time.Time{c.ID: t0})
	if got, want := seen(c.ID), ms(t0.Add(time.Hour)); !got.Equal(want) {
		t.Errorf("c LastSeenAt = %v, want %v", got, want)
	}
	touch(nil)
}

func TestUpdateSessionGroups(t *testing.T) {
	s, c := openStore(t)
	sess, _ := newSession(t, s, "acme", "alice@acme.test")
	mustCreateSession(t, s, sess)
	seq := lastChange(t, s)
	c.Advance(15 * time.Minute)
	at := c.Now()
	if err := s.UpdateSessionGroups(t.Context(), sess.ID, []string{"eng", "ops"}, []string{"admins", "editors"}, "v1.rotated", at); err != nil {
		t.Fatalf("UpdateSessionGroups: %v", err)
	}
	want := stored(sess)
	want.Groups, want.Seats, want.IDPRefresh, want.GroupsCheckedAt = []string{"eng", "ops"}, []string{"admins", "editors"}, "v1.rotated", ms(at).UTC()
	if diff := cmp.Diff(want, mustSession(t, s, sess.ID)); diff != "" {
		t.Errorf("after update (-want +got):\n%s", diff)
	}
	chs := changesSince(t, s, seq)
	if len(chs) != 1 || chs[0].Kind != authz.ChangeSession || chs[0].Key != sess.ID || chs[0].Tenant != "acme" {
		t.Errorf("changes = %+v, want one ChangeSession of %s", chs, sess.ID)
	}

	// No new IdP refresh token keeps the stored one; an update never
	// undoes a revocation.
	if err := s.RevokeSession(t.Context(), "acme", sess.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateSessionGroups(t.Context(), sess.ID, nil, []string{}, "", at.Add(time.Minute)); err != nil {
		t.Fatalf("UpdateSessionGroups: %v", err)
	}
	got := mustSession(t, s, sess.ID)
	if got.IDPRefresh != "v1.rotated" || got.RevokedAt.IsZero() || got.Groups != nil || len(got.Seats) != 0 {
		t.Errorf("after a second update: IDPRefresh %q, RevokedAt %v, Groups %v, Seats %v; want v1.rotated, revoked, no groups, no seats",
			got.IDPRefresh, got.RevokedAt, got.Groups, got.Seats)
	}
}
