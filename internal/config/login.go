package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/usher-dev/usher/authz"
)

// The roles `usher serve --roles` takes.
const (
	// RoleAuthz answers Check: the gRPC listener and HTTP check mode.
	RoleAuthz = "authz"
	// RoleLogin serves the login app (when auth.enabled).
	RoleLogin = "login"
)

// HasRole reports whether this server runs role.
func (c *Config) HasRole(role string) bool {
	for r := range strings.SplitSeq(c.Roles, ",") {
		if strings.TrimSpace(r) == role {
			return true
		}
	}
	return false
}

func (c *Config) validateRoles(bad func(key, format string, args ...any)) {
	n := 0
	for r := range strings.SplitSeq(c.Roles, ",") {
		switch strings.TrimSpace(r) {
		case RoleAuthz, RoleLogin:
			n++
		default:
			bad("roles", "%q is not a role: want authz, login or authz,login", strings.TrimSpace(r))
		}
	}
	if n == 0 {
		bad("roles", "name at least one role: authz, login")
	}
	if !c.HasRole(RoleAuthz) && !c.Login.Enabled {
		bad("roles", "login alone needs auth.enabled (USHER_AUTH_ENABLED=true): the server would do nothing")
	}
}

// Login configures the login app and the session cookie (auth.enabled).
type Login struct {
	// Enabled turns the login app and the cookie credential on.
	Enabled bool
	Addr    string
	// URL is the public base URL of the login app; empty means
	// https://auth.<root domain>.
	URL            string
	RootDomain     string
	SessionKey     string
	AllowedDomains string
	AllowAllUsers  bool
	CookieName     string
	SessionTTL     time.Duration
	IdleTTL        time.Duration
	AccessTTL      time.Duration
	ReuseGrace     time.Duration
	GroupsRefresh  time.Duration
	// Provider is the default login provider.
	Provider AuthProvider
}

// AuthProvider is the default login provider, from USHER_AUTH_*.
type AuthProvider struct {
	Tenant       string
	Type         string
	ClientID     string
	ClientSecret string
	IssuerURL    string
	RedirectURL  string
	GroupsClaim  string
}

func defaultLogin() Login {
	return Login{
		Addr:          "127.0.0.1:8081",
		CookieName:    "usher_session",
		SessionTTL:    12 * time.Hour,
		IdleTTL:       2 * time.Hour,
		AccessTTL:     15 * time.Minute,
		ReuseGrace:    10 * time.Second,
		GroupsRefresh: 15 * time.Minute,
		Provider:      AuthProvider{GroupsClaim: "groups"},
	}
}

func (c *Config) loginSettings() []setting {
	l, p := &c.Login, &c.Login.Provider
	return []setting{
		{"auth.enabled", "auth-enabled", "turn the login app and the session cookie credential on", "bool", &l.Enabled},
		{"login.addr", "login-addr", "address of the login app (apart from http_addr)", "string", &l.Addr},
		{"login.url", "login-url", "public base URL of the login app (default https://auth.<root domain>)", "string", &l.URL},
		{"root_domain", "root-domain", "domain the session cookie is set on; next URLs must be on it", "string", &l.RootDomain},
		{"session_key", "session-key", "HMAC key of the flow cookie: at least 32 random bytes, standard base64", "string", &l.SessionKey},
		{"allowed_domains", "allowed-domains", "comma-separated email domains allowed to log in", "string", &l.AllowedDomains},
		{"allow_all_users", "allow-all-users", "let anyone with a verified email in an allowed domain log in", "bool", &l.AllowAllUsers},
		{"login.cookie_name", "login-cookie-name", "name of the session cookie", "string", &l.CookieName},
		{"login.session_ttl", "login-session-ttl", "absolute lifetime of a login session", "duration", &l.SessionTTL},
		{"login.idle_ttl", "login-idle-ttl", "a session unused for this long ends", "duration", &l.IdleTTL},
		{"login.access_token_ttl", "login-access-token-ttl", "lifetime of the access tokens the login app issues", "duration", &l.AccessTTL},
		{"login.refresh_reuse_grace", "login-refresh-reuse-grace", "a consumed refresh token presented again within this is an honest race, later it revokes the family", "duration", &l.ReuseGrace},
		{"login.groups_refresh", "login-groups-refresh", "how often a refresh re-reads the person's groups from the IdP", "duration", &l.GroupsRefresh},
		{"auth.tenant", "auth-tenant", "the tenant people of the default provider belong to", "string", &p.Tenant},
		{"auth.provider_type", "auth-provider-type", "the default provider: oidc, google or github", "string", &p.Type},
		{"auth.client_id", "auth-client-id", "OAuth client id of the default provider", "string", &p.ClientID},
		{"auth.client_secret", "auth-client-secret", "OAuth client secret of the default provider", "string", &p.ClientSecret},
		{"auth.issuer_url", "auth-issuer-url", "issuer of the default provider (oidc; google defaults to Google's)", "string", &p.IssuerURL},
		{"auth.redirect_url", "auth-redirect-url", "OAuth redirect URL (default <login url>/auth/oidc/callback)", "string", &p.RedirectURL},
		{"auth.groups_claim", "auth-groups-claim", "ID token claim holding groups (dotted paths allowed)", "string", &p.GroupsClaim},
	}
}

// PublicURL is the login app's public base URL, without a trailing slash.
func (l Login) PublicURL() string {
	if l.URL != "" {
		return strings.TrimRight(l.URL, "/")
	}
	return "https://auth." + l.RootDomain
}

