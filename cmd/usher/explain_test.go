package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/usher-dev/usher/store/storetest"
)

// TestExplain: usher check --dump writes a CheckRequest, usher explain
// shows every step of its decision against the store, prints no
// credential, and records no key use.
func TestExplain(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	admin(t, dir, "tenant", "create", "acme")
	admin(t, dir, "space", "create", "--tenant", "acme", "research")
	admin(t, dir, "seat", "create", "--tenant", "acme", "--name", "viewers", "--grant", "research=datasets.read")
	key := strings.TrimSpace(admin(t, dir, "apikey", "create", "--tenant", "acme", "--name", "ci", "--seat", "viewers").stdout)
	rules := "../../envoy/examples/rules.yaml"

	tests := []struct {
		name   string
		method string
		path   string
		header string
		want   []string
	}{
		{"allowed", "GET", "/spaces/research/datasets/1", "x-api-key: " + key, []string{
			"path        /spaces/research/datasets/1 (normalised)",
			"passed over public (path did not match)",
			"rule        read-datasets: permission datasets.read in space research",
			"credential  x-api-key",
			"identity    apikey subject=apikey:",
			"tenant=acme",
			"seats       viewers",
			"decision    allowed 200 (allowed)",
		}},
		{"permission denied", "DELETE", "/spaces/research/datasets/1", "x-api-key: " + key, []string{
			"rule        write-datasets: permission datasets.write in space research",
			"decision    denied 403 (permission_denied)",
		}},
		{"no credential", "GET", "/me", "x-other: 1", []string{
			"rule        me: authenticated",
			"credential  none",
			"decision    denied 401 (credential_missing)",
		}},
		{"path refused", "GET", "/public/../admin", "x-api-key: " + key, []string{
			"decision    denied 400 (path_invalid)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := t.TempDir() + "/req.json"
			d := usher(t, nil, "check", "--dump", file, "--method", tt.method, "--host", "api.example.test", "--path", tt.path, "-H", tt.header)
			if d.code != exitOK {
				t.Fatalf("check --dump: exit %d %s", d.code, d.stderr)
			}
			r := usher(t, nil, "explain", file, "--rules", rules, "--data-dir", dir)
			if r.code != exitOK {
				t.Fatalf("explain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("explain lacks %q:\n%s", w, r.stdout)
				}
			}
			if strings.Contains(r.stdout+r.stderr, key) {
				t.Errorf("explain printed the credential:\n%s", r.stdout)
			}
		})
	}
	if got := admin(t, dir, "apikey", "list", "--tenant", "acme").stdout; !regexp.MustCompile(`active\s+\S+\s+-\s`).MatchString(got) {
		t.Errorf("explain recorded key use:\n%s", got)
	}
}

func TestExplainRejectsBadInput(t *testing.T) {
	file := t.TempDir() + "/bad.json"
	r := usher(t, nil, "explain", "-", "--data-dir", storetest.ShortTempDir(t))
	if r.code != exitUsage || !strings.Contains(r.stderr, "is not a CheckRequest") {
		t.Errorf("empty stdin: exit %d %q", r.code, r.stderr)
	}
	r = usher(t, nil, "explain", file)
	if r.code != exitUsage {
		t.Errorf("missing file: exit %d %q", r.code, r.stderr)
	}
}
