package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLoginOpensBrowser: with a desktop, usher login hands the
// verification URL (with the code) to xdg-open; not with --no-browser,
// and never a URL that is not http(s). xdg-open is a script here that
// records its argument: no desktop runs in tests.
func TestLoginOpensBrowser(t *testing.T) {
	bin := t.TempDir()
	opened := filepath.Join(t.TempDir(), "opened")
	script := "#!/bin/sh\nprintf '%s' \"$1\" > '" + opened + "'\n"
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte(script), 0o700); err != nil { //nolint:gosec // a test's executable script
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	tests := []struct {
		name     string
		complete string // "" for the stand-in's own
		flags    []string
		want     string // what xdg-open got; "" for not started
	}{
		{"desktop", "", nil, "$SRV/device?user_code=BCDF-GHJK"},
		{"--no-browser", "", []string{"--no-browser"}, ""},
		{"not a web page", "file:///etc/passwd", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = os.Remove(opened)
			s := newStandIn(t)
			s.set(func(s *standIn) { s.answers, s.complete = []string{"approve"}, tt.complete })
			env := cliEnv(t)
			env["DISPLAY"] = ":0"
			r := usher(t, env, append([]string{"login", "--server", s.URL()}, tt.flags...)...)
			if r.code != 0 {
				t.Fatalf("login: exit %d\n%s", r.code, r.stderr)
			}
			if tt.want == "" {
				time.Sleep(200 * time.Millisecond) // the opener is not waited for
				if b, err := os.ReadFile(opened); err == nil {
					t.Errorf("xdg-open was started with %q", b)
				}
				return
			}
			want := s.URL() + "/device?user_code=BCDF-GHJK"
			var got []byte
			waitUntil(t, func() bool {
				var err error
				got, err = os.ReadFile(opened)
				return err == nil && len(got) > 0
			}, "xdg-open")
			if string(got) != want {
				t.Errorf("xdg-open got %q, want %q", got, want)
			}
		})
	}
}
