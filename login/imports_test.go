package login_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBannedImports keeps login off the storage and Envoy layers: it owns
// interfaces that store/ implements, and never the other way round.
func TestBannedImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := []string{
		"go.mongodb.org/mongo-driver",
		"google.golang.org/grpc",
		"github.com/envoyproxy/",
		"github.com/usher-dev/usher/store",
		"github.com/usher-dev/usher/envoy",
		"github.com/usher-dev/usher/cmd",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned %d packages; the test cannot see the dependencies", len(deps))
	}
	for _, dep := range deps {
		for _, b := range banned {
			if dep == b || strings.HasPrefix(dep, strings.TrimSuffix(b, "/")+"/") {
				t.Errorf("login depends on %s (banned: %s)", dep, b)
			}
		}
	}
}
