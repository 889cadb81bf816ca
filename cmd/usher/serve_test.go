package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/usher-dev/usher/store/storetest"
)

const sampleRules = "../../envoy/examples/rules.yaml"

// server is a running `usher serve`, in this process or another.
type server struct {
	grpcAddr, httpAddr string
	rules              string
	client             authv3.AuthorizationClient
	conn               *grpc.ClientConn
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{grpcAddr: freePort(t), httpAddr: freePort(t), rules: sampleRules}
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s.conn, s.client = conn, authv3.NewAuthorizationClient(conn)
	return s
}

// args are the serve arguments of s. The check timeout is far above the
// default 150ms: a first Check on cold caches under -race on a busy
// machine can take longer, and these tests assert decisions, not speed.
func (s *server) args(dir string, extra ...string) []string {
	return append([]string{"serve", "--data-dir", dir, "--grpc-addr", s.grpcAddr, "--http-addr", s.httpAddr,
		"--rules", s.rules, "--log-format", "json", "--changes-interval", "200ms", "--check-timeout", "5s"}, extra...)
}

// waitReady polls /readyz until it answers 200.
func (s *server) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + s.httpAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("usher serve not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// check sends a Check with an x-api-key and returns the HTTP status.
func (s *server) check(t *testing.T, path, key string) int {
	t.Helper()
	if key == "" {
		status, _ := s.send(t, path)
		return status
	}
	status, _ := s.send(t, path, "x-api-key: "+key)
	return status
}

// checkAuth sends a Check with an Authorization header and returns the
// HTTP status and reason.
func (s *server) checkAuth(t *testing.T, path, authorization string) (int, string) {
	t.Helper()
	return s.send(t, path, "authorization: "+authorization)
}

// send sends a Check with headers and returns the HTTP status and reason.
func (s *server) send(t *testing.T, path string, headers ...string) (int, string) {
	t.Helper()
	f := clientFlags{method: "GET", host: "api.example.test", path: path, headers: headers}
	req, err := f.request()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.Check(t.Context(), req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	reason := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
	if resp.GetOkResponse() != nil {
		return 200, reason
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode()), reason
}

// seedTour creates what the README tour creates and returns the key.
func seedTour(t *testing.T, dir string) string {
	t.Helper()
	admin(t, dir, "tenant", "create", "acme")
	admin(t, dir, "space", "create", "--tenant", "acme", "proj1")
	admin(t, dir, "seat", "create", "--tenant", "acme", "--name", "editors", "--grant", "proj1=datasets.read,datasets.write")
	return strings.TrimSpace(admin(t, dir, "apikey", "create", "--tenant", "acme", "--name", "ci", "--seat", "editors").stdout)
}

// TestServeInProcess runs `usher serve` in this process, drives it with the
// admin CLI (which reaches the running server's store through its socket)
// and gRPC, shuts it down, and restarts it on the same data.
// Catalogue rows 10, 131 (docs/catalogue-map.md).
func TestServeInProcess(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	s := newServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	var logs bytes.Buffer
	done := make(chan int, 1)
	go func() {
		var out bytes.Buffer
		done <- run(ctx, s.args(dir), strings.NewReader(""), &out, &logs, func(string) string { return "" })
	}()
	s.waitReady(t)

	health, err := healthpb.NewHealthClient(s.conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: authv3.Authorization_ServiceDesc.ServiceName})
	if err != nil || health.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health: %v %v", health, err)
	}
	key := seedTour(t, dir)
	if got := s.check(t, "/spaces/proj1/datasets/x", key); got != 200 {
		t.Errorf("allowed request: HTTP %d", got)
	}
	if got := s.check(t, "/admin/x", key); got != 403 {
		t.Errorf("forbidden request: HTTP %d", got)
	}

	// usher check answers as Envoy would, exiting 1 on a denial.
	ok := usher(t, nil, "check", "--addr", s.grpcAddr, "--host", "api.example.test", "--path", "/spaces/proj1/datasets/x",
		"-H", "x-api-key: "+key, "-H", "x_usher_subject: root")
	if ok.code != 0 || !strings.Contains(ok.stdout, "allowed (allowed)") || !strings.Contains(ok.stdout, "remove x_usher_subject") {
		t.Errorf("usher check, allowed: exit %d\n%s", ok.code, ok.stdout)
	}
	no := usher(t, nil, "check", "--addr", s.grpcAddr, "--path", "/me")
	if no.code != exitFailed || !strings.Contains(no.stdout, `denied 401 (credential_missing)`) || !strings.Contains(no.stdout, `body: {"error":"credential_missing"}`) {
		t.Errorf("usher check, denied: exit %d\n%s", no.code, no.stdout)
	}
	// usher bench sends exactly --requests Checks and counts the answers.
	b := usher(t, nil, "bench", "--addr", s.grpcAddr, "--host", "api.example.test", "--path", "/spaces/proj1/datasets/x",
		"-H", "x-api-key: "+key, "--requests", "300", "--concurrency", "4", "--duration", "20s", "-o", "json")
	var res benchResult
	if err := json.Unmarshal([]byte(b.stdout), &res); err != nil || b.code != 0 {
		t.Fatalf("usher bench: exit %d, %v\n%s%s", b.code, err, b.stdout, b.stderr)
	}
	if res.Requests != 300 || res.Errors != 0 || res.ByStatus["200"] != 300 || res.P50Micros <= 0 || res.P99Micros < res.P50Micros {
		t.Errorf("usher bench: %+v", res)
	}

	// A second server on the same data refuses to start, saying why.
	second := newServer(t)
	r := usher(t, nil, second.args(dir)...)
	if r.code != exitFailed || !strings.Contains(r.stderr, "already served by another usher process") {
		t.Errorf("second serve: exit %d, %s", r.code, r.stderr)
	}

	metrics := httpGet(t, "http://"+s.httpAddr+"/metrics")
	for _, want := range []string{
		`usher_check_decisions_total{auth="apikey",reason="allowed",status="200"} 302`,
		`usher_check_decisions_total{auth="apikey",reason="permission_denied",status="403"} 1`,
		`usher_cache_hits_total{cache="apikey"}`,
		"usher_ready 1",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	for _, want := range []string{`"msg":"usher ready"`, `"msg":"stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if strings.Contains(logs.String(), key) {
		t.Error("the logs hold an API key")
	}

	// Restarted on the same data, it finds every record.
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	done2 := make(chan int, 1)
	go func() { done2 <- usherCtx(ctx2, nil, s.args(dir)...).code }()
	s.waitReady(t)
	if got := s.check(t, "/spaces/proj1/datasets/x", key); got != 200 {
		t.Errorf("after restart: HTTP %d", got)
	}
	cancel2()
	if code := <-done2; code != 0 {
		t.Errorf("second run exited %d", code)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// buildUsher builds the usher binary once per test binary run.
var buildUsher = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "usher-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "usher")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

// proc is `usher serve` in a process of its own.
type proc struct {
	cmd  *exec.Cmd
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "USHER_MASTER_KEY=" + storetest.MasterKeyText}
	p := &proc{cmd: cmd, logs: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return p
}

// cli runs the usher binary as an admin command and returns its stdout.
func cli(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "USHER_MASTER_KEY=" + storetest.MasterKeyText}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("usher %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// TestTwoProcesses is the operator's view: `usher serve` in one process,
// the admin CLI in others, both the real binary. A key revoked with the CLI
// is denied by the running server within 2s; SIGHUP reloads the rules;
// SIGTERM stops the server cleanly.
// Catalogue rows 8, 10, 118, 121 (docs/catalogue-map.md).
func TestTwoProcesses(t *testing.T) {
	bin, err := buildUsher()
	if err != nil {
		t.Fatal(err)
	}
	dir := storetest.ShortTempDir(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	data, err := os.ReadFile(sampleRules)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rules, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := newServer(t)
	s.rules = rules
	p := startProc(t, bin, s.args(dir)...)
	s.waitReady(t)

	d := "--data-dir=" + dir
	cli(t, bin, "tenant", "create", "acme", d)
	cli(t, bin, "space", "create", "--tenant", "acme", "proj1", d)
	cli(t, bin, "seat", "create", "--tenant", "acme", "--name", "editors", "--grant", "proj1=datasets.read", d)
	key := strings.TrimSpace(cli(t, bin, "apikey", "create", "--tenant", "acme", "--name", "ci", "--seat", "editors", d))
	if got := s.check(t, "/spaces/proj1/datasets/x", key); got != 200 {
		t.Fatalf("before revocation: HTTP %d\n%s", got, p.logs.String())
	}

	cli(t, bin, "key", "rotate", "--tenant", "acme", d)
	token := strings.TrimSpace(cli(t, bin, "token", "mint", "--tenant", "acme", "--sub", "alice", "--seat", "proj1=editors", d))
	if got, reason := s.checkAuth(t, "/spaces/proj1/datasets/x", "Bearer "+token); got != 200 {
		t.Fatalf("minted token: HTTP %d %s\n%s", got, reason, p.logs.String())
	}

	cli(t, bin, "apikey", "revoke", "--tenant", "acme", "ci", d)
	withinASecond(t, "the revoked API key", func() bool {
		status, reason := s.send(t, "/spaces/proj1/datasets/x", "x-api-key: "+key)
		return status == 401 && reason == "apikey_revoked"
	})
	kid := strings.Fields(cli(t, bin, "key", "list", "--tenant", "acme", d))[5] // the first row's KID
	cli(t, bin, "key", "revoke", "--tenant", "acme", kid, d)
	withinASecond(t, "the token of a revoked signing key", func() bool {
		status, reason := s.checkAuth(t, "/spaces/proj1/datasets/x", "Bearer "+token)
		return status == 401 && reason == "token_revoked"
	})

	// SIGHUP reloads the rules: make /me public.
	if got := s.check(t, "/me", ""); got != 401 {
		t.Fatalf("/me before reload: HTTP %d", got)
	}
	reordered := strings.Replace(string(data), "  - name: me\n    path: /me\n    authenticated: true\n", "  - name: me\n    path: /me\n    public: true\n", 1)
	if err := os.WriteFile(rules, []byte(reordered), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return s.check(t, "/me", "") == 200 }, "the rules to reload")

	stopsCleanly(t, p, "serve after SIGTERM")
	logs := p.logs.String()
	for _, want := range []string{`"msg":"SIGHUP: rules reloaded"`, `"msg":"shutting down: draining in-flight Checks"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if strings.Contains(logs, key) {
		t.Error("the logs hold an API key")
	}
	assertJSONLines(t, logs)
}

// waitHealthy waits until the server's /healthz answers 200.
func (s *server) waitHealthy(t *testing.T) {
	t.Helper()
	waitUntil(t, func() bool {
		resp, err := http.Get("http://" + s.httpAddr + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200
	}, "/healthz")
}

// stopsCleanly sends SIGTERM to the serving process and requires it to exit
// 0 within 30 s.
func stopsCleanly(t *testing.T, p *proc, what string) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- p.cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("%s: %v (want exit 0)\n%s", what, err, p.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: did not stop on SIGTERM", what)
	}
}

// withinASecond polls cond until it holds, failing the test if it does not
// within the README's bound: "every running server applies the change
// within a second" of the CLI returning.
func withinASecond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > time.Second {
			t.Fatalf("%s: the revocation had not reached the server with its reason 1s after the CLI returned", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s: the revocation reached the server in %v", what, time.Since(start).Round(time.Millisecond))
}

// assertJSONLines checks every log line is JSON: nothing else writes to
// stderr behind the logger's back.
func assertJSONLines(t *testing.T, logs string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		if line := sc.Text(); !strings.HasPrefix(line, "{") {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestServeWaitsForMongoDB: with a MongoDB that does not answer, usher
// serve listens, says it is alive but not ready, denies every Check with
// 503 store_unavailable, and stops cleanly when told to.
// Catalogue row 72 (docs/catalogue-map.md).
func TestServeWaitsForMongoDB(t *testing.T) {
	s := newServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- usherCtx(ctx, nil, "serve", "--mongo-uri", "mongodb://"+freePort(t)+"/usher",
			"--grpc-addr", s.grpcAddr, "--http-addr", s.httpAddr, "--log-format", "json").code
	}()
	s.waitHealthy(t)
	resp, err := http.Get("http://" + s.httpAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the store answered: %d, want 503", resp.StatusCode)
	}
	if status, reason := s.send(t, "/public/x"); status != 503 || reason != "store_unavailable" {
		t.Errorf("Check before the store answered: %d %s, want 503 store_unavailable", status, reason)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d when stopped while waiting for MongoDB", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestServeSIGHUPWhileWaitingForMongoDB: a SIGHUP that arrives while the
// real binary waits for an unreachable MongoDB does not kill it; SIGTERM
// then stops it cleanly.
func TestServeSIGHUPWhileWaitingForMongoDB(t *testing.T) {
	bin, err := buildUsher()
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t)
	p := startProc(t, bin, "serve", "--mongo-uri", "mongodb://"+freePort(t)+"/usher",
		"--grpc-addr", s.grpcAddr, "--http-addr", s.httpAddr, "--log-format", "json")
	s.waitHealthy(t)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	stopsCleanly(t, p, "serve after SIGHUP and SIGTERM")
	if logs := p.logs.String(); !strings.Contains(logs, `"msg":"stopped before start-up finished"`) {
		t.Errorf("logs lack the stop while waiting for MongoDB:\n%s", logs)
	}
}
