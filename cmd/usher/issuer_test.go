package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// TestIssuerAddOptions: `issuer add` stores the token type, allowed
// clients and group-name opt-in, `issuer list` shows them, and an audience
// that looks like a client id is warned about unless a token type or other
// clients settle it.
func TestIssuerAddOptions(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	admin(t, dir, "tenant", "create", "acme")
	admin(t, dir, "tenant", "create", "globex")
	admin(t, dir, "tenant", "create", "initech")
	p := testidp.Start(t, testidp.NewRSAKey(t, "k1"))
	const app = "6e74172b-be56-4843-9ff4-e66a39bb12e3"

	add := admin(t, dir, "issuer", "add", "--tenant", "acme", "--issuer", p.URL, "--audience", app,
		"--token-type", "at+jwt", "--client-id", "cli-1", "--client-id", "cli-2", "--match-group-names", "-o", "json")
	var got store.Issuer
	if err := json.Unmarshal([]byte(add.stdout), &got); err != nil {
		t.Fatalf("issuer add -o json: %v\n%s", err, add.stdout)
	}
	want := store.Issuer{Tenant: "acme", Issuer: p.URL, Audience: app, GroupsClaim: "groups", TokenType: "at+jwt",
		ClientIDs: []string{"cli-1", "cli-2"}, MatchGroupNames: true, CreatedAt: got.CreatedAt}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("added (-want +got):\n%s", diff)
	}
	if strings.Contains(add.stderr, "client id") {
		t.Errorf("warned with a token type required: %s", add.stderr)
	}
	list := admin(t, dir, "issuer", "list", "--tenant", "acme").stdout
	for _, col := range []string{"TOKEN TYPE", "CLIENTS", "GROUP NAMES", "at+jwt", "cli-1,cli-2", "match seats"} {
		if !strings.Contains(list, col) {
			t.Errorf("issuer list lacks %q:\n%s", col, list)
		}
	}

	plain := admin(t, dir, "issuer", "add", "--tenant", "globex", "--issuer", p.URL, "--audience", app)
	if !strings.Contains(plain.stderr, "warning: audience "+app+" looks like a client id") {
		t.Errorf("no warning for a client id audience: %s", plain.stderr)
	}
	if list := admin(t, dir, "issuer", "list", "--tenant", "globex").stdout; !strings.Contains(list, "aliases only") {
		t.Errorf("default group matching not shown:\n%s", list)
	}
	if r := usher(t, nil, "issuer", "add", "--tenant", "initech", "--data-dir", dir, "--issuer", p.URL, "--audience", "api://usher",
		"--client-id", "a b"); r.code != exitFailed || !strings.Contains(r.stderr, "client id") {
		t.Errorf("a client id with a space: exit %d, %s", r.code, r.stderr)
	}
}
