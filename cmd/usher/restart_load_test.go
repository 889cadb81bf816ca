package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// loadCheck is one request of the restart test's mix.
type loadCheck struct {
	name, path, header string
	allow              bool
	// fresh, if set, makes the header anew for each request (a key usher
	// has never seen, whose answer no cache holds).
	fresh func() string
}

// unknownKey is a well-formed acme key with an id no key has.
func unknownKey() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	id := make([]byte, 16)
	for i := range id {
		id[i] = alphabet[rand.IntN(len(alphabet))]
	}
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(rand.IntN(256))
	}
	return "x-api-key: " + authz.FormatAPIKey("acme", string(id), secret)
}

// tally counts the answers one server gave under load.
type tally struct {
	allowed, denied, unreachable atomic.Int64
	wrong                        atomic.Int64 // a request that must be denied was allowed
	mu                           sync.Mutex
	examples                     []string
}

func (c *tally) wrongly(what string) {
	c.wrong.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.examples) < 5 {
		c.examples = append(c.examples, what)
	}
}

// tryCheck sends a Check with an x-api-key and returns the HTTP status,
// or 0 when the server cannot be reached: a client that lost its
// connection to a restarting server waits for it for up to 2s.
func tryCheck(s *server, path, key string) int {
	f := clientFlags{method: "GET", host: "api.example.test", path: path, headers: []string{"x-api-key: " + key}}
	req, err := f.request()
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := s.client.Check(ctx, req, grpc.WaitForReady(true))
	switch {
	case err != nil:
		return 0
	case resp.GetOkResponse() != nil:
		return 200
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode())
}

