package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
	"github.com/usher-dev/usher/idp"
)

// Config is everything `usher serve` reads. It is loaded from defaults,
// then the YAML file (--config), then USHER_* environment variables, then
// flags: each later source wins (see [Flags]).
type Config struct {
	GRPCAddr           string
	HTTPAddr           string
	HTTPCheckAddr      string
	TrustedProxies     string
	DataDir            string
	MongoURI           string
	Rules              string
	CheckTimeout       time.Duration
	Realm              string
	KeepCredential     bool
	LogLevel           string
	LogFormat          string
	ChangesInterval    time.Duration
	ChangesRetention   time.Duration
	UsageFlushInterval time.Duration
	ShutdownTimeout    time.Duration
	MasterKeyFile      string
	JWT                JWT
	Cache              Cache
	IdP                IdP
	TLS                TLS
	Login              Login
	Roles              string
}

// IdP configures the verification of tenants' IdP tokens.
type IdP struct {
	// KeysStaleMax is how long an IdP's last good key set keeps verifying
	// while fetching it fails.
	KeysStaleMax time.Duration
}

// JWT configures usher's own access tokens.
type JWT struct {
	Issuer   string
	Audience string
	Leeway   time.Duration
	MaxTTL   time.Duration
}

// Authz is the token configuration of the authorizer.
func (j JWT) Authz() authz.TokenConfig {
	return authz.TokenConfig{Issuer: j.Issuer, Audience: j.Audience, Leeway: j.Leeway, MaxTTL: j.MaxTTL}
}

// Cache configures the authorizer's caches.
type Cache struct {
	TTL         time.Duration
	StaleMax    time.Duration
	NegativeTTL time.Duration
	MaxCost     int64
	LoadTimeout time.Duration
	MaxLoads    int
}

// TLS configures the gRPC server's TLS; empty files mean plaintext.
type TLS struct {
	CertFile     string
	KeyFile      string
	ClientCAFile string
}

// Default returns the configuration before any source is applied.
func Default() Config {
	c := authz.DefaultCacheConfig()
	t := authz.DefaultTokenConfig()
	return Config{
		JWT:                JWT{Issuer: t.Issuer, Audience: t.Audience, Leeway: t.Leeway, MaxTTL: t.MaxTTL},
		GRPCAddr:           "127.0.0.1:9001",
		HTTPAddr:           "127.0.0.1:8080",
		TrustedProxies:     DefaultTrustedProxies,
		DataDir:            "./usher-data",
		CheckTimeout:       envoy.DefaultTimeout,
		Realm:              "usher",
		LogLevel:           "info",
		LogFormat:          "auto",
		ChangesInterval:    500 * time.Millisecond,
		ChangesRetention:   time.Hour,
		UsageFlushInterval: 10 * time.Second,
		ShutdownTimeout:    15 * time.Second,
		IdP:                IdP{KeysStaleMax: idp.DefaultKeysStaleMax},
		Login:              defaultLogin(),
		Roles:              RoleAuthz + "," + RoleLogin,
		Cache: Cache{
			TTL: c.TTL, StaleMax: c.StaleMax, NegativeTTL: c.NegativeTTL,
			MaxCost: c.MaxCost, LoadTimeout: c.LoadTimeout, MaxLoads: authz.DefaultMaxLoads,
		},
	}
}

// Authz is the cache configuration of the authorizer.
func (c Cache) Authz() authz.CacheConfig {
	return authz.CacheConfig{TTL: c.TTL, StaleMax: c.StaleMax, NegativeTTL: c.NegativeTTL,
		MaxCost: c.MaxCost, LoadTimeout: c.LoadTimeout, MaxLoads: c.MaxLoads}
}

