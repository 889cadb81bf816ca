package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

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

func (c *Config) settings() []setting {
	return append([]setting{
		{"grpc_addr", "grpc-addr", "address of the ext_authz gRPC server (and gRPC health)", "string", &c.GRPCAddr},
		{"http_addr", "http-addr", "address of /healthz, /readyz and /metrics", "string", &c.HTTPAddr},
		{"http_check_addr", "http-check-addr", "address of HTTP check mode (Envoy http_service, nginx auth_request, Traefik and Caddy forward auth); empty: off", "string", &c.HTTPCheckAddr},
		{"trusted_proxies", "trusted-proxies", "comma-separated CIDRs of the proxies whose X-Original-*/X-Forwarded-* headers HTTP check mode believes", "string", &c.TrustedProxies},
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
		{"idp.keys_stale_max", "idp-keys-stale-max", "how long an IdP's last good keys keep verifying while fetching them fails", "duration", &c.IdP.KeysStaleMax},
		{"cache.max_loads", "cache-max-loads", "store reads one cache may have in flight; more wait, then fail", "int", &c.Cache.MaxLoads},
		{"tls.cert_file", "tls-cert-file", "PEM certificate for the gRPC server (enables TLS)", "string", &c.TLS.CertFile},
		{"tls.key_file", "tls-key-file", "PEM private key for the gRPC server", "string", &c.TLS.KeyFile},
		{"tls.client_ca_file", "tls-client-ca-file", "PEM CA bundle; clients (Envoy) must present a certificate it signed (mTLS)", "string", &c.TLS.ClientCAFile},
		{"roles", "roles", "what this server runs: authz (Check over gRPC and HTTP), login (the login app, with auth.enabled), or authz,login", "string", &c.Roles},
	}, c.loginSettings()...)
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

// Flags registers the serve flags on fs and returns a function that loads
// the configuration once fs is parsed: defaults < file (--config) <
// environment (getenv) < flags. Its error lists every problem found.
func Flags(fs *pflag.FlagSet) func(getenv func(string) string) (Config, error) {
	configFile := fs.String("config", "", "YAML config file (keys as in the README's configuration reference)")
	// Flags parse into a scratch config, only to report bad values early;
	// the real load below re-applies the ones given.
	scratch := Default()
	values := map[string]*flagValue{}
	for _, s := range scratch.settings() {
		fv := &flagValue{s: s, def: s.String()}
		values[s.key] = fv
		f := fs.VarPF(fv, s.flag, "", s.usage+" (env "+s.env()+")")
		if s.kind == "bool" {
			f.NoOptDefVal = "true"
		}
	}
	return func(getenv func(string) string) (Config, error) {
		cfg := Default()
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
		if err := cfg.Validate(); err != nil {
			errs = append(errs, err)
		}
		if cfg.Login.Enabled && cfg.HasRole(RoleLogin) && getenv("USHER_MASTER_KEY") == "" && cfg.MasterKeyFile == "" {
			errs = append(errs, errors.New("master key (USHER_MASTER_KEY or master_key_file): is required with auth.enabled on a server with the login role: the login app seals secrets with it (openssl rand -base64 32)"))
		}
		return cfg, errors.Join(errs...)
	}
}

// loadFile reads a YAML config file strictly: every key must be a known
// setting. It returns an error when the file cannot be read as YAML, and
// otherwise every problem found, each with its key and line.
func (c *Config) loadFile(path string) ([]error, error) {
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
