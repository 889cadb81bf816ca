package authz_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBannedImports keeps authz transport- and storage-free: it must not
// depend, even indirectly, on protobuf, gRPC, net/http, the MongoDB driver,
// or the packages that adapt those (envoy, store, login).
func TestBannedImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := []string{
		"net/http",
		"google.golang.org/protobuf",
		"github.com/golang/protobuf",
		"google.golang.org/grpc",
		"github.com/envoyproxy/",
		"go.mongodb.org/mongo-driver",
		"github.com/usher-dev/usher/login",
		"github.com/usher-dev/usher/store",
		"github.com/usher-dev/usher/envoy",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned %d packages; the test cannot see the dependencies", len(deps))
	}
	for _, dep := range deps {
		for _, b := range banned {
			if dep == b || strings.HasPrefix(dep, strings.TrimSuffix(b, "/")+"/") {
				t.Errorf("authz depends on %s (banned: %s)", dep, b)
			}
		}
	}
}
