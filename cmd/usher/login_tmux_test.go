package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/store/storetest"
)

// TestLoginTerminal runs the real usher login --no-browser in a tmux
// pane, as a person would see it: the URL and the code appear, and once
// the server answers the login ends with a clear message and exit code.
func TestLoginTerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatalf("this test needs tmux: apt-get install -y --no-install-recommends tmux (%v)", err)
	}
	bin, err := buildUsher()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		answer string
		code   int
		want   string // the line before the exit code; $SRV for the server
	}{
		{"approved", "approve", 0, "Logged in to $SRV as alice@acme.test (tenant acme)."},
		{"denied", "access_denied", exitDenied, "usher: login denied: the request was denied in the browser; run usher login again if that was a mistake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStandIn(t) // answers authorization_pending until told
			cfg := t.TempDir()
			sock := filepath.Join(storetest.ShortTempDir(t), "tmux")
			tm := func(args ...string) string {
				t.Helper()
				cmd := exec.Command(tmux, append([]string{"-S", sock}, args...)...)
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + cfg, "TERM=xterm-256color"}
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("tmux %s: %v\n%s", args[0], err, out)
				}
				return string(out)
			}
			script := fmt.Sprintf("XDG_CONFIG_HOME='%s' '%s' login --no-browser --server '%s'; echo \"[exit $?]\"; sleep 60", cfg, bin, s.URL())
			tm("new-session", "-d", "-s", "login", "-x", "120", "-y", "40", "sh", "-c", script)
			t.Cleanup(func() { _ = exec.Command(tmux, "-S", sock, "kill-server").Run() })
			screen := func() string { return tm("capture-pane", "-p", "-J", "-t", "login") }

			var shown string
			waitScreen(t, screen, &shown, func(sc string) bool { return strings.Contains(sc, "Waiting for approval") })
			for _, want := range []string{"    " + s.URL() + "/device\n", "    BCDF-GHJK\n", "press Ctrl-C to cancel"} {
				if !strings.Contains(shown, want) {
					t.Errorf("the screen does not show %q:\n%s", want, shown)
				}
			}
			s.set(func(s *standIn) { s.answers = []string{tt.answer} })

			exitLine := regexp.MustCompile(`(?m)^\[exit (\d+)\]$`)
			waitScreen(t, screen, &shown, exitLine.MatchString)
			lines := strings.Split(strings.TrimRight(shown, "\n"), "\n")
			var i int
			for i = range lines {
				if exitLine.MatchString(lines[i]) {
					break
				}
			}
			want := strings.ReplaceAll(tt.want, "$SRV", s.URL())
			if i == 0 || lines[i-1] != want || lines[i] != fmt.Sprintf("[exit %d]", tt.code) {
				t.Errorf("the login ended with:\n%s\nwant %q then [exit %d]", shown, want, tt.code)
			}
		})
	}
}

// waitScreen polls the pane until done holds, leaving its text in shown.
func waitScreen(t *testing.T, screen func() string, shown *string, done func(string) bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if *shown = screen(); done(*shown) {
			return
		}
	}
	t.Fatalf("timed out; the screen shows:\n%s", *shown)
}
