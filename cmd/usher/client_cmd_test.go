package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/usher-dev/usher/store/storetest"
)

// TestClientCommands: add a public client, list it beside usher-cli,
// refuse a confidential one and the built-in id, remove it.
func TestClientCommands(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	admin(t, dir, "tenant", "create", "acme")
	if got := admin(t, dir, "client", "add", "--tenant", "acme", "--name", "Deploy Tool", "--public").stdout; got != "added public client acme-deploy-tool (Deploy Tool) to tenant acme; it has no secret\n" {
		t.Errorf("add: %q", got)
	}
	list := admin(t, dir, "client", "list", "--tenant", "acme").stdout
	for _, re := range []string{`(?m)^usher-cli\s+usher CLI\s+-\s+public`, `(?m)^acme-deploy-tool\s+Deploy Tool\s+acme\s+public`} {
		if !regexp.MustCompile(re).MatchString(list) {
			t.Errorf("list lacks %s:\n%s", re, list)
		}
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"client", "add", "--tenant", "acme", "--name", "Conf"}, "--public is required"},
		{[]string{"client", "add", "--tenant", "acme", "--name", "x", "--public", "--id", "usher-cli"}, "already exists"},
		{[]string{"client", "add", "--tenant", "acme", "--name", "Deploy Tool", "--public"}, "already exists"},
		{[]string{"client", "add", "--tenant", "acme", "--name", "x", "--public", "--id", "Bad Id"}, "choose one with --id"},
		{[]string{"client", "add", "--tenant", "nope", "--name", "x", "--public"}, "nope"},
		{[]string{"client", "remove", "--tenant", "acme", "usher-cli"}, "built in"},
	} {
		r := usher(t, nil, append(bad.args, "--data-dir", dir)...)
		if r.code == exitOK || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("usher %v: exit %d %q, want an error with %q", bad.args, r.code, r.stderr, bad.want)
		}
	}
	if got := admin(t, dir, "client", "remove", "--tenant", "acme", "acme-deploy-tool").stdout; !strings.Contains(got, "removed client acme-deploy-tool") {
		t.Errorf("remove: %q", got)
	}
	if list := admin(t, dir, "client", "list", "--tenant", "acme").stdout; strings.Contains(list, "acme-deploy-tool") {
		t.Errorf("removed client still listed:\n%s", list)
	}
}
