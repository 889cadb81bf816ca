package main

import (
	"strings"
	"testing"

	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/store/storetest"
)

var masterEnv = map[string]string{"USHER_MASTER_KEY": storetest.MasterKeyText}

// adminWith runs an admin command with env and fails the test unless it
// succeeds.
func adminWith(t *testing.T, env map[string]string, dir string, args ...string) result {
	t.Helper()
	r := usher(t, env, append(args, "--data-dir", dir)...)
	if r.code != 0 {
		t.Fatalf("usher %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func TestKeyAndTokenCommands(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	seedTour(t, dir)
	admin(t, dir, "space", "create", "--tenant", "acme", "ops")

	// Without the master key, rotate and mint refuse and say what to set.
	for _, args := range [][]string{
		{"key", "rotate", "--tenant", "acme"},
		{"token", "mint", "--tenant", "acme", "--sub", "alice"},
	} {
		r := usher(t, nil, append(args, "--data-dir", dir)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "USHER_MASTER_KEY") {
			t.Errorf("%v without a master key: exit %d, %s", args, r.code, r.stderr)
		}
	}
	// With it but no signing key yet, mint says how to make one.
	r := usher(t, masterEnv, "token", "mint", "--tenant", "acme", "--sub", "alice", "--data-dir", dir)
	if r.code != exitFailed || !strings.Contains(r.stderr, "usher key rotate --tenant acme") {
		t.Errorf("mint without a signing key: exit %d, %s", r.code, r.stderr)
	}

	rotated := adminWith(t, masterEnv, dir, "key", "rotate", "--tenant", "acme").stdout
	if !strings.HasPrefix(rotated, "new active signing key ") {
		t.Fatalf("key rotate: %q", rotated)
	}
	kid := strings.Fields(rotated)[4]
	list := admin(t, dir, "key", "list", "--tenant", "acme").stdout
	if !strings.Contains(list, kid) || !strings.Contains(list, "active") {
		t.Errorf("key list:\n%s", list)
	}
	second := adminWith(t, masterEnv, dir, "key", "rotate", "--tenant", "acme", "--retire-after", "1h").stdout
	if !strings.Contains(second, "signing key "+kid+" verifies until") {
		t.Errorf("second rotation: %q", second)
	}

	mint := adminWith(t, masterEnv, dir, "token", "mint", "--tenant", "acme", "--sub", "alice", "--email", "alice@acme.test",
		"--seat", "proj1=editors", "--ttl", "15m")
	if strings.Count(mint.stdout, "\n") != 1 || strings.Count(mint.stdout, ".") != 2 {
		t.Errorf("token mint stdout %q: want the token alone on one line", mint.stdout)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--seat", "proj9=editors"}, exitFailed, "space proj9 in tenant acme: not found"},
		{[]string{"--seat", "proj1=nobody"}, exitFailed, "seat nobody in tenant acme: not found"},
		{[]string{"--seat", "proj1"}, exitUsage, "want SPACE=SEAT"},
		{[]string{"--seat", "proj1=editors", "--seat", "proj1=editors"}, exitUsage, "given twice"},
		{[]string{"--ttl", "25h"}, exitUsage, "--ttl must be positive and at most 24h"},
	} {
		r := usher(t, masterEnv, append([]string{"token", "mint", "--tenant", "acme", "--sub", "alice", "--data-dir", dir}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("mint %v: exit %d, %s; want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	revoked := admin(t, dir, "key", "revoke", "--tenant", "acme", kid).stdout
	if !strings.Contains(revoked, "revoked signing key "+kid) {
		t.Errorf("key revoke: %q", revoked)
	}
}

// TestServeRefusesKeyringItCannotOpen covers catalogue row 45 (docs/catalogue-map.md).
func TestServeRefusesKeyringItCannotOpen(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	admin(t, dir, "tenant", "create", "acme")
	adminWith(t, masterEnv, dir, "key", "rotate", "--tenant", "acme")
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no master key", nil, "no master key"},
		{"another master key", map[string]string{"USHER_MASTER_KEY": "b3RoZXItbWFzdGVyLWtleS10aGlydHktdHdvLWJ5dGU="}, "does not open with this master key"},
		{"not a key", map[string]string{"USHER_MASTER_KEY": "hunter2"}, "not standard base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			r := usher(t, tt.env, s.args(dir)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %s; want 2 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

// TestIssuerCommands covers catalogue row 57 (docs/catalogue-map.md).
func TestIssuerCommands(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	admin(t, dir, "tenant", "create", "acme")
	p := testidp.Start(t, testidp.NewRSAKey(t, "k1"))
	add := admin(t, dir, "issuer", "add", "--tenant", "acme", "--issuer", p.URL, "--audience", "api://usher", "--groups-claim", "memberOf")
	if !strings.Contains(add.stdout, "tenant acme trusts tokens of "+p.URL) || !strings.Contains(add.stderr, "plain http") {
		t.Errorf("issuer add: %q / %q", add.stdout, add.stderr)
	}
	if list := admin(t, dir, "issuer", "list", "--tenant", "acme").stdout; !strings.Contains(list, p.URL) || !strings.Contains(list, "memberOf") {
		t.Errorf("issuer list:\n%s", list)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"not https", []string{"--issuer", "http://idp.example.com", "--audience", "a"}, exitUsage, "must be https"},
		{"twice", []string{"--issuer", p.URL, "--audience", "a"}, exitFailed, "already exists"},
		{"discovery names another issuer", []string{"--issuer", p.URL + "/", "--audience", "a"}, exitFailed, "configure exactly that"},
		{"nothing answers", []string{"--issuer", "http://127.0.0.1:1", "--audience", "a"}, exitFailed, "discovery"},
		{"no audience", []string{"--issuer", p.URL}, exitUsage, "--issuer and --audience are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := usher(t, nil, append([]string{"issuer", "add", "--tenant", "acme", "--data-dir", dir}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, %s; want %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
	admin(t, dir, "issuer", "remove", "--tenant", "acme", "--issuer", p.URL)
	if list := admin(t, dir, "issuer", "list", "--tenant", "acme").stdout; strings.Contains(list, p.URL) {
		t.Errorf("still listed after removal:\n%s", list)
	}
}
