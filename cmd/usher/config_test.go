package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeBadConfigExits2BeforeListening runs `usher serve` with a bad
// configuration on a free port and checks that it exits 2 without ever
// listening there.
func TestServeBadConfigExits2BeforeListening(t *testing.T) {
	port := freePort(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - path: /x\n    public: true\n    permission: a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"bad values", []string{"--grpc-addr", port, "--check-timeout", "0s", "--log-level", "loud"},
			[]string{"check_timeout: must be between", "log_level: must be debug, info, warn or error"}},
		{"bad rules file", []string{"--grpc-addr", port, "--rules", rules}, []string{"rules[0].permission: a rule needs exactly one of"}},
		{"missing rules file", []string{"--grpc-addr", port, "--rules", "/nonexistent/rules.yaml"}, []string{"rules: open /nonexistent/rules.yaml"}},
		{"missing TLS files", []string{"--grpc-addr", port, "--tls-cert-file", "/nonexistent.pem", "--tls-key-file", "/nonexistent.key"}, []string{"tls.cert_file, tls.key_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := usher(t, nil, append([]string{"serve", "--data-dir", t.TempDir(), "--http-addr", freePort(t)}, tt.args...)...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want 2; stderr %s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q lacks %q", r.stderr, w)
				}
			}
			if c, err := net.Dial("tcp", port); err == nil {
				_ = c.Close()
				t.Errorf("something listens on %s", port)
			}
		})
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestParseLifetime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"720h", 720 * time.Hour, ""},
		{"90d", 90 * 24 * time.Hour, ""},
		{"365d", 365 * 24 * time.Hour, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"366d", 0, "at most 365d"},
		{"8761h", 0, "at most 365d"},
		{"0d", 0, "want a duration"},
		{"-1h", 0, "must be positive"},
		{"1.5d", 0, "want a duration"},
		{"d", 0, "want a duration"},
		{"", 0, "want a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseLifetime("expires", tt.in)
			errText := ""
			if err != nil {
				errText = err.Error()
			}
			if got != tt.want || (tt.err == "") != (err == nil) || !strings.Contains(errText, tt.err) {
				t.Errorf("parseLifetime(%q) = %v, %v; want %v, error with %q", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}
