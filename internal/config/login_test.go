package config

import (
	"strings"
	"testing"
)

// goodLogin is a complete login configuration.
func goodLogin() map[string]string {
	return map[string]string{
		"USHER_AUTH_ENABLED":       "true",
		"USHER_ROOT_DOMAIN":        "acme.test",
		"USHER_LOGIN_URL":          "https://auth.acme.test",
		"USHER_SESSION_KEY":        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"USHER_ALLOWED_DOMAINS":    "acme.test, Example.COM",
		"USHER_AUTH_TENANT":        "acme",
		"USHER_AUTH_PROVIDER_TYPE": "oidc",
		"USHER_AUTH_CLIENT_ID":     "usher",
		"USHER_AUTH_CLIENT_SECRET": "s3cret",
		"USHER_AUTH_ISSUER_URL":    "https://idp.acme.test",
		"USHER_MASTER_KEY":         "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	}
}

func TestLoginConfigOffNeedsNothing(t *testing.T) {
	cfg, err := loadConfig(t, "", nil)
	if err != nil || cfg.Login.Enabled {
		t.Fatalf("login off by default with no settings: %v %+v", err, cfg.Login)
	}
}

func TestLoginConfigComplete(t *testing.T) {
	cfg, err := loadConfig(t, "", goodLogin())
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Login
	if got := l.Domains(); strings.Join(got, ",") != "acme.test,example.com" {
		t.Errorf("domains %v", got)
	}
	if l.CallbackURL() != "https://auth.acme.test/auth/oidc/callback" || l.CookieName != "usher_session" {
		t.Errorf("defaults: %s %s", l.CallbackURL(), l.CookieName)
	}
	if k, err := l.Key(); err != nil || len(k) != 32 {
		t.Errorf("key %d %v", len(k), err)
	}
	env := goodLogin()
	delete(env, "USHER_LOGIN_URL")
	cfg, err = loadConfig(t, "", env)
	if err != nil || cfg.Login.PublicURL() != "https://auth.acme.test" {
		t.Errorf("default login url %q %v", cfg.Login.PublicURL(), err)
	}
}

// TestLoginConfigListsEveryProblem: with login on and nothing else set,
// serve names every missing setting by its environment variable at once.
func TestLoginConfigListsEveryProblem(t *testing.T) {
	_, err := loadConfig(t, "", map[string]string{"USHER_AUTH_ENABLED": "true"})
	if err == nil {
		t.Fatal("login enabled with nothing set was accepted")
	}
	for _, env := range []string{"USHER_ROOT_DOMAIN", "USHER_SESSION_KEY", "USHER_ALLOWED_DOMAINS",
		"USHER_AUTH_TENANT", "USHER_AUTH_PROVIDER_TYPE", "USHER_AUTH_CLIENT_ID", "USHER_AUTH_CLIENT_SECRET", "USHER_MASTER_KEY"} {
		if !strings.Contains(err.Error(), env) {
			t.Errorf("no problem names %s:\n%v", env, err)
		}
	}
}

func TestLoginConfigRejects(t *testing.T) {
	tests := []struct {
		name, env, value, want string
	}{
		{"short session key", "USHER_SESSION_KEY", "c2hvcnQ=", "USHER_SESSION_KEY"},
		{"session key not base64", "USHER_SESSION_KEY", "not base64!!", "USHER_SESSION_KEY"},
		{"plain http login url off loopback", "USHER_LOGIN_URL", "http://auth.acme.test", "must be https"},
		{"plain http on loopback is fine", "USHER_LOGIN_URL", "http://127.0.0.1:8081", ""},
		{"login url with userinfo", "USHER_LOGIN_URL", "https://x@auth.acme.test", "USHER_LOGIN_URL"},
		{"unknown provider", "USHER_AUTH_PROVIDER_TYPE", "saml", "must be oidc, google or github"},
		{"oidc issuer over plain http", "USHER_AUTH_ISSUER_URL", "http://idp.acme.test", "USHER_AUTH_ISSUER_URL"},
		{"root domain with a scheme", "USHER_ROOT_DOMAIN", "https://acme.test", "USHER_ROOT_DOMAIN"},
		{"bad allowed domain", "USHER_ALLOWED_DOMAINS", "acme.test,bad domain", `"bad domain" is not a domain`},
		{"cookie name with a semicolon", "USHER_LOGIN_COOKIE_NAME", "a;b", "USHER_LOGIN_COOKIE_NAME"},
		{"idle longer than the session", "USHER_LOGIN_IDLE_TTL", "13h", "must not exceed login.session_ttl"},
		{"same address as health", "USHER_LOGIN_ADDR", "127.0.0.1:8080", "must differ from grpc_addr and http_addr"},
		{"no master key", "USHER_MASTER_KEY", "", "USHER_MASTER_KEY or master_key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := goodLogin()
			env[tt.env] = tt.value
			_, err := loadConfig(t, "", env)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("rejected: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestLoginSecretsNotInErrors: a problem report never echoes the session
// key or the client secret.
func TestLoginSecretsNotInErrors(t *testing.T) {
	env := goodLogin()
	env["USHER_SESSION_KEY"] = "c2VjcmV0LXZhbHVl"
	env["USHER_AUTH_PROVIDER_TYPE"] = "nope"
	_, err := loadConfig(t, "", env)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, secret := range []string{"c2VjcmV0LXZhbHVl", "s3cret"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

// TestLoginConfigAuthzRole: an authz-only server with login on needs what
// Check's cookie credential reads, not the session key or the IdP client
// (the chart gives those to the login Deployment only).
func TestLoginConfigAuthzRole(t *testing.T) {
	env := map[string]string{"USHER_AUTH_ENABLED": "true", "USHER_ROLES": "authz", "USHER_ROOT_DOMAIN": "acme.test"}
	cfg, err := loadConfig(t, "", env)
	if err != nil {
		t.Fatalf("authz role with login on: %v", err)
	}
	if c := cfg.Login.Cookie(); !c.Enabled || c.LoginURL != "https://auth.acme.test" || c.RootDomain != "acme.test" {
		t.Errorf("cookie config %+v", c)
	}
	delete(env, "USHER_ROOT_DOMAIN")
	if _, err := loadConfig(t, "", env); err == nil || !strings.Contains(err.Error(), "USHER_ROOT_DOMAIN") {
		t.Errorf("authz role without a root domain: %v", err)
	}
	env["USHER_ROLES"] = "login"
	if _, err := loadConfig(t, "", env); err == nil || !strings.Contains(err.Error(), "USHER_SESSION_KEY") {
		t.Errorf("login role without a session key: %v", err)
	}
}

func TestRoles(t *testing.T) {
	for _, tt := range []struct{ roles, want string }{
		{"authz", ""}, {"authz,login", ""}, {"login", "login alone needs auth.enabled"},
		{"authz,proxy", `"proxy" is not a role`}, {" ", `"" is not a role`},
	} {
		_, err := loadConfig(t, "", map[string]string{"USHER_ROLES": tt.roles})
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("roles %q: %v, want %q", tt.roles, err, tt.want)
		}
	}
}
