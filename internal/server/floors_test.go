package server

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestDependencyFloors holds the libraries and toolchain that parse
// unauthenticated input at or above the releases that fixed the advisories
// docs/security-catalogue.md names: golang-jwt v5.2.2 (rows 16 and 122:
// memory blow-up on tokens of many dots), go-jose v4.0.5 (row 123: the
// same on the IdP path), grpc-go 1.58.3 (row 127: HTTP/2 rapid reset),
// golang.org/x/net 0.23.0 and Go 1.22.2 (row 128: CONTINUATION flood).
// A downgrade in go.mod fails here, not in production.
func TestDependencyFloors(t *testing.T) {
	// go.mod lists every module the build selects (Go 1.17+ module graph
	// pruning), at the version selected.
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	floors := map[string]string{
		"github.com/golang-jwt/jwt/v5":  "v5.2.2",
		"github.com/go-jose/go-jose/v4": "v4.0.5",
		"google.golang.org/grpc":        "v1.58.3",
		"golang.org/x/net":              "v0.23.0",
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) < 2 {
			continue
		}
		floor, ok := floors[f[0]]
		if !ok {
			continue
		}
		seen[f[0]] = true
		if versionBelow(f[1], floor) {
			t.Errorf("%s %s is below %s, the release that fixed the catalogue's advisory", f[0], f[1], floor)
		}
	}
	if strings.Contains(string(data), "\nreplace") {
		t.Error("go.mod replaces a module: check the floors by hand")
	}
	for p := range floors {
		if !seen[p] {
			t.Errorf("go.mod does not require %s: the floor cannot be checked", p)
		}
	}
	if v := "v" + strings.TrimPrefix(runtime.Version(), "go"); versionBelow(v, "v1.22.2") {
		t.Errorf("built with %s, below Go 1.22.2 (net/http CONTINUATION flood)", runtime.Version())
	}
}

// versionBelow compares the numeric parts of two vMAJOR.MINOR.PATCH
// versions (a pre-release or build suffix is ignored).
func versionBelow(v, floor string) bool {
	parse := func(s string) [3]int {
		var out [3]int
		s = strings.TrimPrefix(s, "v")
		if i := strings.IndexAny(s, "-+ "); i >= 0 {
			s = s[:i]
		}
		for i, p := range strings.SplitN(s, ".", 3) {
			out[i], _ = strconv.Atoi(p)
		}
		return out
	}
	a, b := parse(v), parse(floor)
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func TestVersionBelow(t *testing.T) {
	for _, tt := range []struct {
		v, floor string
		want     bool
	}{
		{"v5.2.1", "v5.2.2", true}, {"v5.2.2", "v5.2.2", false}, {"v5.3.0", "v5.2.2", false},
		{"v4.0.4", "v4.0.5", true}, {"v1.58.2", "v1.58.3", true}, {"v1.85.0", "v1.58.3", false},
		{"v0.22.9", "v0.23.0", true}, {"v1.26.8", "v1.22.2", false}, {"v1.22.1", "v1.22.2", true},
		{"v0.0.0-20240101-abcdef", "v0.23.0", true},
	} {
		if got := versionBelow(tt.v, tt.floor); got != tt.want {
			t.Errorf("versionBelow(%s, %s) = %v, want %v", tt.v, tt.floor, got, tt.want)
		}
	}
}
