package credentials_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBannedImports keeps the credentials store a file and nothing more:
// the standard library only, and no network.
func TestBannedImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list returned %d packages; the test cannot see the dependencies", len(lines))
	}
	for _, l := range lines {
		path, std, _ := strings.Cut(l, " ")
		switch {
		case path == "github.com/usher-dev/usher/internal/credentials":
		case std != "true":
			t.Errorf("credentials depends on %s, outside the standard library", path)
		case path == "net" || strings.HasPrefix(path, "net/"):
			t.Errorf("credentials depends on %s: it must not reach the network", path)
		}
	}
}
