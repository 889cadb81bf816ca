package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// Store write failures in the CLI (docs/security-catalogue.md row 119):
// revoke, rotate and seat update while the store is unreachable or fails
// between two writes. The command says what failed and what to do, exits
// 1, leaves nothing a retry cannot finish, and a retry ends as one
// success does.

// TestAdminStoreUnreachable: with MongoDB unreachable each write fails
// within the URI's server selection timeout, exits 1, prints nothing on
// stdout and names the flag to check.
// Catalogue row 119 (docs/catalogue-map.md).
func TestAdminStoreUnreachable(t *testing.T) {
	t.Parallel()
	uri := "mongodb://" + freePort(t) + "/usher?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
	for _, args := range [][]string{
		{"apikey", "revoke", "--tenant", "acme", "ci"},
		{"apikey", "rotate", "--tenant", "acme", "ci"},
		{"seat", "update", "--tenant", "acme", "--name", "editors", "--grant", "proj1=datasets.read"},
	} {
		r := usher(t, nil, append(args, "--mongo-uri", uri)...)
		if r.code != exitFailed || r.stdout != "" ||
			!strings.Contains(r.stderr, "server selection error") || !strings.Contains(r.stderr, "check --mongo-uri (env USHER_MONGO_URI)") {
			t.Errorf("usher %s: exit %d\nstdout %q\nstderr %q\nwant exit 1, nothing on stdout, the cause and the flag to check",
				strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
}

// storeFailWorld is a data dir whose embedded store the test serves (the
// CLI goes through its socket), with a tenant, a space and a seat.
func storeFailWorld(t *testing.T) (string, *store.Store) {
	t.Helper()
	dir := storetest.ShortTempDir(t)
	s := storetest.OpenDir(t, dir, nil)
	admin(t, dir, "tenant", "create", "acme")
	admin(t, dir, "space", "create", "--tenant", "acme", "proj1")
	admin(t, dir, "seat", "create", "--tenant", "acme", "--name", "editors", "--grant", "proj1=datasets.read,datasets.write")
	return dir, s
}

type listedKey struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	SupersededBy string `json:"superseded_by"`
}

func listKeys(t *testing.T, dir string) []listedKey {
	t.Helper()
	var keys []listedKey
	mustJSON(t, admin(t, dir, "apikey", "list", "--tenant", "acme", "-o", "json").stdout, &keys)
	return keys
}

// changed returns the keys of the changes after seq, in order.
func changed(t *testing.T, s *store.Store, seq int64) []string {
	t.Helper()
	chs, err := s.ChangesAfter(t.Context(), seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range chs {
		out = append(out, c.Key)
	}
	return out
}

func lastSeq(t *testing.T, s *store.Store) int64 {
	t.Helper()
	n, err := s.LastChange(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAdminRevokeChangeFails: the revocation is written but its change is
// not. The command says so and exits 1; the key is revoked in the store;
// a retry records the change (servers purge the key at once), and a
// further retry records nothing more.
// Catalogue row 119 (docs/catalogue-map.md).
func TestAdminRevokeChangeFails(t *testing.T) {
	t.Parallel()
	dir, s := storeFailWorld(t)
	admin(t, dir, "apikey", "create", "--tenant", "acme", "--name", "ci", "--seat", "editors")
	id := listKeys(t, dir)[0].ID
	seq := lastSeq(t, s)

	heal := storetest.BreakChangeFeed(t, s)
	r := usher(t, nil, "apikey", "revoke", "--tenant", "acme", "ci", "--data-dir", dir)
	if r.code != exitFailed || !strings.Contains(r.stderr, "revoked api key "+id+", but recording the change failed") ||
		!strings.Contains(r.stderr, "repeat it to record the change") {
		t.Errorf("revoke while the feed fails: exit %d, stderr %q", r.code, r.stderr)
	}
	heal()
	if diff := cmp.Diff([]listedKey{{ID: id, State: "revoked"}}, listKeys(t, dir)); diff != "" {
		t.Errorf("after the failure (-want +got):\n%s", diff)
	}
	if got := changed(t, s, seq); len(got) != 0 {
		t.Fatalf("changes after the failure: %v, want none", got)
	}

	retry := admin(t, dir, "apikey", "revoke", "--tenant", "acme", "ci")
	if !strings.Contains(retry.stdout, "api key "+id+" (ci) was already revoked") {
		t.Errorf("retry stdout %q", retry.stdout)
	}
	if diff := cmp.Diff([]string{id}, changed(t, s, seq)); diff != "" {
		t.Errorf("changes after the retry (-want +got):\n%s", diff)
	}
	admin(t, dir, "apikey", "revoke", "--tenant", "acme", id)
	if diff := cmp.Diff([]string{id}, changed(t, s, seq)); diff != "" {
		t.Errorf("changes after a second retry (-want +got):\n%s", diff)
	}
}

// TestAdminRotateChangeFails: the successor is stored but its change is
// not. The rotation is undone (no key exists whose secret nobody got, the
// old key is as it was) and the command prints no key and exits 1; a
// retry rotates as one success does.
// Catalogue row 119 (docs/catalogue-map.md).
func TestAdminRotateChangeFails(t *testing.T) {
	t.Parallel()
	dir, s := storeFailWorld(t)
	admin(t, dir, "apikey", "create", "--tenant", "acme", "--name", "deploy", "--seat", "editors")
	old := listKeys(t, dir)[0].ID

	heal := storetest.BreakChangeFeed(t, s)
	r := usher(t, nil, "apikey", "rotate", "--tenant", "acme", "deploy", "--grace", "0", "--data-dir", dir)
	if r.code != exitFailed || r.stdout != "" || !strings.Contains(r.stderr, "the rotation was undone, try again") {
		t.Errorf("rotate while the feed fails: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	heal()
	if diff := cmp.Diff([]listedKey{{ID: old, State: "active"}}, listKeys(t, dir)); diff != "" {
		t.Errorf("after the failure (-want +got):\n%s", diff)
	}

	seq := lastSeq(t, s)
	rotated := admin(t, dir, "apikey", "rotate", "--tenant", "acme", "deploy", "--grace", "0")
	next, err := authz.ParseAPIKey(strings.TrimSpace(rotated.stdout))
	if err != nil {
		t.Fatalf("retry stdout %q: %v", rotated.stdout, err)
	}
	want := []listedKey{{ID: next.ID, State: "active"}, {ID: old, State: "revoked", SupersededBy: next.ID}}
	got := listKeys(t, dir)
	if got[0].ID != next.ID && len(got) == 2 {
		got[0], got[1] = got[1], got[0]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the retry (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{next.ID, old}, changed(t, s, seq)); diff != "" {
		t.Errorf("changes after the retry (-want +got):\n%s", diff)
	}
}

// TestAdminSeatUpdateChangeFails: the seat's new version is stored but its
// change is not. The command says so and exits 1; a retry records the
// change and the seat reads as after one update.
// Catalogue row 119 (docs/catalogue-map.md).
func TestAdminSeatUpdateChangeFails(t *testing.T) {
	t.Parallel()
	dir, s := storeFailWorld(t)
	seq := lastSeq(t, s)
	update := []string{"seat", "update", "--tenant", "acme", "--name", "editors", "--grant", "proj1=datasets.read", "--data-dir", dir}

	heal := storetest.BreakChangeFeed(t, s)
	r := usher(t, nil, update...)
	if r.code != exitFailed || r.stdout != "" ||
		!strings.Contains(r.stderr, "wrote seat editors in tenant acme, but recording the change failed") {
		t.Errorf("update while the feed fails: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	heal()
	if got := changed(t, s, seq); len(got) != 0 {
		t.Fatalf("changes after the failure: %v, want none", got)
	}

	admin(t, dir, update[:len(update)-2]...)
	var seats []struct {
		Name   string              `json:"name"`
		Grants map[string][]string `json:"grants"`
	}
	if err := json.Unmarshal([]byte(admin(t, dir, "seat", "list", "--tenant", "acme", "-o", "json").stdout), &seats); err != nil {
		t.Fatal(err)
	}
	if len(seats) != 1 || !cmp.Equal(map[string][]string{"proj1": {"datasets.read"}}, seats[0].Grants) {
		t.Errorf("seats after the retry: %+v", seats)
	}
	if diff := cmp.Diff([]string{"editors"}, changed(t, s, seq)); diff != "" {
		t.Errorf("changes after the retry (-want +got):\n%s", diff)
	}
}
