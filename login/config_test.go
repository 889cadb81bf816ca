package login_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/login"
)

func TestConfigDefaults(t *testing.T) {
	c := login.Config{RootDomain: "Example.COM"}.WithDefaults()
	want := login.Config{
		RootDomain: "example.com", LoginURL: "https://auth.example.com", RedirectURL: "https://auth.example.com/auth/oidc/callback",
		CookieName: "usher_session", SessionTTL: 12 * time.Hour, IdleTTL: 2 * time.Hour, RefreshReuseGrace: 10 * time.Second,
		GroupsRefresh: 15 * time.Minute, AccessTokenTTL: 15 * time.Minute, GroupsClaim: "groups",
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// TestConfigValidate: every problem is listed at once, with its name.
// Catalogue row 45.
func TestConfigValidate(t *testing.T) {
	if err := testConfig().WithDefaults().Validate(); err != nil {
		t.Fatalf("the test config is refused: %v", err)
	}
	tests := []struct {
		name string
		edit func(*login.Config)
		want []string
	}{
		{"everything missing", func(c *login.Config) { *c = login.Config{} }, []string{
			"USHER_ROOT_DOMAIN: required", "USHER_LOGIN_URL: required", "USHER_SESSION_KEY:", "USHER_ALLOWED_DOMAINS: must not be empty",
			"USHER_AUTH_TENANT:", "USHER_AUTH_PROVIDER_TYPE: required", "USHER_AUTH_CLIENT_ID: required", "USHER_AUTH_CLIENT_SECRET: required",
		}},
		{"plain http off loopback", func(c *login.Config) { c.LoginURL = "http://auth.root.test" }, []string{"USHER_LOGIN_URL: \"http://auth.root.test\": plain http only on loopback"}},
		{"login URL off the root domain", func(c *login.Config) { c.LoginURL = "https://auth.other.test" }, []string{"USHER_LOGIN_URL: host \"auth.other.test\" is not root.test"}},
		{"login URL with a path", func(c *login.Config) { c.LoginURL = "https://auth.root.test/x" }, []string{"USHER_LOGIN_URL: \"https://auth.root.test/x\" must be a base URL"}},
		{"short session key", func(c *login.Config) { c.SessionKey = []byte("short") }, []string{"USHER_SESSION_KEY: 5 bytes"}},
		{"bad allowed domain", func(c *login.Config) { c.AllowedDomains = []string{"Acme.test", "@x"} }, []string{"USHER_ALLOWED_DOMAINS: \"Acme.test\"", "USHER_ALLOWED_DOMAINS: \"@x\""}},
		{"unknown provider type", func(c *login.Config) { c.ProviderType = "saml" }, []string{"USHER_AUTH_PROVIDER_TYPE: \"saml\""}},
		{"oidc without issuer", func(c *login.Config) { c.IssuerURL = "" }, []string{"USHER_AUTH_ISSUER_URL: required"}},
		{"issuer over http", func(c *login.Config) { c.IssuerURL = "http://idp.example" }, []string{"USHER_AUTH_ISSUER_URL: \"http://idp.example\" must be https"}},
		{"__Host- cookie", func(c *login.Config) { c.CookieName = "__Host-s" }, []string{"login.cookie_name: \"__Host-s\""}},
		{"idle longer than absolute", func(c *login.Config) { c.IdleTTL = 13 * time.Hour }, []string{"login.idle_ttl:"}},
		{"grace too long", func(c *login.Config) { c.RefreshReuseGrace = time.Hour }, []string{"login.refresh_reuse_grace:"}},
		{"bad groups claim", func(c *login.Config) { c.GroupsClaim = "a..b" }, []string{"USHER_AUTH_GROUPS_CLAIM:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.edit(&c)
			err := c.WithDefaults().Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				if !found {
					t.Errorf("no problem starting %q in:\n%s", w, err)
				}
			}
		})
	}
	t.Run("plain http on loopback", func(t *testing.T) {
		c := testConfig()
		c.RootDomain, c.LoginURL = "127.0.0.1", "http://127.0.0.1:8081"
		c = c.WithDefaults()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if !c.InsecureLoopback() {
			t.Error("InsecureLoopback false")
		}
	})
}
