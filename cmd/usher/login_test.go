package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/internal/credentials"
)

// cliEnv is a fresh config home for the CLI's credentials.
func cliEnv(t *testing.T) map[string]string {
	return map[string]string{"XDG_CONFIG_HOME": t.TempDir()}
}

func loadCreds(t *testing.T, env map[string]string) *credentials.File {
	t.Helper()
	f, err := credentials.Load(credentials.Path(env["XDG_CONFIG_HOME"]))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// loginOK logs env in to s (which approves at once) and fails the test
// unless it worked.
func loginOK(t *testing.T, env map[string]string, s *standIn) {
	t.Helper()
	s.set(func(s *standIn) { s.answers, s.redeemed = []string{"approve"}, false })
	if r := usher(t, env, "login", "--no-browser", "--server", s.URL()); r.code != 0 {
		t.Fatalf("login: exit %d\n%s", r.code, r.stderr)
	}
}

// expireSoon moves the saved access token of server to within the
// refresh margin, as if time had passed.
func expireSoon(t *testing.T, env map[string]string, server string) {
	t.Helper()
	path := credentials.Path(env["XDG_CONFIG_HOME"])
	f := loadCreds(t, env)
	en := f.Servers[server]
	en.Expiry = time.Now().Add(10 * time.Second)
	en.Obtained = en.Expiry.Add(-15 * time.Minute)
	f.Servers[server] = en
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
}

// TestLoginAnswers: each way a device login ends, with its message and
// exit code (RFC 8628 §3.5). On success the CLI says who approved, from
// the server (Catalogue row 82, the client's side).
func TestLoginAnswers(t *testing.T) {
	tests := []struct {
		name      string
		answers   []string
		expiresIn int
		tenant    string
		code      int
		want      string
	}{
		{"approved after pending", []string{"authorization_pending", "approve"}, 60, "", 0, "Logged in to URL as alice@acme.test (tenant acme)."},
		{"approved for a tenant", []string{"approve"}, 60, "acme", 0, "Logged in to URL as alice@acme.test (tenant acme)."},
		{"denied", []string{"authorization_pending", "access_denied"}, 60, "", exitDenied, "usher: login denied: the request was denied in the browser; run usher login again if that was a mistake"},
		{"expired_token", []string{"expired_token"}, 60, "", exitExpired, "usher: login expired: the code was not approved in time; run usher login again"},
		{"code lifetime passes", nil, 2, "", exitExpired, "usher: login expired: the code BCDF-GHJK was not approved in time; run usher login again"},
		{"unexpected error", []string{"invalid_grant"}, 60, "", exitFailed, "usher: log in: URL answered invalid_grant: stand-in: invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStandIn(t)
			s.set(func(s *standIn) { s.answers, s.expiresIn = tt.answers, tt.expiresIn })
			env := cliEnv(t)
			args := []string{"login", "--no-browser", "--server", s.URL()}
			if tt.tenant != "" {
				args = append(args, "--tenant", tt.tenant)
			}
			r := usher(t, env, args...)
			want := strings.ReplaceAll(tt.want, "URL", s.URL())
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != tt.code || lines[len(lines)-1] != want {
				t.Errorf("exit %d, last line %q; want exit %d, %q\nstderr:\n%s", r.code, lines[len(lines)-1], tt.code, want, r.stderr)
			}
			for _, show := range []string{s.URL() + "/device\n", "BCDF-GHJK\n"} {
				if !strings.Contains(r.stderr, show) {
					t.Errorf("stderr does not show %q:\n%s", show, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout %q; login writes only to stderr", r.stdout)
			}
			f := loadCreds(t, env)
			en, ok := f.Get(s.URL())
			if ok != (tt.code == 0) {
				t.Fatalf("credentials saved: %v; want %v", ok, tt.code == 0)
			}
			var tenant string
			s.get(func(s *standIn) { tenant = s.tenant })
			if tenant != tt.tenant {
				t.Errorf("tenant sent %q, want %q", tenant, tt.tenant)
			}
			if ok && (en.RefreshToken == "" || en.AccessToken == "" || f.Last != s.URL() || en.Tenant != tt.tenant) {
				t.Errorf("saved %+v, last %q", en, f.Last)
			}
		})
	}
}

// TestLoginPollInterval: the CLI polls no faster than the interval, and
// after slow_down 5 s slower (RFC 8628 §3.5). Catalogue row 77 (the
// client's side).
func TestLoginPollInterval(t *testing.T) {
	t.Parallel()
	s := newStandIn(t)
	s.set(func(s *standIn) { s.answers = []string{"authorization_pending", "slow_down", "approve"} })
	if r := usher(t, cliEnv(t), "login", "--no-browser", "--server", s.URL()); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var polls []time.Time
	s.get(func(s *standIn) { polls = s.polls })
	if len(polls) != 3 {
		t.Fatalf("%d polls, want 3", len(polls))
	}
	if gap := polls[1].Sub(polls[0]); gap < 900*time.Millisecond {
		t.Errorf("second poll %v after the first; the interval is 1s", gap)
	}
	if gap := polls[2].Sub(polls[1]); gap < 5900*time.Millisecond {
		t.Errorf("poll after slow_down came %v later; want at least 6s (1s + 5s)", gap)
	}
}

// TestTokenRefresh: usher token prints the saved token while it is
// fresh; near expiry it refreshes once, saves the rotated refresh token,
// and the old one is spent.
func TestTokenRefresh(t *testing.T) {
	s := newStandIn(t)
	env := cliEnv(t)
	loginOK(t, env, s)
	first := loadCreds(t, env).Servers[s.URL()]

	r := usher(t, env, "token")
	if r.code != 0 || r.stdout != first.AccessToken+"\n" {
		t.Fatalf("usher token: exit %d, stdout %q; want the saved token %q alone", r.code, r.stdout, first.AccessToken)
	}
	expireSoon(t, env, s.URL())
	r = usher(t, env, "token")
	after := loadCreds(t, env).Servers[s.URL()]
	if r.code != 0 || r.stdout != after.AccessToken+"\n" || after.AccessToken == first.AccessToken {
		t.Fatalf("usher token near expiry: exit %d, stdout %q, saved %q; want a new token (%s)", r.code, r.stdout, after.AccessToken, r.stderr)
	}
	if after.RefreshToken == first.RefreshToken || !after.Expiry.After(time.Now().Add(10*time.Minute)) {
		t.Errorf("after refresh: %+v; want the rotated refresh token and a new expiry", after)
	}
	var refreshes int
	var oldLive bool
	s.get(func(s *standIn) { refreshes, oldLive = s.refreshs, s.refresh[first.RefreshToken] })
	if refreshes != 1 || oldLive {
		t.Errorf("refreshes %d, old refresh token live %v; want 1, false", refreshes, oldLive)
	}
	if info, err := os.Stat(credentials.Path(env["XDG_CONFIG_HOME"])); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("credentials after refresh: %v, %v; want mode 0600", info.Mode(), err)
	}
}

// TestTokenConcurrentRefresh: several usher token at once near expiry
// spend the refresh token once; a second use would look like a replay
// and end the login.
// Catalogue row 41.
func TestTokenConcurrentRefresh(t *testing.T) {
	s := newStandIn(t)
	env := cliEnv(t)
	loginOK(t, env, s)
	expireSoon(t, env, s.URL())
	var wg sync.WaitGroup
	results := make([]result, 6)
	for i := range results {
		wg.Go(func() { results[i] = usher(t, env, "token") })
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 || r.stdout != results[0].stdout {
			t.Errorf("run %d: exit %d, %q, %s; want all the same token", i, r.code, r.stdout, r.stderr)
		}
	}
	s.get(func(s *standIn) {
		if s.refreshs != 1 {
			t.Errorf("%d refreshes, want 1", s.refreshs)
		}
	})
}

// TestCLIAuthErrors: each failure says what to do, with exit code 3 where
// the fix is to log in again.
func TestCLIAuthErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, env map[string]string, s *standIn)
		args  []string
		code  int
		want  string // the whole stderr, $SRV for the server
	}{
		{"not logged in anywhere", nil, []string{"token"}, exitLoginNeeded,
			"usher: not logged in to any server: run usher login --server URL (the login app's address)\n"},
		{"not logged in to this server", func(t *testing.T, env map[string]string, s *standIn) { loginOK(t, env, newStandIn(t)) },
			[]string{"whoami", "--server", "$SRV"}, exitLoginNeeded,
			"usher: not logged in to $SRV: run usher login --server $SRV\n"},
		{"refresh token revoked", func(t *testing.T, env map[string]string, s *standIn) {
			loginOK(t, env, s)
			expireSoon(t, env, s.URL())
			s.set(func(s *standIn) { s.refresh = map[string]bool{} })
		}, []string{"token"}, exitLoginNeeded,
			"usher: your login at $SRV was revoked or has expired (the server refused the refresh token): run usher login --server $SRV again\n"},
		{"whoami after revocation", func(t *testing.T, env map[string]string, s *standIn) {
			loginOK(t, env, s)
			s.set(func(s *standIn) { s.access = map[string]bool{} })
		}, []string{"whoami"}, exitLoginNeeded,
			"usher: not logged in at $SRV: the server refused the login (401 session_revoked): stand-in refusal; run usher login --server $SRV again\n"},
		{"clock skew", func(t *testing.T, env map[string]string, s *standIn) {
			loginOK(t, env, s)
			s.set(func(s *standIn) { s.dateOffset, s.whoamiCode = 10*time.Minute, "token_expired" })
		}, []string{"whoami"}, exitFailed,
			"usher: the server refused the login (401 token_expired): stand-in refusal: this machine's clock is 10m0s behind $SRV's: fix the clock (e.g. `timedatectl set-ntp true`) and retry\n"},
		{"server unreachable", func(t *testing.T, env map[string]string, s *standIn) {
			loginOK(t, env, s)
			expireSoon(t, env, s.URL())
			s.srv.Close()
		}, []string{"token"}, exitFailed,
			`usher: cannot reach $SRV: Post "$SRV/oauth/token": dial tcp HOST: connect: connection refused; check the address (--server) and your network, then retry` + "\n"},
		// Catalogue row 57
		{"metadata of another issuer", func(t *testing.T, env map[string]string, s *standIn) {
			s.set(func(s *standIn) { s.issuer = "https://login.evil.test" })
		}, []string{"login", "--no-browser", "--server", "$SRV"}, exitFailed,
			"usher: $SRV's OAuth metadata names another issuer, \"https://login.evil.test\": refusing it (RFC 8414 §3.3); check --server\n"},
		{"login without a server", nil, []string{"login", "--no-browser"}, exitUsage,
			"usher: usher login needs --server URL (the login app's address, e.g. https://login.example.com)\n"},
		{"plain http to another host", nil, []string{"login", "--server", "http://login.example.com"}, exitUsage,
			"usher: --server \"http://login.example.com\": use https (plain http is allowed only to localhost)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStandIn(t)
			env := cliEnv(t)
			if tt.setup != nil {
				tt.setup(t, env, s)
			}
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.ReplaceAll(a, "$SRV", s.URL())
			}
			r := usher(t, env, args...)
			want := strings.NewReplacer("$SRV", s.URL(), "HOST", strings.TrimPrefix(s.URL(), "http://")).Replace(tt.want)
			if r.code != tt.code || r.stderr != want || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit %d, stderr:\n%s", r.code, r.stdout, r.stderr, tt.code, want)
			}
		})
	}
}

