package login

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/usher-dev/usher/authz"
)

// Config is the login part of usher's configuration. Each field names the
// environment variable (or YAML key under login.) that sets it; Validate
// names them the same way.
type Config struct {
	// LoginURL is the public base URL browsers reach the login app at
	// (USHER_LOGIN_URL); default https://auth.<RootDomain>. Plain http
	// only on loopback.
	LoginURL string
	// RootDomain is the domain the session cookie is set on, and the
	// domain next URLs must be on or under (USHER_ROOT_DOMAIN).
	RootDomain string
	// SessionKey is the HMAC key of the flow cookie, at least 32 bytes
	// (USHER_SESSION_KEY, standard base64).
	SessionKey []byte
	// AllowedDomains are the email domains allowed to log in
	// (USHER_ALLOWED_DOMAINS); never empty.
	AllowedDomains []string
	// AllowAllUsers lets anyone with a verified email in an allowed
	// domain log in (USHER_ALLOW_ALL_USERS); otherwise only invited
	// people and people whose groups match a seat.
	AllowAllUsers bool
	// CookieName is the session cookie's name (login.cookie_name).
	CookieName string
	// SessionTTL is a session's absolute lifetime (login.session_ttl);
	// IdleTTL its idle lifetime (login.idle_ttl).
	SessionTTL time.Duration
	IdleTTL    time.Duration
	// RefreshReuseGrace is how long after a refresh token was consumed a
	// second use still succeeds (login.refresh_reuse_grace): two tabs or
	// a retry racing. Later reuse revokes the family.
	RefreshReuseGrace time.Duration
	// GroupsRefresh is how often a refresh re-reads the person's groups
	// from the IdP (login.groups_refresh).
	GroupsRefresh time.Duration
	// AccessTokenTTL is the lifetime of the usher access tokens the
	// login app mints (login.access_token_ttl). It bounds how stale a
	// token's seats can be.
	AccessTokenTTL time.Duration

	// The default provider (USHER_AUTH_*).
	Tenant       string // USHER_AUTH_TENANT
	ProviderType string // USHER_AUTH_PROVIDER_TYPE: oidc, google or github
	ClientID     string // USHER_AUTH_CLIENT_ID
	ClientSecret string // USHER_AUTH_CLIENT_SECRET
	IssuerURL    string // USHER_AUTH_ISSUER_URL (oidc; google defaults to Google's)
	RedirectURL  string // USHER_AUTH_REDIRECT_URL, default <LoginURL>/auth/oidc/callback
	GroupsClaim  string // USHER_AUTH_GROUPS_CLAIM, default groups
}

// The defaults of Config.
const (
	DefaultCookieName        = "usher_session"
	DefaultSessionTTL        = 12 * time.Hour
	DefaultIdleTTL           = 2 * time.Hour
	DefaultRefreshReuseGrace = 10 * time.Second
	DefaultGroupsRefresh     = 15 * time.Minute
	DefaultAccessTokenTTL    = 15 * time.Minute
	DefaultGroupsClaim       = "groups"
	// CallbackPath is where every provider sends the browser back.
	CallbackPath = "/auth/oidc/callback"
)

// WithDefaults returns c with every empty field that has a default set:
// the URLs derived from RootDomain and LoginURL, the cookie name and the
// lifetimes.
func (c Config) WithDefaults() Config {
	c.RootDomain = strings.ToLower(strings.TrimSpace(c.RootDomain))
	if c.LoginURL == "" && c.RootDomain != "" {
		c.LoginURL = "https://auth." + c.RootDomain
	}
	c.LoginURL = strings.TrimRight(c.LoginURL, "/")
	if c.RedirectURL == "" && c.LoginURL != "" {
		c.RedirectURL = c.LoginURL + CallbackPath
	}
	if c.CookieName == "" {
		c.CookieName = DefaultCookieName
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.IdleTTL == 0 {
		c.IdleTTL = DefaultIdleTTL
	}
	if c.RefreshReuseGrace == 0 {
		c.RefreshReuseGrace = DefaultRefreshReuseGrace
	}
	if c.GroupsRefresh == 0 {
		c.GroupsRefresh = DefaultGroupsRefresh
	}
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = DefaultGroupsClaim
	}
	return c
}

