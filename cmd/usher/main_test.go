package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/store/storetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current behaviour")

// result is one run of the command line.
type result struct {
	code           int
	stdout, stderr string
}

// usher runs the command line in this process with the environment env
// (nothing of the real environment leaks in).
func usher(t testing.TB, env map[string]string, args ...string) result {
	t.Helper()
	return usherCtx(t.Context(), env, args...)
}

func usherCtx(ctx context.Context, env map[string]string, args ...string) result {
	var out, errOut bytes.Buffer
	code := run(ctx, args, strings.NewReader(""), &out, &errOut, func(k string) string { return env[k] })
	return result{code, out.String(), errOut.String()}
}

// admin runs an admin command against the embedded store in dir and fails
// the test unless it succeeds.
func admin(t testing.TB, dir string, args ...string) result {
	t.Helper()
	r := usher(t, nil, append(args, "--data-dir", dir)...)
	if r.code != 0 {
		t.Fatalf("usher %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/usher -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestHelpGolden(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"help-root.golden", []string{"--help"}},
		{"help-serve.golden", []string{"serve", "--help"}},
		{"help-apikey-create.golden", []string{"apikey", "create", "--help"}},
		{"help-seat-create.golden", []string{"seat", "create", "--help"}},
		{"help-login.golden", []string{"login", "--help"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := usher(t, nil, tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			golden(t, tt.name, r.stdout)
		})
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"tenant", "list", "--frob"}, "unknown flag: --frob"},
		{"missing argument", []string{"tenant", "create"}, "needs 1 argument(s): NAME"},
		{"extra argument", []string{"tenant", "list", "x"}, "takes no arguments"},
		{"bad tenant name", []string{"tenant", "create", "Acme_Corp"}, "use lower-case letters, digits and inner '-'"},
		{"missing tenant", []string{"space", "create", "proj1"}, "--tenant is required"},
		{"bad output", []string{"tenant", "list", "--output", "yaml"}, "--output must be table or json"},
		{"seat without name", []string{"seat", "create", "--tenant", "acme"}, "--name is required"},
		{"malformed grant", []string{"seat", "create", "--tenant", "acme", "--name", "x", "--grant", "proj1"}, "want SPACE=PERM"},
		{"bad permission", []string{"seat", "create", "--tenant", "acme", "--name", "x", "--grant", "proj1=Read"}, "must start with a lower-case letter"},
		{"update nothing", []string{"seat", "update", "--tenant", "acme", "--name", "x"}, "nothing to update"},
		{"expiry too long", []string{"apikey", "create", "--tenant", "acme", "--name", "k", "--seat", "s", "--expires", "400d"}, "at most 365d"},
		{"expiry not a duration", []string{"apikey", "create", "--tenant", "acme", "--name", "k", "--expires", "soon"}, "want a duration like 720h"},
		{"negative grace", []string{"apikey", "rotate", "--tenant", "acme", "k", "--grace", "-1h"}, "--grace"},
		{"bench unbounded", []string{"bench", "--duration", "1h"}, "--duration must be between"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			switch args[0] {
			case "tenant", "space", "seat", "apikey":
				args = append(args, "--data-dir", dir)
			}
			r := usher(t, nil, args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q; a usage error prints nothing there", r.stdout)
			}
		})
	}
	// Nothing ran: usage errors never create the store.
	if _, err := os.Stat(filepath.Join(dir, "usher.lock")); !os.IsNotExist(err) {
		t.Errorf("a usage error opened the store (%v)", err)
	}
}
