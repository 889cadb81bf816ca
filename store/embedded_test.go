package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// openAt opens the embedded store in dir as `usher serve` (serve) or the
// CLI (!serve) would.
func openAt(t *testing.T, dir string, serve bool, now func() time.Time) (*store.Store, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	return store.Open(ctx, store.Options{DataDir: dir, Serve: serve, Now: now})
}

func mustOpenAt(t *testing.T, dir string, serve bool, now func() time.Time) *store.Store {
	t.Helper()
	s, err := openAt(t, dir, serve, now)
	if err != nil {
		t.Fatalf("open %s (serve %v): %v", dir, serve, err)
	}
	return s
}

func socketPath(t *testing.T, dir string) string {
	t.Helper()
	p, err := store.SocketPath(dir)
	if err != nil {
		t.Fatalf("SocketPath(%s): %v", dir, err)
	}
	return p
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	dir := storetest.ShortTempDir(t)
	c := newClock()
	s := mustOpenAt(t, dir, true, c.Now)
	mustTenant(t, s, "acme")
	mustSpace(t, s, "acme", "prod")
	seat := mustSeat(t, s, authz.Seat{Tenant: "acme", Name: "viewer", Groups: []string{"CN=viewers,OU=groups"},
		Grants: []authz.Grant{{Space: "prod", Permissions: []string{"datasets.read"}}}})
	nk := newKey(t, "acme")
	mustKey(t, s, keyFor(nk, "acme", "ci", t0.Add(time.Hour), "viewer"))
	if err := s.TouchAPIKeys(t.Context(), map[string]time.Time{nk.ID: t0.Add(time.Minute)}); err != nil {
		t.Fatalf("TouchAPIKeys: %v", err)
	}
	key := mustRecord(t, s, nk.ID)
	feed := changesSince(t, s, 0)
	closeStore(t, s)

	s = mustOpenAt(t, dir, true, c.Now)
	t.Cleanup(func() { closeStore(t, s) })
	if _, err := s.Tenant(t.Context(), "acme"); err != nil {
		t.Errorf("tenant after reopening: %v", err)
	}
	gotSeat, err := s.Seat(t.Context(), "acme", "viewer")
	if err != nil {
		t.Fatalf("Seat after reopening: %v", err)
	}
	if diff := cmp.Diff(seat, gotSeat); diff != "" {
		t.Errorf("seat after reopening (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(key, mustRecord(t, s, nk.ID)); diff != "" {
		t.Errorf("api key after reopening (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(feed, changesSince(t, s, 0)); diff != "" {
		t.Errorf("change feed after reopening (-want +got):\n%s", diff)
	}
	mustTenant(t, s, "globex")
	if got, want := lastChange(t, s), int64(len(feed)+1); got != want {
		t.Errorf("LastChange after a write = %d, want %d: the sequence restarted", got, want)
	}
}

func TestServeTwiceFails(t *testing.T) {
	t.Parallel()
	dir := storetest.ShortTempDir(t)
	first := storetest.OpenDir(t, dir, nil)
	_, err := openAt(t, dir, true, nil)
	want := fmt.Errorf("data dir %s is already served by another usher process (socket %s); stop it or use another --data-dir",
		dir, socketPath(t, dir))
	wantErr(t, "a second Open with Serve", err, want)
	if err := first.Ping(t.Context()); err != nil {
		t.Errorf("the first server stopped answering: %v", err)
	}
}

// TestClientUsesRunningServer opens the store as the CLI does while
// `usher serve` runs: through the server's socket, not the files.
func TestClientUsesRunningServer(t *testing.T) {
	t.Parallel()
	dir := storetest.ShortTempDir(t)
	server := storetest.OpenDir(t, dir, nil)
	if got, want := server.Embedded().Socket(), filepath.Join(dir, "mongo.sock"); got != want {
		t.Errorf("server socket %s, want %s", got, want)
	}
	cli := mustOpenAt(t, dir, false, nil)
	if cli.Embedded() != nil {
		closeStore(t, cli)
		t.Fatal("the CLI store started its own server while one was running")
	}
	mustTenant(t, cli, "acme")
	if _, err := server.Tenant(t.Context(), "acme"); err != nil {
		t.Errorf("the server does not see the CLI's write: %v", err)
	}
	mustTenant(t, server, "globex")
	if _, err := cli.Tenant(t.Context(), "globex"); err != nil {
		t.Errorf("the CLI does not see the server's write: %v", err)
	}
	closeStore(t, cli)
	if err := server.Ping(t.Context()); err != nil {
		t.Errorf("closing the CLI store stopped the server: %v", err)
	}
}

// TestClientWithoutServer opens the CLI's store with no server running: it
// runs the files itself, and serves them to a further client meanwhile.
func TestClientWithoutServer(t *testing.T) {
	t.Parallel()
	dir := storetest.ShortTempDir(t)
	own := mustOpenAt(t, dir, false, nil)
	t.Cleanup(func() { closeStore(t, own) })
	if own.Embedded() == nil {
		t.Fatal("no server ran and the store did not start one")
	}
	other := mustOpenAt(t, dir, false, nil)
	t.Cleanup(func() { closeStore(t, other) })
	if other.Embedded() != nil {
		t.Error("a second client started a server on files another one serves")
	}
	mustTenant(t, own, "acme")
	if _, err := other.Tenant(t.Context(), "acme"); err != nil {
		t.Errorf("Tenant through the socket: %v", err)
	}
}

func TestOpenNoDataDir(t *testing.T) {
	t.Parallel()
	_, err := openAt(t, "", true, nil)
	wantErr(t, "Open", err, errors.New("data dir: empty; pass --data-dir or --mongo-uri"))
}

// holdLock takes the data directory's lock as another process would and
// writes pid in it.
func holdLock(t *testing.T, dir, pid string) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "usher.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if _, err := f.WriteString(pid + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("flock: %v", err)
	}
	return f
}

