package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
)

// serveConfig is everything `usher serve` reads. It is loaded from
// defaults, then the YAML file (--config), then USHER_* environment
// variables, then flags: each later source wins.
type serveConfig struct {
	GRPCAddr           string
	HTTPAddr           string
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
	JWT                jwtConfig
	Cache              cacheConfig
	TLS                tlsConfig
}

type jwtConfig struct {
	Issuer   string
	Audience string
	Leeway   time.Duration
	MaxTTL   time.Duration
}

func (j jwtConfig) authz() authz.TokenConfig {
	return authz.TokenConfig{Issuer: j.Issuer, Audience: j.Audience, Leeway: j.Leeway, MaxTTL: j.MaxTTL}
}

type cacheConfig struct {
	TTL         time.Duration
	StaleMax    time.Duration
	NegativeTTL time.Duration
	MaxCost     int64
	LoadTimeout time.Duration
}

type tlsConfig struct {
	CertFile     string
	KeyFile      string
	ClientCAFile string
}

func defaultServeConfig() serveConfig {
	c := authz.DefaultCacheConfig()
	t := authz.DefaultTokenConfig()
	return serveConfig{
		JWT:                jwtConfig{Issuer: t.Issuer, Audience: t.Audience, Leeway: t.Leeway, MaxTTL: t.MaxTTL},
		GRPCAddr:           "127.0.0.1:9001",
		HTTPAddr:           "127.0.0.1:8080",
		DataDir:            "./usher-data",
		CheckTimeout:       envoy.DefaultTimeout,
		Realm:              "usher",
		LogLevel:           "info",
		LogFormat:          "auto",
		ChangesInterval:    500 * time.Millisecond,
		ChangesRetention:   time.Hour,
		UsageFlushInterval: 10 * time.Second,
		ShutdownTimeout:    15 * time.Second,
		Cache: cacheConfig{
			TTL: c.TTL, StaleMax: c.StaleMax, NegativeTTL: c.NegativeTTL,
			MaxCost: c.MaxCost, LoadTimeout: c.LoadTimeout,
		},
	}
}

func (c cacheConfig) authz() authz.CacheConfig {
	return authz.CacheConfig{TTL: c.TTL, StaleMax: c.StaleMax, NegativeTTL: c.NegativeTTL,
		MaxCost: c.MaxCost, LoadTimeout: c.LoadTimeout}
}

// setting binds one config field to its YAML key, environment variable and
// flag. All three are parsed by the same function.
type setting struct {
	key   string // YAML path, also the name in error messages
	flag  string
	usage string
	kind  string // string, duration, bool, int
	ptr   any
}

// env is the environment variable of a setting: USHER_ and the key in
// upper case with '.' as '_'.
func (s setting) env() string {
	return "USHER_" + strings.ToUpper(strings.ReplaceAll(s.key, ".", "_"))
}

func (s setting) set(v string) error {
	switch p := s.ptr.(type) {
	case *string:
		*p = v
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 500ms, 2s or 1h", v)
		}
		*p = d
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*p = b
	case *int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p = n
	}
	return nil
}

