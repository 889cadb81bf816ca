package envoy_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/usher-dev/usher/envoy"
)

// lockedBuffer is a log sink the gRPC handler and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCrossTenantDenialLogged (docs/security-catalogue.md row 4): a
// globex key asking for acme's space (ops, a space only acme has) or for
// a space both tenants name but where globex's seat grants less is denied
// 403 over ext_authz, and each denial is one "denied" log line that names
// the caller's key id, its tenant and the space, and holds no secret.
// Catalogue row 10 (docs/catalogue-map.md).
func TestCrossTenantDenialLogged(t *testing.T) {
	w := newWorld(t, nil)
	var logs lockedBuffer
	// A long deadline: this test asserts decisions, and a cold Check under
	// -race on a busy machine can take longer than the default.
	client := serveGRPC(t, &envoy.Server{Decider: w.a, Realm: "usher", Timeout: 10 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	globex := w.keys["globex/ci"]
	const api = "api.example.test"
	for _, tt := range []struct {
		method, path, space string
	}{
		{"GET", "/admin/users", "ops"},                // acme's only
		{"POST", "/spaces/proj1/datasets/7", "proj1"}, // globex's editors may only read proj1
		{"GET", "/spaces/proj9/datasets/7", "proj9"},  // nobody's
	} {
		before := strings.Count(logs.String(), "\n")
		resp, err := client.Check(t.Context(), envoyRequest(tt.method, api, tt.path, "x-api-key", globex))
		if err != nil {
			t.Fatal(err)
		}
		if got := answerOf(resp); got.Code != codes.PermissionDenied || got.HTTP != 403 {
			t.Errorf("%s %s with globex's key: %+v; want 403", tt.method, tt.path, got)
		}
		lines := strings.SplitAfter(logs.String(), "\n")[before:]
		if n := len(lines); n > 0 && lines[n-1] == "" {
			lines = lines[:n-1]
		}
		if len(lines) != 1 {
			t.Fatalf("%s %s: %d log lines, want one denial:\n%s", tt.method, tt.path, len(lines), strings.Join(lines, "\n"))
		}
		var line struct {
			Msg      string
			Path     string
			Decision struct {
				Status                         int
				Reason, Subject, Tenant, Space string
			}
		}
		if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
			t.Fatal(err)
		}
		d := line.Decision
		if line.Msg != "denied" || line.Path != tt.path || d.Status != 403 || d.Reason != "permission_denied" ||
			d.Subject != "apikey:ciglobexkeyaaaaa" || d.Tenant != "globex" || d.Space != tt.space {
			t.Errorf("%s %s: log line %s; want a 403 permission_denied denial of globex's key in %s", tt.method, tt.path, lines[0], tt.space)
		}
		if strings.Contains(lines[0], globex) || strings.Contains(lines[0], globex[3:20]) {
			t.Errorf("the denial log line holds the key: %s", lines[0])
		}
	}
}
