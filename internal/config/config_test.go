package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current behaviour")

// loadConfig loads the serve configuration from a config file body (if
// any), an environment and flags, as `usher serve` does.
func loadConfig(t *testing.T, file string, env map[string]string, flags ...string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	load := Flags(fs)
	if file != "" {
		path := filepath.Join(t.TempDir(), "usher.yaml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		flags = append(flags, "--config", path)
	}
	if err := fs.Parse(flags); err != nil {
		return Config{}, err
	}
	return load(func(k string) string { return env[k] })
}

func TestConfigPrecedence(t *testing.T) {
	file := "grpc_addr: 127.0.0.1:1001\nhttp_addr: 127.0.0.1:2001\ncache:\n  ttl: 30s\n"
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		flags []string
		grpc  string
		ttl   time.Duration
	}{
		{"defaults", "", nil, nil, "127.0.0.1:9001", time.Minute},
		{"file", file, nil, nil, "127.0.0.1:1001", 30 * time.Second},
		{"env over file", file, map[string]string{"USHER_GRPC_ADDR": "127.0.0.1:1002", "USHER_CACHE_TTL": "20s"}, nil, "127.0.0.1:1002", 20 * time.Second},
		{"flag over env", file, map[string]string{"USHER_GRPC_ADDR": "127.0.0.1:1002"}, []string{"--grpc-addr", "127.0.0.1:1003", "--cache-ttl", "10s"}, "127.0.0.1:1003", 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(t, tt.file, tt.env, tt.flags...)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.GRPCAddr != tt.grpc || cfg.Cache.TTL != tt.ttl {
				t.Errorf("grpc_addr %s, cache.ttl %s; want %s, %s", cfg.GRPCAddr, cfg.Cache.TTL, tt.grpc, tt.ttl)
			}
		})
	}
}

func TestConfigEveryKeyHasEnvAndFlag(t *testing.T) {
	var cfg Config
	seen := map[string]bool{}
	for _, s := range cfg.settings() {
		if seen[s.flag] || seen[s.env()] {
			t.Errorf("%s: flag or env reused", s.key)
		}
		seen[s.flag], seen[s.env()] = true, true
		if want := "USHER_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(s.key)); s.env() != want {
			t.Errorf("%s: env %s, want %s", s.key, s.env(), want)
		}
		if want := strings.NewReplacer(".", "-", "_", "-").Replace(s.key); s.flag != want {
			t.Errorf("%s: flag --%s, want --%s", s.key, s.flag, want)
		}
	}
	// Each setting can be set from the environment and reads back.
	env := map[string]string{}
	for _, s := range cfg.settings() {
		switch s.kind {
		case "duration":
			env[s.env()] = "3s"
			if s.key == "changes_interval" {
				env[s.env()] = "300ms"
			}
			if s.key == "changes_retention" || s.key == "jwt.max_ttl" || s.key == "idp.keys_stale_max" {
				env[s.env()] = "3h"
			}
		case "bool":
			if s.key != "auth.enabled" { // login has its own test
				env[s.env()] = "true"
			}
		case "int":
			env[s.env()] = "2097152"
		}
	}
	got, err := loadConfig(t, "", env)
	if err != nil {
		t.Fatal(err)
	}
	if got.CheckTimeout != 3*time.Second || !got.KeepCredential || got.Cache.MaxCost != 2097152 || got.Cache.LoadTimeout != 3*time.Second {
		t.Errorf("env not applied: %+v", got)
	}
}

// TestConfigErrorsGolden: every problem is reported at once, each with its
// key, before anything listens.
func TestConfigErrorsGolden(t *testing.T) {
	file := `grpc_addr: nowhere
http_addr: nowhere
check_timeout: 0s
check_timeot: 1s
realm: 'a"b'
log_level: loud
log_format: xml
changes_interval: 5s
changes_retention: 1m
mongo_uri: postgres://x
cache:
  ttl: 0s
  negative_ttl: 1m
  max_cost: 10
tls:
  cert_file: /nonexistent.pem
  client_ca_file: /ca.pem
`
	_, err := loadConfig(t, file, map[string]string{"USHER_USAGE_FLUSH_INTERVAL": "0s"})
	if err == nil {
		t.Fatal("no error")
	}
	golden(t, "config-errors.golden", err.Error()+"\n")
}

