package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store/storetest"
)

var keyLine = regexp.MustCompile(`^sk_[0-9A-Za-z]+\n$`)

// TestAdminTour runs the admin commands, in its exact shape,
// against the embedded store with no server running: the CLI opens the
// store itself.
func TestAdminTour(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	admin(t, dir, "tenant", "create", "acme")
	admin(t, dir, "space", "create", "--tenant", "acme", "proj1")
	admin(t, dir, "seat", "create", "--tenant", "acme", "--name", "editors", "--grant", "proj1=datasets.read,datasets.write")
	admin(t, dir, "seat", "create", "--tenant", "acme", "--name", "viewers", "--grant", "proj1=datasets.read", "--group", "CN=viewers,OU=groups")
	admin(t, dir, "seat", "update", "--tenant", "acme", "--name", "viewers", "--grant", "proj1=datasets.read,datasets.write")

	if got := admin(t, dir, "tenant", "list").stdout; !regexp.MustCompile(`(?m)^acme\s+\d{4}-`).MatchString(got) {
		t.Errorf("tenant list:\n%s", got)
	}
	if got := admin(t, dir, "space", "list", "--tenant", "acme").stdout; !regexp.MustCompile(`(?m)^proj1\s+\d{4}-`).MatchString(got) {
		t.Errorf("space list:\n%s", got)
	}
	wantSeats := "NAME     GRANTS                              GROUPS\n" +
		"editors  proj1=datasets.read,datasets.write  -\n" +
		"viewers  proj1=datasets.read,datasets.write  \"CN=viewers,OU=groups\"\n"
	if diff := cmp.Diff(wantSeats, admin(t, dir, "seat", "list", "--tenant", "acme").stdout); diff != "" {
		t.Errorf("seat list (-want +got):\n%s", diff)
	}

	created := admin(t, dir, "apikey", "create", "--tenant", "acme", "--name", "ci", "--seat", "editors", "--expires", "720h")
	if !keyLine.MatchString(created.stdout) {
		t.Fatalf("apikey create stdout %q: want the key alone on one line", created.stdout)
	}
	key := strings.TrimSpace(created.stdout)
	parsed, err := authz.ParseAPIKey(key)
	if err != nil || parsed.Tenant != "acme" {
		t.Fatalf("created key does not parse as acme's: %v", err)
	}
	if !strings.Contains(created.stderr, "created api key "+parsed.ID) || strings.Contains(created.stderr, key) {
		t.Errorf("apikey create stderr %q: want the details without the key", created.stderr)
	}

	list := admin(t, dir, "apikey", "list", "--tenant", "acme")
	if strings.Contains(list.stdout, key) || !strings.Contains(list.stdout, parsed.ID) || !strings.Contains(list.stdout, "active") {
		t.Errorf("apikey list:\n%s", list.stdout)
	}
	listJSON := admin(t, dir, "apikey", "list", "--tenant", "acme", "--output", "json").stdout
	if strings.Contains(listJSON, key) || strings.Contains(listJSON, authz.HashAPIKey(key).String()) || strings.Contains(listJSON, `"key"`) {
		t.Errorf("apikey list --output json holds a secret or digest:\n%s", listJSON)
	}

	rotated := admin(t, dir, "apikey", "rotate", "--tenant", "acme", "ci", "--grace", "1h")
	if !keyLine.MatchString(rotated.stdout) || strings.TrimSpace(rotated.stdout) == key {
		t.Fatalf("apikey rotate stdout %q: want a new key alone on one line", rotated.stdout)
	}
	if !strings.Contains(rotated.stderr, "old key is valid until") {
		t.Errorf("apikey rotate stderr %q", rotated.stderr)
	}
	next, _ := authz.ParseAPIKey(strings.TrimSpace(rotated.stdout))

	var keys []struct {
		ID           string `json:"id"`
		State        string `json:"state"`
		SupersededBy string `json:"superseded_by"`
	}
	if err := json.Unmarshal([]byte(admin(t, dir, "apikey", "list", "--tenant", "acme", "-o", "json").stdout), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys after rotation: %+v", keys)
	}

	// Revoking by name ends the new key and the old one in its grace.
	revoked := admin(t, dir, "apikey", "revoke", "--tenant", "acme", "ci")
	for _, id := range []string{parsed.ID, next.ID} {
		if !strings.Contains(revoked.stdout, "revoked api key "+id) {
			t.Errorf("revoke by name did not revoke %s:\n%s", id, revoked.stdout)
		}
	}
	again := admin(t, dir, "apikey", "revoke", "--tenant", "acme", parsed.ID)
	if !strings.Contains(again.stdout, "was already revoked") {
		t.Errorf("revoking twice: %q", again.stdout)
	}
}