// Validate reports every problem at once, each with its key. It does no
// I/O.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for _, a := range []struct{ key, addr string }{{"grpc_addr", c.GRPCAddr}, {"http_addr", c.HTTPAddr}} {
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "" {
			bad(a.key, "%q is not host:port", a.addr)
		}
	}
	if len(errs) == 0 && c.GRPCAddr == c.HTTPAddr {
		bad("http_addr", "must differ from grpc_addr")
	}
	if c.HTTPCheckAddr != "" {
		if _, port, err := net.SplitHostPort(c.HTTPCheckAddr); err != nil || port == "" {
			bad("http_check_addr", "%q is not host:port", c.HTTPCheckAddr)
		} else if c.HTTPCheckAddr == c.GRPCAddr || c.HTTPCheckAddr == c.HTTPAddr {
			bad("http_check_addr", "must differ from grpc_addr and http_addr")
		}
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		bad("trusted_proxies", "%v", err)
	}
	if c.MongoURI == "" && c.DataDir == "" {
		bad("data_dir", "is required when mongo_uri is empty")
	}
	if c.MongoURI != "" && !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
		bad("mongo_uri", "must start with mongodb:// or mongodb+srv://")
	}
	if c.IdP.KeysStaleMax < time.Minute {
		bad("idp.keys_stale_max", "must be at least 1m")
	}
	if c.CheckTimeout <= 0 || c.CheckTimeout > 10*time.Second {
		bad("check_timeout", "must be between 1ms and 10s (Envoy's default ext_authz timeout is 200ms)")
	}
	if c.Realm == "" || strings.ContainsAny(c.Realm, "\"\\\r\n") {
		bad("realm", "must be non-empty without quotes, backslashes or line breaks")
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		bad("log_level", "%v", err)
	}
	switch c.LogFormat {
	case "json", "text", "auto":
	default:
		bad("log_format", "must be json, text or auto, not %q", c.LogFormat)
	}
	if c.ChangesInterval <= 0 || c.ChangesInterval > time.Second {
		bad("changes_interval", "must be between 1ms and 1s: changes must reach every server within 1s")
	}
	if c.ChangesRetention < 10*time.Minute {
		bad("changes_retention", "must be at least 10m")
	}
	if c.UsageFlushInterval <= 0 {
		bad("usage_flush_interval", "must be positive")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be positive")
	}
	if err := c.Cache.Authz().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.JWT.Authz().Validate(); err != nil {
		errs = append(errs, err)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file go together")
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		bad("tls.client_ca_file", "needs tls.cert_file and tls.key_file (mTLS is on top of TLS)")
	}
	c.Login.validate(bad, c.HasRole(RoleLogin))
	c.validateRoles(bad)
	if c.Login.Enabled && c.Login.Addr != "" && (c.Login.Addr == c.GRPCAddr || c.Login.Addr == c.HTTPAddr) {
		bad("login.addr (USHER_LOGIN_ADDR)", "must differ from grpc_addr and http_addr")
	}
	return errors.Join(errs...)
}

// DefaultTrustedProxies is trusted_proxies' default: loopback only, so
// that forwarded headers are believed from a proxy on the same host and
// from nobody else until the operator names the proxies.
const DefaultTrustedProxies = "127.0.0.0/8,::1/128"

// TrustedProxyPrefixes parses trusted_proxies: comma-separated CIDRs (a
// bare address is one host). Empty trusts no peer. A prefix of length 0
// (0.0.0.0/0, ::/0) is refused: it would believe every client's forwarded
// headers (docs/security-catalogue.md row 96).
func (c *Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	out := []netip.Prefix{} // never nil: nil would mean the default
	var errs []error
	for item := range strings.SplitSeq(c.TrustedProxies, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil || a.Zone() != "" {
				errs = append(errs, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or an address", item))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Bits() == 0 {
			errs = append(errs, fmt.Errorf("%q trusts every client's forwarded headers; name your proxies' ranges", item))
			continue
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}

// ParseLevel reads a log level: debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("must be debug, info, warn or error, not %q", s)
	}
	return l, nil
}