// Validate reports every problem with c (after WithDefaults), each naming
// its environment variable or YAML key, joined with errors.Join. It does
// no I/O.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if c.RootDomain == "" {
		bad("USHER_ROOT_DOMAIN", "required: the domain the session cookie is set on (e.g. example.com)")
	} else if !validHost(c.RootDomain) {
		bad("USHER_ROOT_DOMAIN", "%q is not a host name or IP address", c.RootDomain)
	}
	switch u, err := url.Parse(c.LoginURL); {
	case c.LoginURL == "":
		bad("USHER_LOGIN_URL", "required")
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		bad("USHER_LOGIN_URL", "%q must be a base URL: scheme and host, no path, query or user", c.LoginURL)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		bad("USHER_LOGIN_URL", "%q: plain http only on loopback (127.0.0.1, ::1, localhost); use https", c.LoginURL)
	case u.Scheme != "https" && u.Scheme != "http":
		bad("USHER_LOGIN_URL", "%q must be https", c.LoginURL)
	case c.RootDomain != "" && !onDomain(strings.ToLower(u.Hostname()), c.RootDomain):
		bad("USHER_LOGIN_URL", "host %q is not %s or under it, so the session cookie could not be set for the apps", u.Hostname(), c.RootDomain)
	}
	if len(c.SessionKey) < 32 {
		bad("USHER_SESSION_KEY", "%d bytes, want at least 32 random bytes in standard base64 (openssl rand -base64 32)", len(c.SessionKey))
	}
	if len(c.AllowedDomains) == 0 {
		bad("USHER_ALLOWED_DOMAINS", "must not be empty: the email domains allowed to log in, comma-separated")
	}
	for _, d := range c.AllowedDomains {
		if d != strings.ToLower(d) || !validHost(d) || net.ParseIP(d) != nil || !strings.Contains(d, ".") && d != "localhost" {
			bad("USHER_ALLOWED_DOMAINS", "%q is not a lower-case domain name", d)
		}
	}
	if c.CookieName == "" || strings.ContainsAny(c.CookieName, "()<>@,;:\\\"/[]?={} \t") || !printableASCII(c.CookieName) {
		bad("login.cookie_name", "%q is not a valid cookie name", c.CookieName)
	} else if strings.HasPrefix(c.CookieName, "__Host-") {
		bad("login.cookie_name", "%q: the session cookie is set on the root domain, which __Host- forbids", c.CookieName)
	} else if strings.HasPrefix(c.CookieName, "__Secure-") && c.InsecureLoopback() {
		bad("login.cookie_name", "%q: __Secure- needs https, and USHER_LOGIN_URL is plain http", c.CookieName)
	}
	if c.SessionTTL < time.Minute || c.SessionTTL > 30*24*time.Hour {
		bad("login.session_ttl", "%s must be between 1m and 720h", c.SessionTTL)
	}
	if c.IdleTTL < time.Minute || c.IdleTTL > c.SessionTTL {
		bad("login.idle_ttl", "%s must be at least 1m and at most login.session_ttl", c.IdleTTL)
	}
	if c.RefreshReuseGrace < 0 || c.RefreshReuseGrace > time.Minute {
		bad("login.refresh_reuse_grace", "%s must be between 0 and 1m", c.RefreshReuseGrace)
	}
	if c.GroupsRefresh < time.Minute || c.GroupsRefresh > 24*time.Hour {
		bad("login.groups_refresh", "%s must be between 1m and 24h", c.GroupsRefresh)
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > 24*time.Hour {
		bad("login.access_token_ttl", "%s must be between 1m and 24h", c.AccessTokenTTL)
	}
	if err := authz.ValidateTenant(c.Tenant); err != nil {
		bad("USHER_AUTH_TENANT", "%v", err)
	}
	switch c.ProviderType {
	case "oidc", "google", "github":
	case "":
		bad("USHER_AUTH_PROVIDER_TYPE", "required: oidc, google or github")
	default:
		bad("USHER_AUTH_PROVIDER_TYPE", "%q is not oidc, google or github", c.ProviderType)
	}
	if c.ClientID == "" {
		bad("USHER_AUTH_CLIENT_ID", "required")
	}
	if c.ClientSecret == "" {
		bad("USHER_AUTH_CLIENT_SECRET", "required")
	}
	if c.ProviderType == "oidc" && c.IssuerURL == "" {
		bad("USHER_AUTH_ISSUER_URL", "required for the oidc provider")
	}
	if c.IssuerURL != "" {
		if err := checkServiceURL(c.IssuerURL); err != nil {
			bad("USHER_AUTH_ISSUER_URL", "%v", err)
		}
	}
	if c.RedirectURL != "" {
		if err := checkServiceURL(c.RedirectURL); err != nil {
			bad("USHER_AUTH_REDIRECT_URL", "%v", err)
		}
	}
	if c.GroupsClaim == "" || strings.HasPrefix(c.GroupsClaim, ".") || strings.HasSuffix(c.GroupsClaim, ".") || strings.Contains(c.GroupsClaim, "..") {
		bad("USHER_AUTH_GROUPS_CLAIM", "%q is not a claim name or dotted path", c.GroupsClaim)
	}
	return errors.Join(errs...)
}

// InsecureLoopback reports whether the login app is served over plain
// http on loopback (development and tests). Cookies then lose Secure and
// the flow cookie its __Host- prefix, which browsers only accept over
// https. It MUST NOT be the case in production: USHER_LOGIN_URL accepts
// http only for loopback hosts.
func (c Config) InsecureLoopback() bool {
	u, err := url.Parse(c.LoginURL)
	return err == nil && u.Scheme == "http" && isLoopback(u.Hostname())
}

// checkServiceURL accepts absolute https URLs, and http ones on loopback.
func checkServiceURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.User != nil:
		return fmt.Errorf("%q is not an absolute URL", s)
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme != "https":
		return fmt.Errorf("%q must be https (plain http only on loopback)", s)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validHost accepts lower-case ASCII host names and IP addresses.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 || strings.HasSuffix(h, ".") {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// onDomain reports whether host is root or a subdomain of it, on a dot
// boundary. host must already be lower case.
func onDomain(host, root string) bool {
	return host == root || strings.HasSuffix(host, "."+root) && net.ParseIP(root) == nil
}

// cookieDomain is the Domain attribute of the session cookie: the root
// domain, or none (a host-only cookie) for an IP address or localhost,
// where browsers refuse a Domain attribute.
func (c Config) cookieDomain() string {
	if net.ParseIP(c.RootDomain) != nil || c.RootDomain == "localhost" {
		return ""
	}
	return c.RootDomain
}

// sameSiteLax is the SameSite of every cookie the login app sets: Lax, so
// that the session cookie goes with top-level navigations from the IdP
// and from other sites, and not with cross-site subrequests or POSTs.
const sameSiteLax = http.SameSiteLaxMode
