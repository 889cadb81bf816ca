package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/login"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// openStore opens the embedded store in dir for a test's own writes (no
// usher serve holds it).
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), store.Options{DataDir: dir, MasterKey: storetest.MasterKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func closeStore(t *testing.T, s *store.Store) {
	t.Helper()
	if err := s.Close(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
}

// addSession stores a browser session of email in tenant acme.
func addSession(t *testing.T, s *store.Store, email string) string {
	t.Helper()
	h, err := authz.GenerateSessionHandle("acme")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.CreateSession(t.Context(), authz.Session{ID: h.ID, Tenant: "acme", Issuer: "https://idp.test", Subject: email,
		Email: email, Seats: []string{"editors"}, Hash: h.Hash, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return h.ID
}

// TestUserAndSessionCommands: invite, list, revoke one session, revoke a
// person's, remove a person (which revokes theirs).
func TestUserAndSessionCommands(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	admin(t, dir, "tenant", "create", "acme")
	admin(t, dir, "space", "create", "--tenant", "acme", "proj1")
	admin(t, dir, "seat", "create", "--tenant", "acme", "--name", "editors", "--grant", "proj1=datasets.read")

	if got := admin(t, dir, "user", "invite", "--tenant", "acme", "Carol@Acme.test", "--seat", "editors").stdout; got != "invited carol@acme.test to tenant acme with seats editors\n" {
		t.Errorf("invite: %q", got)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "invite", "--tenant", "acme", "carol@acme.test@evil.test"}, "not an email address"},
		{[]string{"user", "invite", "--tenant", "acme", "dan@acme.test", "--seat", "nope"}, "--seat nope"},
		{[]string{"user", "invite", "dan@acme.test"}, "--tenant is required"},
		{[]string{"session", "revoke", "--tenant", "acme"}, "give a session id or --user EMAIL"},
	} {
		r := usher(t, nil, append(bad.args, "--data-dir", dir)...)
		if r.code == exitOK || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("usher %v: exit %d %q, want an error with %q", bad.args, r.code, r.stderr, bad.want)
		}
	}

	s := openStore(t, dir)
	if _, err := s.UpsertUser(t.Context(), login.User{Tenant: "acme", Issuer: "https://idp.test", Subject: "alice",
		Email: "alice@acme.test", Name: "Alice", Groups: []string{"editors"}, LastLogin: time.Now()}); err != nil {
		t.Fatal(err)
	}
	a1, a2 := addSession(t, s, "alice@acme.test"), addSession(t, s, "alice@acme.test")
	b1 := addSession(t, s, "bob@acme.test")
	closeStore(t, s)

	if got := admin(t, dir, "user", "list", "--tenant", "acme").stdout; !regexp.MustCompile(`(?m)^alice@acme\.test\s+Alice\s+editors\s`).MatchString(got) {
		t.Errorf("user list:\n%s", got)
	}
	list := admin(t, dir, "session", "list", "--tenant", "acme", "--user", "alice@acme.test").stdout
	if !strings.Contains(list, a1) || !strings.Contains(list, a2) || strings.Contains(list, b1) || strings.Count(list, "browser") != 2 {
		t.Errorf("session list --user alice:\n%s", list)
	}
	if got := admin(t, dir, "session", "revoke", "--tenant", "acme", b1).stdout; !strings.Contains(got, "revoked session "+b1+" of bob@acme.test") {
		t.Errorf("revoke one: %q", got)
	}
	if r := usher(t, nil, "session", "revoke", "--tenant", "globex", a1, "--data-dir", dir); r.code == exitOK {
		t.Errorf("revoked acme's session as tenant globex")
	}
	if got := admin(t, dir, "user", "remove", "--tenant", "acme", "alice@acme.test").stdout; !strings.Contains(got, "revoked 2 session(s)") {
		t.Errorf("user remove: %q", got)
	}
	all := admin(t, dir, "session", "list", "--tenant", "acme").stdout
	if strings.Count(all, "revoked") != 3 || strings.Contains(all, "active") {
		t.Errorf("after revocations every session is revoked:\n%s", all)
	}

	s = openStore(t, dir)
	defer closeStore(t, s)
	for _, id := range []string{a1, a2, b1} {
		sess, err := s.Session(t.Context(), id)
		if err != nil || sess.RevokedAt.IsZero() {
			t.Errorf("session %s not revoked in the store: %v", id, err)
		}
	}
	if _, err := s.Invitation(t.Context(), "acme", "carol@acme.test"); err != nil {
		t.Errorf("carol's invitation: %v", err)
	}
}

// TestIdPCommands: an oidc provider whose discovery answers is stored with
// its secret sealed; a second of the same type, one whose discovery does
// not answer, or a secret on the command line are refused; list never
// shows the secret.
func TestIdPCommands(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	admin(t, dir, "tenant", "create", "acme")
	issuer := testidp.Start(t, testidp.NewRSAKey(t, "k1"))
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("very-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"USHER_MASTER_KEY": storetest.MasterKeyText}
	run := func(args ...string) result { return usher(t, env, append(args, "--data-dir", dir)...) }

	if r := run("idp", "add", "--tenant", "acme", "--type", "oidc", "--issuer-url", issuer.URL, "--client-id", "usher",
		"--client-secret-file", secretFile, "--name", "Acme SSO"); r.code != exitOK || !strings.Contains(r.stdout, "logs in with Acme SSO (oidc)") {
		t.Fatalf("idp add oidc: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := run("idp", "add", "--tenant", "acme", "--type", "github", "--client-id", "gh", "--client-secret-file", secretFile,
		"--allowed-org", "acme", "--allowed-team", "acme/platform"); r.code != exitOK {
		t.Fatalf("idp add github: exit %d %s", r.code, r.stderr)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "oidc", "--issuer-url", issuer.URL, "--client-id", "x", "--client-secret-file", secretFile}, "at most one provider of each type"},
		{[]string{"--type", "google", "--client-id", "x"}, "client secret is required"},
		{[]string{"--type", "saml", "--client-id", "x", "--client-secret-file", secretFile}, "--type must be oidc, google or github"},
		{[]string{"--type", "github", "--client-id", "x", "--client-secret-file", secretFile, "--allowed-team", "platform"}, "want org/team-slug"},
		{[]string{"--type", "google", "--client-id", "x", "--client-secret-file", secretFile, "--issuer-url", "http://idp.example.test"}, "plain http only on loopback"},
	} {
		r := run(append([]string{"idp", "add", "--tenant", "acme"}, bad.args...)...)
		if r.code == exitOK || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("idp add %v: exit %d %q, want %q", bad.args, r.code, r.stderr, bad.want)
		}
	}
	down := testidp.Start(t)
	down.SetDown(true)
	dir2 := storetest.ShortTempDir(t)
	admin(t, dir2, "tenant", "create", "acme")
	if r := usher(t, env, "idp", "add", "--tenant", "acme", "--type", "oidc", "--issuer-url", down.URL, "--client-id", "x",
		"--client-secret-file", secretFile, "--data-dir", dir2); r.code == exitOK || !strings.Contains(r.stderr, "discovery must answer") {
		t.Errorf("idp add with discovery down: exit %d %q", r.code, r.stderr)
	}

	list := run("idp", "list", "--tenant", "acme")
	if list.code != exitOK || !strings.Contains(list.stdout, "Acme SSO") || !strings.Contains(list.stdout, "acme,acme/platform") {
		t.Errorf("idp list: %d\n%s%s", list.code, list.stdout, list.stderr)
	}
	js := run("idp", "list", "--tenant", "acme", "-o", "json")
	if strings.Contains(list.stdout+js.stdout, "very-secret-value") {
		t.Errorf("idp list shows the secret")
	}
	if r := run("idp", "remove", "--tenant", "acme", "github"); r.code != exitOK {
		t.Errorf("idp remove: %d %s", r.code, r.stderr)
	}
	if r := run("idp", "remove", "--tenant", "acme", "github"); r.code == exitOK {
		t.Errorf("removing it twice succeeded")
	}
}