// TestCredentialsReadableByOthersRefused: every command refuses a
// credentials file that others can read, saying how to fix it, and uses
// no token from it.
func TestCredentialsReadableByOthersRefused(t *testing.T) {
	s := newStandIn(t)
	env := cliEnv(t)
	loginOK(t, env, s)
	path := credentials.Path(env["XDG_CONFIG_HOME"])
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	want := "usher: credentials file " + path + " has mode 0644: others can read it, so usher will not use it; " +
		"fix it with `chmod 600 " + path + "` (and run usher logout and usher login again if someone may have copied it)\n"
	for _, args := range [][]string{{"token"}, {"whoami"}, {"logout"}, {"login", "--no-browser", "--server", s.URL()}} {
		r := usher(t, env, args...)
		if r.code != exitFailed || r.stderr != want || r.stdout != "" {
			t.Errorf("usher %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", args[0], r.code, r.stdout, r.stderr, want)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := usher(t, env, "token"); r.code != 0 {
		t.Errorf("after chmod 600: exit %d %s", r.code, r.stderr)
	}
}

// TestMultipleServers: logins to two servers live side by side; --server
// defaults to the last one used, and logging out of one keeps the other.
func TestMultipleServers(t *testing.T) {
	a, b := newStandIn(t), newStandIn(t)
	env := cliEnv(t)
	loginOK(t, env, a)
	loginOK(t, env, b)
	f := loadCreds(t, env)
	if f.Last != b.URL() || len(f.Servers) != 2 {
		t.Fatalf("after two logins: last %q, servers %d", f.Last, len(f.Servers))
	}
	tokA, tokB := f.Servers[a.URL()].AccessToken+"\n", f.Servers[b.URL()].AccessToken+"\n"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token"}, tokB},
		{[]string{"token", "--server", a.URL()}, tokA},
		{[]string{"token", "--server", a.URL() + "/"}, tokA},
	} {
		if r := usher(t, env, tc.args...); r.stdout != tc.want {
			t.Errorf("usher %v: %q (%s), want %q", tc.args, r.stdout, r.stderr, tc.want)
		}
	}
	env["USHER_SERVER"] = a.URL()
	if r := usher(t, env, "token"); r.stdout != tokA {
		t.Errorf("USHER_SERVER=a: %q, want a's token", r.stdout)
	}
	delete(env, "USHER_SERVER")

	if r := usher(t, env, "logout"); r.code != 0 || r.stderr != "Logged out of "+b.URL()+".\n" {
		t.Fatalf("logout: exit %d %q", r.code, r.stderr)
	}
	f = loadCreds(t, env)
	if diff := cmp.Diff([]string{a.URL()}, keys(f.Servers)); diff != "" || f.Last != a.URL() {
		t.Errorf("after logging out of b: last %q, servers (-want +got):\n%s", f.Last, diff)
	}
	if r := usher(t, env, "whoami"); r.code != 0 || !strings.Contains(r.stdout, "server   "+a.URL()+"\n") {
		t.Errorf("whoami after logging out of b: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func keys(m map[string]credentials.Entry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestWhoamiAndLogout: whoami shows the server's answer; logout revokes
// the refresh token at the server and deletes the credentials; with the
// server gone it deletes them anyway, with a warning.
func TestWhoamiAndLogout(t *testing.T) {
	s := newStandIn(t)
	env := cliEnv(t)
	loginOK(t, env, s)
	r := usher(t, env, "whoami")
	want := "server   " + s.URL() + "\nsubject  alice\nemail    alice@acme.test\ntenant   acme\nseats    editors\nexpires  "
	if r.code != 0 || !strings.HasPrefix(r.stdout, want) {
		t.Errorf("whoami: exit %d\n%s\nwant prefix\n%s", r.code, r.stdout+r.stderr, want)
	}
	var who struct{ Server, Subject, Tenant string }
	mustJSON(t, usher(t, env, "whoami", "-o", "json").stdout, &who)
	if who.Server != s.URL() || who.Subject != "alice" || who.Tenant != "acme" {
		t.Errorf("whoami -o json: %+v", who)
	}

	rt := loadCreds(t, env).Servers[s.URL()].RefreshToken
	r = usher(t, env, "logout")
	if r.code != 0 || r.stderr != "Logged out of "+s.URL()+".\n" {
		t.Errorf("logout: exit %d %q", r.code, r.stderr)
	}
	s.get(func(s *standIn) {
		if !cmp.Equal(s.revoked, []string{rt}) {
			t.Errorf("revoked at the server: %q, want the refresh token", s.revoked)
		}
	})
	if f := loadCreds(t, env); len(f.Servers) != 0 || f.Last != "" {
		t.Errorf("credentials after logout: %+v", f)
	}

	// The server unreachable: the credentials go all the same.
	loginOK(t, env, s)
	s.srv.Close()
	r = usher(t, env, "logout")
	if r.code != 0 || !strings.HasPrefix(r.stderr, "warning: could not revoke the login: cannot reach "+s.URL()) ||
		!strings.Contains(r.stderr, "deleting the local credentials anyway") || !strings.HasSuffix(r.stderr, "Logged out of "+s.URL()+".\n") {
		t.Errorf("logout with the server down: exit %d\n%s", r.code, r.stderr)
	}
	if f := loadCreds(t, env); len(f.Servers) != 0 {
		t.Errorf("credentials after logout with the server down: %+v", f)
	}
	if _, err := os.Stat(filepath.Dir(credentials.Path(env["XDG_CONFIG_HOME"]))); err != nil {
		t.Error(err)
	}
}