func TestAdminJSONOutput(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	var tenant struct{ Name string }
	mustJSON(t, admin(t, dir, "tenant", "create", "acme", "-o", "json").stdout, &tenant)
	admin(t, dir, "space", "create", "--tenant", "acme", "proj1")
	var seat struct {
		Name   string
		Grants map[string][]string
		Groups []string
	}
	mustJSON(t, admin(t, dir, "seat", "create", "--tenant", "acme", "--name", "s", "--grant", "proj1=b.read,a.read", "--grant", "proj1=a.read", "--grant", "*=audit", "-o", "json").stdout, &seat)
	want := map[string][]string{"proj1": {"a.read", "b.read"}, "*": {"audit"}}
	if tenant.Name != "acme" || seat.Name != "s" || !cmp.Equal(want, seat.Grants) || seat.Groups == nil {
		t.Errorf("tenant %+v, seat %+v", tenant, seat)
	}
	var key struct {
		Key   string
		ID    string
		State string
		Seats []string
	}
	mustJSON(t, admin(t, dir, "apikey", "create", "--tenant", "acme", "--name", "k", "--seat", "s", "-o", "json").stdout, &key)
	if !keyLine.MatchString(key.Key+"\n") || key.State != "active" || !cmp.Equal([]string{"s"}, key.Seats) {
		t.Errorf("apikey create -o json: %+v", key)
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
}

// TestAdminErrors: a command that runs and fails says what to fix and
// exits 1.
func TestAdminErrors(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	admin(t, dir, "tenant", "create", "acme")
	admin(t, dir, "space", "create", "--tenant", "acme", "proj1")
	admin(t, dir, "seat", "create", "--tenant", "acme", "--name", "editors", "--grant", "proj1=datasets.read")
	admin(t, dir, "apikey", "create", "--tenant", "acme", "--name", "ci", "--seat", "editors")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"duplicate tenant", []string{"tenant", "create", "acme"}, "tenant acme: already exists"},
		{"unknown tenant", []string{"space", "create", "--tenant", "nope", "proj1"}, "tenant nope: not found"},
		{"list in unknown tenant", []string{"seat", "list", "--tenant", "nope"}, "tenant nope: not found"},
		{"grant in unknown space", []string{"seat", "create", "--tenant", "acme", "--name", "x", "--grant", "proj9=a"}, "space proj9 in tenant acme: not found (create it first)"},
		{"duplicate seat", []string{"seat", "create", "--tenant", "acme", "--name", "editors", "--grant", "proj1=a"}, "already exists"},
		{"update unknown seat", []string{"seat", "update", "--tenant", "acme", "--name", "nope", "--grant", "proj1=a"}, "seat nope in tenant acme: not found"},
		{"key with unknown seat", []string{"apikey", "create", "--tenant", "acme", "--name", "k2", "--seat", "nope"}, "seat nope in tenant acme: not found (create the seat first)"},
		{"second active key of a name", []string{"apikey", "create", "--tenant", "acme", "--name", "ci", "--seat", "editors"}, "rotate or revoke it, or choose another name"},
		{"revoke unknown", []string{"apikey", "revoke", "--tenant", "acme", "nope"}, `api key "nope" in tenant acme (neither an id nor a name): not found`},
		{"revoke in another tenant", []string{"apikey", "revoke", "--tenant", "globex", "ci"}, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := usher(t, nil, append(tt.args, "--data-dir", dir)...)
			if r.code != exitFailed || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
}