// runCLI runs the usher binary as an admin command, as an operator's
// script would: its stdout, and an error when it exits non-zero.
func runCLI(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "USHER_MASTER_KEY=" + storetest.MasterKeyText}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("usher %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// TestTwoServersOneRestartsUnderLoad (docs/security-catalogue.md row 133:
// "one of two servers restarts"; row 119's writes that fail closed and
// retry). Two `usher serve` processes share one store: A owns the
// embedded store, B reaches it through A's socket as a MongoDB client.
// Eight callers send a mix of Checks to both while an operator's script
// creates and revokes keys with the CLI. B restarts, then A (and with it
// the store B reads). Throughout: no request that must be denied is
// allowed by either server (a server that is down answers nothing, which
// Envoy turns into a denial); each restarted server, and B after A's
// restart, allows again within a bound, measured and logged; every write
// the CLI acknowledged is in force on both servers at the end (created
// keys allowed, revoked keys refused), none lost to a restart.
// Catalogue rows 10, 121 (docs/catalogue-map.md).
func TestTwoServersOneRestartsUnderLoad(t *testing.T) {
	bin, err := buildUsher()
	if err != nil {
		t.Fatal(err)
	}
	dir := storetest.ShortTempDir(t)
	a, b := newServer(t), newServer(t)
	procA := startProc(t, bin, a.args(dir)...)
	a.waitReady(t)
	sock, err := store.SocketPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	uri := "mongodb://" + strings.ReplaceAll(url.PathEscape(sock), "/", "%2F") + "/usher?serverSelectionTimeoutMS=1000"
	argsB := []string{"serve", "--mongo-uri", uri, "--grpc-addr", b.grpcAddr, "--http-addr", b.httpAddr,
		"--rules", b.rules, "--log-format", "json", "--changes-interval", "200ms", "--check-timeout", "5s"}
	procB := startProc(t, bin, argsB...)
	b.waitReady(t)

	d := "--data-dir=" + dir
	cli(t, bin, "tenant", "create", "acme", d)
	cli(t, bin, "space", "create", "--tenant", "acme", "proj1", d)
	cli(t, bin, "seat", "create", "--tenant", "acme", "--name", "editors", "--grant", "proj1=datasets.read", d)
	key := strings.TrimSpace(cli(t, bin, "apikey", "create", "--tenant", "acme", "--name", "ci", "--seat", "editors", d))
	revoked := strings.TrimSpace(cli(t, bin, "apikey", "create", "--tenant", "acme", "--name", "gone", "--seat", "editors", d))
	cli(t, bin, "apikey", "revoke", "--tenant", "acme", "gone", d)
	last := key[len(key)-1]
	wrong := key[:len(key)-1] + map[bool]string{true: "2", false: "3"}[last != '2'] // same id, another secret
	const ds = "/spaces/proj1/datasets/x"
	mix := []loadCheck{
		{"live key", ds, "x-api-key: " + key, true, nil},
		{"revoked key", ds, "x-api-key: " + revoked, false, nil},
		{"wrong secret", ds, "x-api-key: " + wrong, false, nil},
		{"no permission", "/admin/x", "x-api-key: " + key, false, nil},
		{"no credential", "/me", "", false, nil},
		{"unknown key, never seen", ds, "", false, unknownKey},
	}
	for _, s := range []*server{a, b} {
		waitUntil(t, func() bool { return s.check(t, ds, key) == 200 && s.check(t, ds, revoked) == 401 }, "both servers to answer")
	}

	// The load: four callers per server, each Check with a deadline.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	tallies := map[*server]*tally{a: {}, b: {}}
	for s, c := range tallies {
		for w := range 4 {
			wg.Go(func() {
				for i := w; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					m := mix[i%len(mix)]
					f := clientFlags{method: "GET", host: "api.example.test", path: m.path}
					if m.header != "" {
						f.headers = []string{m.header}
					}
					if m.fresh != nil {
						f.headers = []string{m.fresh()}
					}
					req, err := f.request()
					if err != nil {
						t.Error(err)
						return
					}
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					resp, err := s.client.Check(ctx, req)
					cancel()
					switch {
					case err != nil:
						c.unreachable.Add(1)
						time.Sleep(10 * time.Millisecond) // a server restarting
					case resp.GetOkResponse() != nil:
						c.allowed.Add(1)
						if !m.allow {
							c.wrongly(m.name)
						}
					default:
						c.denied.Add(1)
					}
				}
			})
		}
	}

	// The operator's script: create a key, revoke every other one. Paused
	// while A (and the store) restarts: with no server running the CLI
	// would open the store's files itself, racing A for them.
	var (
		writes      sync.Mutex // held while A restarts
		mu          sync.Mutex
		created     = map[string]string{} // name → key, acknowledged
		revokedKeys = map[string]string{} // name → key, revocation acknowledged
		failed      atomic.Int64
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			writes.Lock()
			name := fmt.Sprintf("w%d", i)
			out, err := runCLI(t.Context(), bin, "apikey", "create", "--tenant", "acme", "--name", name, "--seat", "editors", d)
			if err == nil {
				k := strings.TrimSpace(out)
				mu.Lock()
				created[name] = k
				mu.Unlock()
				if i%2 == 1 {
					if _, err = runCLI(t.Context(), bin, "apikey", "revoke", "--tenant", "acme", name, d); err == nil {
						mu.Lock()
						revokedKeys[name] = k
						mu.Unlock()
					}
				}
			}
			writes.Unlock()
			if err != nil {
				failed.Add(1)
				t.Logf("a write failed (not acknowledged): %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	// recovered measures how long after the fault ended (the restarted
	// process ready again) s allows the live key, and a key created after
	// the restart, which it must read from the store; the bound is 20s.
	// The restart's own length (stop, down, start) is logged beside it.
	recovered := func(s *server, what string, began, ended time.Time, fresh string) {
		t.Helper()
		deadline := ended.Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if tryCheck(s, ds, key) == 200 && (fresh == "" || tryCheck(s, ds, fresh) == 200) {
				t.Logf("%s: allowing again %v after the restart ended (it took %v)", what,
					time.Since(ended).Round(time.Millisecond), ended.Sub(began).Round(time.Millisecond))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("%s: not allowing again 20s after the restart ended", what)
	}
	time.Sleep(time.Second)

	// B restarts under load.
	began := time.Now()
	stopsCleanly(t, procB, "B after SIGTERM")
	time.Sleep(time.Second)
	procB = startProc(t, bin, argsB...)
	b.waitReady(t)
	recovered(b, "B after its own restart", began, time.Now(), "")
	time.Sleep(time.Second)

	// A restarts under load: the store B reads goes away and comes back.
	writes.Lock()
	began = time.Now()
	stopsCleanly(t, procA, "A after SIGTERM")
	// Down for longer than B's server selection timeout (1s): B's reads
	// fail, not merely wait.
	time.Sleep(3 * time.Second)
	procA = startProc(t, bin, a.args(dir)...)
	a.waitReady(t)
	ended := time.Now()
	writes.Unlock()
	fresh, err := runCLI(t.Context(), bin, "apikey", "create", "--tenant", "acme", "--name", "after-restart", "--seat", "editors", d)
	if err != nil {
		t.Fatal(err)
	}
	recovered(a, "A after its own restart", began, ended, strings.TrimSpace(fresh))
	recovered(b, "B after A's restart", began, ended, strings.TrimSpace(fresh))
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	for name, s := range map[string]*server{"A": a, "B": b} {
		c := tallies[s]
		t.Logf("%s under load: %d allowed, %d denied, %d unreachable (restarting)", name, c.allowed.Load(), c.denied.Load(), c.unreachable.Load())
		if n := c.wrong.Load(); n != 0 {
			t.Errorf("%s allowed %d requests that must be denied, e.g. %v", name, n, c.examples)
		}
		if c.allowed.Load() == 0 || c.denied.Load() == 0 {
			t.Errorf("%s answered no load", name)
		}
	}
	t.Logf("%d keys created, %d revoked, %d writes failed", len(created), len(revokedKeys), failed.Load())
	if len(created) < 4 || len(revokedKeys) < 2 {
		t.Fatalf("only %d creations and %d revocations acknowledged", len(created), len(revokedKeys))
	}
	// Every acknowledged write is in force on both servers (within the
	// change feed's bound).
	for name, k := range created {
		_, isRevoked := revokedKeys[name]
		want := map[bool]int{true: 401, false: 200}[isRevoked]
		for sname, s := range map[string]*server{"A": a, "B": b} {
			waitUntil(t, func() bool { return tryCheck(s, ds, k) == want }, fmt.Sprintf("%s to answer %d for key %s", sname, want, name))
		}
	}
	for _, p := range []*proc{procA, procB} {
		if strings.Contains(p.logs.String(), key) {
			t.Error("a server's logs hold an API key")
		}
	}
	stopsCleanly(t, procB, "B at the end")
	stopsCleanly(t, procA, "A at the end")
}
