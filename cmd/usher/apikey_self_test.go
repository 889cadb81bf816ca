package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/credentials"
	"github.com/usher-dev/usher/login"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// selfServer is the login app on the real embedded store behind a real
// HTTP server, with a signed-in person (alice, seats dev and ops) and an
// access token of hers; it returns the server's URL, the token and the
// store.
func selfServer(t *testing.T) (string, string, *store.Store) {
	t.Helper()
	ctx := t.Context()
	st := storetest.Open(t, nil)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateTenant(ctx, "acme"))
	must(st.CreateSpace(ctx, "acme", "web"))
	for _, seat := range []string{"dev", "ops"} {
		must(st.CreateSeat(ctx, authz.Seat{Tenant: "acme", Name: seat, Grants: []authz.Grant{{Space: "web", Permissions: []string{seat}}}}))
	}
	_, _, err := st.RotateSigningKey(ctx, "acme", 0)
	must(nil, err)
	app, err := login.New(login.Config{
		RootDomain: "root.test", LoginURL: "https://auth.root.test", SessionKey: []byte(strings.Repeat("k", 32)),
		AllowedDomains: []string{"acme.test"}, Tenant: "acme", ProviderType: "oidc", ClientID: "c", ClientSecret: "s",
		IssuerURL: "https://idp.example",
	}, login.Deps{
		Sessions: st, RefreshTokens: st, Users: st, Seats: st, Once: st, SigningKeys: st, APIKeys: st, DeviceCodes: st, Clients: st,
		Providers: func(context.Context, string) ([]login.Provider, error) { return nil, nil },
		Tokens:    authz.DefaultTokenConfig(), Seal: storetest.MasterKey(t),
	})
	must(nil, err)
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)

	now := time.Now()
	h, err := authz.GenerateSessionHandle("acme")
	must(nil, err)
	must(nil, st.CreateSession(ctx, authz.Session{ID: h.ID, Tenant: "acme", Issuer: "https://idp.example", Subject: "alice-sub",
		Email: "alice@acme.test", Seats: []string{"dev", "ops"}, Provider: "oidc", CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(time.Hour), GroupsCheckedAt: now}))
	key, err := st.ActiveSigningKey(ctx, "acme")
	must(nil, err)
	c := authz.AccessClaims{Email: "alice@acme.test", SessionID: h.ID}
	c.Subject = "alice-sub"
	at, err := authz.MintAccessToken(authz.DefaultTokenConfig(), key, c, now, time.Hour)
	must(nil, err)
	return srv.URL, at, st
}

// TestAPIKeySelf: usher apikey create, list and revoke --self call the
// login app with the person's access token, never the store.
func TestAPIKeySelf(t *testing.T) {
	url, token, st := selfServer(t)
	env := map[string]string{"USHER_SERVER": url, "USHER_TOKEN": token}

	r := usher(t, env, "apikey", "create", "--self", "--name", "laptop", "--expires", "30d", "--seat", "dev")
	if r.code != 0 || !keyLine.MatchString(r.stdout) || strings.Contains(r.stderr, "sk_") {
		t.Fatalf("create: exit %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
	p, err := authz.ParseAPIKey(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	k, err := st.APIKeyRecord(t.Context(), p.ID)
	if err != nil || k.Owner != "user:alice@acme.test" || len(k.Seats) != 1 || k.Seats[0] != "dev" {
		t.Fatalf("stored key %+v, %v", k, err)
	}

	r = usher(t, env, "apikey", "list", "--self")
	if r.code != 0 || !strings.Contains(r.stdout, p.ID) || !strings.Contains(r.stdout, "laptop") || strings.Contains(r.stdout, "sk_") {
		t.Fatalf("list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = usher(t, env, "apikey", "create", "--self", "--name", "big", "--seat", "admin")
	if r.code != 1 || !strings.Contains(r.stderr, "seat_not_held") {
		t.Fatalf("a seat alice lacks: exit %d\n%s", r.code, r.stderr)
	}
	r = usher(t, env, "apikey", "create", "--self", "--name", "x", "--tenant", "acme")
	if r.code != 2 {
		t.Fatalf("--self with --tenant: exit %d, want 2\n%s", r.code, r.stderr)
	}
	r = usher(t, map[string]string{"USHER_SERVER": url, "USHER_TOKEN": token + "x"}, "apikey", "list", "--self")
	if r.code != 1 || !strings.Contains(r.stderr, "run usher login again") {
		t.Fatalf("a bad token: exit %d\n%s", r.code, r.stderr)
	}
	cfgDir := t.TempDir()
	r = usher(t, map[string]string{"XDG_CONFIG_HOME": cfgDir}, "apikey", "list", "--self")
	if r.code != exitLoginNeeded || !strings.Contains(r.stderr, "usher login") {
		t.Fatalf("no login: exit %d\n%s", r.code, r.stderr)
	}
	// With neither --token nor USHER_TOKEN, the CLI's own login
	// (usher login's credentials) is used.
	f := &credentials.File{}
	f.Put(credentials.Entry{Server: url, ClientID: "usher-cli", TokenEndpoint: url + "/oauth/token", AccessToken: token,
		TokenType: "Bearer", Expiry: time.Now().Add(time.Hour), Obtained: time.Now()})
	if err := os.MkdirAll(filepath.Join(cfgDir, "usher"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(credentials.Path(cfgDir)); err != nil {
		t.Fatal(err)
	}
	r = usher(t, map[string]string{"XDG_CONFIG_HOME": cfgDir}, "apikey", "list", "--self")
	if r.code != 0 || !strings.Contains(r.stdout, p.ID) {
		t.Fatalf("list with the CLI's login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = usher(t, env, "apikey", "revoke", "--self", p.ID)
	if r.code != 0 {
		t.Fatalf("revoke: exit %d\n%s", r.code, r.stderr)
	}
	if k, _ := st.APIKeyRecord(t.Context(), p.ID); k.RevokedAt.IsZero() {
		t.Fatal("the key was not revoked")
	}
	r = usher(t, env, "apikey", "revoke", "--self", "nosuchkeyaaaaaaa")
	if r.code != 1 || !strings.Contains(r.stderr, "key_not_found") {
		t.Fatalf("revoke of no key: exit %d\n%s", r.code, r.stderr)
	}
}