// Cookie is the session cookie as Check's third credential: on when
// login is enabled.
func (l Login) Cookie() authz.CookieConfig {
	if !l.Enabled {
		return authz.CookieConfig{}
	}
	return authz.CookieConfig{Enabled: true, Name: l.CookieName, RootDomain: l.RootDomain, LoginURL: l.PublicURL(), IdleTTL: l.IdleTTL}
}

// CallbackURL is the default provider's redirect URL.
func (l Login) CallbackURL() string {
	if l.Provider.RedirectURL != "" {
		return l.Provider.RedirectURL
	}
	return l.PublicURL() + "/auth/oidc/callback"
}

// Domains is the allowed email domains, lower case.
func (l Login) Domains() []string {
	var out []string
	for d := range strings.SplitSeq(l.AllowedDomains, ",") {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			out = append(out, d)
		}
	}
	return out
}

// Key decodes the session key.
func (l Login) Key() ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.TrimSpace(l.SessionKey))
}

// IsLoopbackURL reports whether u is plain http on a loopback host.
func IsLoopbackURL(u *url.URL) bool {
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// validate lists every problem of an enabled login configuration, each
// with its environment variable. It does no I/O.
//
// A server without the login role (an authz-only Deployment) needs only
// what Check's cookie credential reads: the root domain, the login URL
// and the cookie's name and lifetimes, not the session key or the IdP's
// client.
func (l Login) validate(bad func(key, format string, args ...any), loginRole bool) {
	if !l.Enabled {
		return
	}
	if !validDomain(l.RootDomain) {
		bad("root_domain (USHER_ROOT_DOMAIN)", "is required: a domain like example.com (the session cookie's Domain)")
	}
	if u, err := url.Parse(l.PublicURL()); err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		bad("login.url (USHER_LOGIN_URL)", "%q is not an absolute http(s) URL", l.URL)
	} else if u.Scheme != "https" && (u.Scheme != "http" || !IsLoopbackURL(u)) {
		bad("login.url (USHER_LOGIN_URL)", "must be https (plain http only on loopback), not %q", l.URL)
	}
	l.validateCookie(bad)
	if !loginRole {
		return
	}
	if _, port, err := net.SplitHostPort(l.Addr); err != nil || port == "" {
		bad("login.addr (USHER_LOGIN_ADDR)", "%q is not host:port", l.Addr)
	}
	if k, err := l.Key(); err != nil || len(k) < 32 {
		bad("session_key (USHER_SESSION_KEY)", "must be at least 32 random bytes in standard base64 (openssl rand -base64 32)")
	}
	if len(l.Domains()) == 0 {
		bad("allowed_domains (USHER_ALLOWED_DOMAINS)", "must name at least one email domain")
	}
	for _, d := range l.Domains() {
		if !validDomain(d) {
			bad("allowed_domains (USHER_ALLOWED_DOMAINS)", "%q is not a domain", d)
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"login.session_ttl (USHER_LOGIN_SESSION_TTL)", l.SessionTTL},
		{"login.access_token_ttl (USHER_LOGIN_ACCESS_TOKEN_TTL)", l.AccessTTL},
		{"login.groups_refresh (USHER_LOGIN_GROUPS_REFRESH)", l.GroupsRefresh},
	} {
		if d.v <= 0 {
			bad(d.key, "must be positive")
		}
	}
	if l.IdleTTL > l.SessionTTL {
		bad("login.idle_ttl (USHER_LOGIN_IDLE_TTL)", "must not exceed login.session_ttl")
	}
	if l.ReuseGrace < 0 || l.ReuseGrace > time.Minute {
		bad("login.refresh_reuse_grace (USHER_LOGIN_REFRESH_REUSE_GRACE)", "must be between 0 and 1m")
	}
	p := l.Provider
	if p.Tenant == "" {
		bad("auth.tenant (USHER_AUTH_TENANT)", "is required: the tenant people of the default provider belong to")
	}
	switch p.Type {
	case "oidc":
		if u, err := url.Parse(p.IssuerURL); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && IsLoopbackURL(u))) {
			bad("auth.issuer_url (USHER_AUTH_ISSUER_URL)", "is required for oidc: an https URL (plain http only on loopback)")
		}
	case "google", "github":
	default:
		bad("auth.provider_type (USHER_AUTH_PROVIDER_TYPE)", "must be oidc, google or github, not %q", p.Type)
	}
	if p.ClientID == "" {
		bad("auth.client_id (USHER_AUTH_CLIENT_ID)", "is required")
	}
	if p.ClientSecret == "" {
		bad("auth.client_secret (USHER_AUTH_CLIENT_SECRET)", "is required")
	}
	if u, err := url.Parse(l.CallbackURL()); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && IsLoopbackURL(u))) {
		bad("auth.redirect_url (USHER_AUTH_REDIRECT_URL)", "%q is not an https URL", l.CallbackURL())
	}
	if p.GroupsClaim == "" {
		bad("auth.groups_claim (USHER_AUTH_GROUPS_CLAIM)", "must not be empty")
	}
}

// validateCookie checks what Check's cookie credential reads.
func (l Login) validateCookie(bad func(key, format string, args ...any)) {
	if l.CookieName == "" || strings.ContainsAny(l.CookieName, " ;,=\"\t\r\n") || strings.HasPrefix(l.CookieName, "__Host-") {
		bad("login.cookie_name (USHER_LOGIN_COOKIE_NAME)", "%q is not a usable cookie name", l.CookieName)
	}
	if l.IdleTTL <= 0 {
		bad("login.idle_ttl (USHER_LOGIN_IDLE_TTL)", "must be positive")
	}
}

// validDomain is a lower-case DNS name with at least one dot.
func validDomain(d string) bool {
	if len(d) > 253 || !strings.Contains(d, ".") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func (l Login) String() string { return fmt.Sprintf("login(enabled=%t)", l.Enabled) }