// TestLockBlocksSecondOwner holds the lock without serving the socket, as
// a process that is starting (or hung) does. Open waits for it (10 s) and
// then names the lock file.
func TestLockBlocksSecondOwner(t *testing.T) {
	t.Parallel()
	dir := storetest.ShortTempDir(t)
	lock := holdLock(t, dir, "4242")
	_, err := openAt(t, dir, true, nil)
	want := fmt.Errorf("data dir %s is in use by process 4242 (it holds %s but does not serve %s): stop that process, or use another --data-dir",
		dir, filepath.Join(dir, "usher.lock"), socketPath(t, dir))
	wantErr(t, "Open while the lock is held", err, want)

	_ = lock.Close() // the holder exits: the kernel drops its lock
	s := mustOpenAt(t, dir, true, nil)
	closeStore(t, s)
}

func TestLockWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	dir := storetest.ShortTempDir(t)
	holdLock(t, dir, "4242")
	for _, serve := range []bool{true, false} {
		t.Run(fmt.Sprintf("serve=%v", serve), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			_, err := store.Open(ctx, store.Options{DataDir: dir, Serve: serve})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Open while the lock is held and the context ends: error %v, want %v", err, context.DeadlineExceeded)
			}
		})
	}
}

// TestStaleSocketRemoved starts where a crashed server left its socket file.
func TestStaleSocketRemoved(t *testing.T) {
	t.Parallel()
	dir := storetest.ShortTempDir(t)
	sock := filepath.Join(dir, "mongo.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	_ = l.Close()
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no stale socket to start from: %v", err)
	}
	s := storetest.OpenDir(t, dir, nil)
	mustTenant(t, s, "acme")
	cli := mustOpenAt(t, dir, false, nil)
	defer closeStore(t, cli)
	if _, err := cli.Tenant(t.Context(), "acme"); err != nil {
		t.Errorf("Tenant through the new socket: %v", err)
	}
}

// privateTemp points os.TempDir at a fresh directory for the fallback
// socket directories of this test. Tests that use it cannot be parallel.
func privateTemp(t *testing.T) (base, tmp string) {
	t.Helper()
	base = storetest.ShortTempDir(t)
	tmp = filepath.Join(base, "t")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	return base, tmp
}

func fallbackSocket(tmp, dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(tmp, "usher-"+hex.EncodeToString(sum[:6]), "mongo.sock")
}