// TestConfigRejects covers catalogue row 25 (docs/catalogue-map.md).
// Catalogue row 96 (0.0.0.0/0 as trusted proxies is refused).
func TestConfigRejects(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		flags []string
		want  string
	}{
		{"unknown key", "grpc_adr: 127.0.0.1:1\n", nil, nil, "grpc_adr (line 1): unknown key"},
		{"unknown nested key", "cache:\n  size: 1\n", nil, nil, "cache.size (line 2): unknown key"},
		{"group as value", "cache: 1\n", nil, nil, "cache (line 1): want a mapping"},
		{"list as value", "realm: [a, b]\n", nil, nil, "realm (line 1): want a single value"},
		{"bad duration in file", "check_timeout: soon\n", nil, nil, `check_timeout (line 1): "soon" is not a duration`},
		{"two documents", "realm: a\n---\nrealm: b\n", nil, nil, "more than one YAML document"},
		{"not YAML", "realm: [\n", nil, nil, "yaml:"},
		{"bad duration in env", "", map[string]string{"USHER_CHECK_TIMEOUT": "soon"}, nil, `check_timeout (from USHER_CHECK_TIMEOUT): "soon" is not a duration`},
		{"bad bool in env", "", map[string]string{"USHER_KEEP_CREDENTIAL": "maybe"}, nil, `keep_credential (from USHER_KEEP_CREDENTIAL): "maybe" is not true or false`},
		{"bad flag", "", nil, []string{"--check-timeout", "soon"}, `invalid argument "soon" for "--check-timeout"`},
		// docs/security-catalogue.md row 25: leeway at most 60 s.
		{"leeway over a minute", "", nil, []string{"--jwt-leeway", "61s"}, "jwt.leeway: must be between 0 and 1m"},
		{"same addresses", "", nil, []string{"--grpc-addr", "127.0.0.1:7000", "--http-addr", "127.0.0.1:7000"}, "http_addr: must differ from grpc_addr"},
		{"check address not host:port", "http_check_addr: 9002\n", nil, nil, `http_check_addr: "9002" is not host:port`},
		{"check address taken", "", map[string]string{"USHER_HTTP_CHECK_ADDR": "127.0.0.1:8080"}, nil,
			"http_check_addr: must differ from grpc_addr and http_addr"},
		{"proxy not a CIDR", "", nil, []string{"--trusted-proxies", "10.0.0.0/8, nginx.internal"}, `trusted_proxies: "nginx.internal" is not a CIDR`},
		// docs/security-catalogue.md row 96: no trust of every address.
		{"every client trusted", "", map[string]string{"USHER_TRUSTED_PROXIES": "0.0.0.0/0"}, nil,
			`trusted_proxies: "0.0.0.0/0" trusts every client's forwarded headers`},
		{"every v6 client trusted", "trusted_proxies: 10.0.0.0/8,::/0\n", nil, nil, `trusted_proxies: "::/0" trusts every client`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, tt.file, tt.env, tt.flags...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/config -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestConfigHTTPCheck(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		flags []string
		addr  string
		want  []string
	}{
		{"default: off, loopback trusted", nil, nil, "", []string{"127.0.0.0/8", "::1/128"}},
		{"from the environment", map[string]string{"USHER_HTTP_CHECK_ADDR": "0.0.0.0:9002", "USHER_TRUSTED_PROXIES": "10.1.2.0/24, 10.9.9.9 ,fd00::/8"},
			nil, "0.0.0.0:9002", []string{"10.1.2.0/24", "10.9.9.9/32", "fd00::/8"}},
		{"from flags, host bits masked", nil, []string{"--http-check-addr", "127.0.0.1:9002", "--trusted-proxies", "172.16.5.4/12"},
			"127.0.0.1:9002", []string{"172.16.0.0/12"}},
		{"empty: no peer trusted", nil, []string{"--trusted-proxies", ""}, "", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(t, "", tt.env, tt.flags...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cfg.TrustedProxyPrefixes()
			if err != nil {
				t.Fatal(err)
			}
			gotS := []string{}
			for _, p := range got {
				gotS = append(gotS, p.String())
			}
			if cfg.HTTPCheckAddr != tt.addr {
				t.Errorf("http_check_addr %q, want %q", cfg.HTTPCheckAddr, tt.addr)
			}
			if d := cmp.Diff(tt.want, gotS); d != "" {
				t.Errorf("trusted proxies (-want +got):\n%s", d)
			}
		})
	}
}