func (s setting) String() string {
	switch p := s.ptr.(type) {
	case *string:
		return *p
	case *time.Duration:
		return p.String()
	case *bool:
		return strconv.FormatBool(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	}
	return ""
}

func (c *serveConfig) settings() []setting {
	return []setting{
		{"grpc_addr", "grpc-addr", "address of the ext_authz gRPC server (and gRPC health)", "string", &c.GRPCAddr},
		{"http_addr", "http-addr", "address of /healthz, /readyz and /metrics", "string", &c.HTTPAddr},
		{"data_dir", "data-dir", "directory of the embedded store, used when no MongoDB URI is set", "string", &c.DataDir},
		{"mongo_uri", "mongo-uri", "MongoDB connection string; empty runs the embedded store", "string", &c.MongoURI},
		{"rules", "rules", "route rules file (YAML); empty denies every route without context extensions", "string", &c.Rules},
		{"check_timeout", "check-timeout", "deadline of one Check; keep it below Envoy's ext_authz timeout", "duration", &c.CheckTimeout},
		{"realm", "realm", "realm in WWW-Authenticate challenges", "string", &c.Realm},
		{"keep_credential", "keep-credential", "forward the credential to the upstream instead of removing it", "bool", &c.KeepCredential},
		{"log_level", "log-level", "debug, info, warn or error", "string", &c.LogLevel},
		{"log_format", "log-format", "json, text, or auto (text on a terminal)", "string", &c.LogFormat},
		{"changes_interval", "changes-interval", "how often the change feed is polled", "duration", &c.ChangesInterval},
		{"changes_retention", "changes-retention", "how long change records are kept (a server that cannot read the feed for longer relies on cache.ttl)", "duration", &c.ChangesRetention},
		{"usage_flush_interval", "usage-flush-interval", "how often API key last-used times are written", "duration", &c.UsageFlushInterval},
		{"shutdown_timeout", "shutdown-timeout", "how long SIGTERM waits for in-flight Checks", "duration", &c.ShutdownTimeout},
		{"master_key_file", "master-key-file", "file holding the master key that seals signing keys (or set USHER_MASTER_KEY to the key itself)", "string", &c.MasterKeyFile},
		{"jwt.issuer", "jwt-issuer", "iss of usher's access tokens", "string", &c.JWT.Issuer},
		{"jwt.audience", "jwt-audience", "aud of usher's access tokens", "string", &c.JWT.Audience},
		{"jwt.leeway", "jwt-leeway", "clock skew allowed on exp, nbf and iat of bearer tokens", "duration", &c.JWT.Leeway},
		{"jwt.max_ttl", "jwt-max-ttl", "longest lifetime (exp - iat) of usher's access tokens", "duration", &c.JWT.MaxTTL},
		{"cache.ttl", "cache-ttl", "how long a cached record is used before it is read again", "duration", &c.Cache.TTL},
		{"cache.stale_max", "cache-stale-max", "how much longer a cached record may serve while the store fails", "duration", &c.Cache.StaleMax},
		{"cache.negative_ttl", "cache-negative-ttl", "how long an unknown key is remembered", "duration", &c.Cache.NegativeTTL},
		{"cache.max_cost", "cache-max-cost", "memory bound of each cache, in bytes", "int", &c.Cache.MaxCost},
		{"cache.load_timeout", "cache-load-timeout", "deadline of one store read filling a cache", "duration", &c.Cache.LoadTimeout},
		{"tls.cert_file", "tls-cert-file", "PEM certificate for the gRPC server (enables TLS)", "string", &c.TLS.CertFile},
		{"tls.key_file", "tls-key-file", "PEM private key for the gRPC server", "string", &c.TLS.KeyFile},
		{"tls.client_ca_file", "tls-client-ca-file", "PEM CA bundle; clients (Envoy) must present a certificate it signed (mTLS)", "string", &c.TLS.ClientCAFile},
	}
}

// flagValue is a pflag.Value that only records what was given; the
// setting parses it after the file and the environment are applied.
type flagValue struct {
	s   setting
	raw string
	def string
}

func (f *flagValue) String() string     { return f.def }
func (f *flagValue) Set(v string) error { f.raw = v; return f.s.set(v) }
func (f *flagValue) Type() string       { return f.s.kind }

// configFlags registers the serve flags and returns a function that loads
// the configuration: defaults < file < environment < flags.
func configFlags(fs *pflag.FlagSet) func(getenv func(string) string) (serveConfig, error) {
	configFile := fs.String("config", "", "YAML config file (keys as in the README's configuration reference)")
	// Flags parse into a scratch config, only to report bad values early;
	// the real load below re-applies the ones given.
	scratch := defaultServeConfig()
	values := map[string]*flagValue{}
	for _, s := range scratch.settings() {
		fv := &flagValue{s: s, def: s.String()}
		values[s.key] = fv
		f := fs.VarPF(fv, s.flag, "", s.usage+" (env "+s.env()+")")
		if s.kind == "bool" {
			f.NoOptDefVal = "true"
		}
	}
	return func(getenv func(string) string) (serveConfig, error) {
		cfg := defaultServeConfig()
		var errs []error
		if *configFile != "" {
			problems, err := cfg.loadFile(*configFile)
			if err != nil {
				return cfg, err
			}
			errs = append(errs, problems...)
		}
		for _, s := range cfg.settings() {
			if v := getenv(s.env()); v != "" {
				if err := s.set(v); err != nil {
					errs = append(errs, fmt.Errorf("%s (from %s): %w", s.key, s.env(), err))
				}
			}
			if f := fs.Lookup(s.flag); f != nil && f.Changed {
				if err := s.set(values[s.key].raw); err != nil {
					errs = append(errs, fmt.Errorf("%s (from --%s): %w", s.key, s.flag, err))
				}
			}
		}
		if err := cfg.validate(); err != nil {
			errs = append(errs, err)
		}
		return cfg, errors.Join(errs...)
	}
}

// loadFile reads a YAML config file strictly: every key must be a known
// setting. It returns an error when the file cannot be read as YAML, and
// otherwise every problem found, each with its key and line.
func (c *serveConfig) loadFile(path string) ([]error, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: holds more than one YAML document", path)
	}
	known := map[string]setting{}
	groups := map[string]bool{}
	for _, s := range c.settings() {
		known[s.key] = s
		if g, _, ok := strings.Cut(s.key, "."); ok {
			groups[g] = true
		}
	}
	var errs []error
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("%s (line %d): want a mapping of keys to values", strings.TrimSuffix(prefix, "."), n.Line))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := prefix + k.Value
			s, isSetting := known[key]
			switch {
			case isSetting && v.Kind == yaml.ScalarNode:
				if err := s.set(v.Value); err != nil {
					errs = append(errs, fmt.Errorf("%s (line %d): %w", key, v.Line, err))
				}
			case isSetting:
				errs = append(errs, fmt.Errorf("%s (line %d): want a single value", key, v.Line))
			case prefix == "" && groups[key]:
				walk(v, key+".")
			default:
				errs = append(errs, fmt.Errorf("%s (line %d): unknown key", key, k.Line))
			}
		}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		walk(doc.Content[0], "")
	}
	return errs, nil
}

// validate reports every problem at once, each with its key. It does no
// I/O.
func (c *serveConfig) validate() error {
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
	if c.MongoURI == "" && c.DataDir == "" {
		bad("data_dir", "is required when mongo_uri is empty")
	}
	if c.MongoURI != "" && !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
		bad("mongo_uri", "must start with mongodb:// or mongodb+srv://")
	}
	if c.CheckTimeout <= 0 || c.CheckTimeout > 10*time.Second {
		bad("check_timeout", "must be between 1ms and 10s (Envoy's default ext_authz timeout is 200ms)")
	}
	if c.Realm == "" || strings.ContainsAny(c.Realm, "\"\\\r\n") {
		bad("realm", "must be non-empty without quotes, backslashes or line breaks")
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
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
	if err := c.Cache.authz().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.JWT.authz().Validate(); err != nil {
		errs = append(errs, err)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file go together")
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		bad("tls.client_ca_file", "needs tls.cert_file and tls.key_file (mTLS is on top of TLS)")
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("must be debug, info, warn or error, not %q", s)
	}
	return l, nil
}