func TestSocketPath(t *testing.T) {
	base, tmp := privateTemp(t)
	const sock = "/mongo.sock"
	fits := filepath.Join(base, strings.Repeat("f", 100-len(sock)-len(base)-1))
	over := filepath.Join(base, strings.Repeat("o", 101-len(sock)-len(base)-1))
	long := filepath.Join(base, strings.Repeat("l", 200))
	if len(fits+sock) != 100 || len(over+sock) != 101 {
		t.Fatalf("test paths have lengths %d and %d, want 100 and 101", len(fits+sock), len(over+sock))
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel := filepath.Join(wd, "data")
	tests := []struct {
		name, dir, want string
	}{
		{"short", base, base + sock},
		{"exactly 100 bytes", fits, fits + sock},
		{"101 bytes", over, fallbackSocket(tmp, over)},
		{"long", long, fallbackSocket(tmp, long)},
		{"relative", "data", rel + sock},
		{"unclean", base + "/x/../", base + sock},
	}
	if len(rel+sock) > 100 {
		tests[4].want = fallbackSocket(tmp, rel)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := socketPath(t, tc.dir); got != tc.want {
				t.Errorf("SocketPath(%s) = %s, want %s", tc.dir, got, tc.want)
			}
		})
	}
}

// TestLongDataDir serves a data directory whose socket path would not fit
// a Unix socket address: the server listens in a private directory under
// the temporary directory instead, and clients find it there.
func TestLongDataDir(t *testing.T) {
	base, tmp := privateTemp(t)
	dir := filepath.Join(base, strings.Repeat("d", 120))
	want := fallbackSocket(tmp, dir)
	s := mustOpenAt(t, dir, true, nil)
	defer func() {
		closeStore(t, s)
		if _, err := os.Lstat(want); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s left after Close: %v", want, err)
		}
	}()
	if got := s.Embedded().Socket(); got != want {
		t.Errorf("server socket %s, want %s", got, want)
	}
	c, err := net.Dial("unix", want)
	if err != nil {
		t.Fatalf("dial the fallback socket: %v", err)
	}
	_ = c.Close()
	fi, err := os.Lstat(filepath.Dir(want))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket dir mode %v, want a 0700 directory", fi.Mode())
	}
	if _, err := os.Lstat(filepath.Join(dir, "mongo.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a socket was made at the over-long path: %v", err)
	}

	mustTenant(t, s, "acme")
	cli := mustOpenAt(t, dir, false, nil)
	defer closeStore(t, cli)
	if cli.Embedded() != nil {
		t.Fatal("the CLI store did not find the server on the fallback socket")
	}
	if _, err := cli.Tenant(t.Context(), "acme"); err != nil {
		t.Errorf("Tenant through the fallback socket: %v", err)
	}
}

// TestSocketDirNotPrivate refuses a fallback socket directory that another
// user could have made or could write to, where a planted socket would
// receive the CLI's writes.
func TestSocketDirNotPrivate(t *testing.T) {
	base, tmp := privateTemp(t)
	dir := filepath.Join(base, strings.Repeat("d", 120))
	sockDir := filepath.Dir(fallbackSocket(tmp, dir))
	tests := []struct {
		name    string
		prepare func(t *testing.T)
	}{
		{"mode 0755", func(t *testing.T) { mkdirMode(t, sockDir, 0o755) }},
		{"mode 0770", func(t *testing.T) { mkdirMode(t, sockDir, 0o770) }},
		{"symlink to a private directory", func(t *testing.T) {
			target := filepath.Join(base, "elsewhere")
			mkdirMode(t, target, 0o700)
			if err := os.Symlink(target, sockDir); err != nil {
				t.Fatal(err)
			}
		}},
		{"a file of mode 0700", func(t *testing.T) {
			if err := os.WriteFile(sockDir, nil, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(sockDir, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.prepare(t)
			defer func() { _ = os.RemoveAll(sockDir) }()
			_, err := openAt(t, dir, true, nil)
			want := fmt.Errorf("socket dir %s is not a private directory of this user; remove it", sockDir)
			wantErr(t, "Open", err, want)
		})
	}
	// The refusals released the lock: a private directory now works at once.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := store.Open(ctx, store.Options{DataDir: dir, Serve: true})
	if err != nil {
		t.Fatalf("Open after the refusals: %v", err)
	}
	closeStore(t, s)
}

func mkdirMode(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}
