package envoy_test

// Real nginx and Caddy (Debian's packages) in front of a Go upstream that
// records what arrives, each started by the test on loopback from the
// configuration shipped under examples/, with only its addresses changed.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// recorder is the app behind the proxy: it answers 200 "app" and keeps
// the headers of every request that reaches it.
type recorder struct {
	mu   sync.Mutex
	seen []http.Header
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Clone()
	h.Set("X-Test-Host", r.Host)
	h.Set("X-Test-Target", r.RequestURI)
	rec.mu.Lock()
	rec.seen = append(rec.seen, h)
	rec.mu.Unlock()
	_, _ = w.Write([]byte("app"))
}

// take returns what arrived since the last take.
func (rec *recorder) take() []http.Header {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	seen := rec.seen
	rec.seen = nil
	return seen
}

// freePort returns a loopback address nobody listens on (for a process
// that binds it itself).
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// lookPath finds a proxy's binary, or fails the test with how to install
// it: these tests never skip.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (%v): apt-get install -y --no-install-recommends %s (.ci/run does)", name, err, name)
	}
	return path
}

// shippedConfig reads an example and replaces its addresses (each must
// occur) with the test's.
func shippedConfig(t *testing.T, name string, addrs map[string]string) []byte {
	t.Helper()
	data := readExample(t, name)
	for from, to := range addrs {
		if !bytes.Contains(data, []byte(from)) {
			t.Fatalf("examples/%s: no %q to replace", name, from)
		}
		data = bytes.ReplaceAll(data, []byte(from), []byte(to))
	}
	return data
}

// startProxy runs a proxy process until the test ends, and waits until
// addr accepts connections.
func startProxy(t testing.TB, dir, addr string, env []string, path string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			err = <-done
		}
		if err != nil {
			t.Logf("%s exited: %v", filepath.Base(path), err)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(path), out.String())
			for _, log := range []string{"error.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, log)); err == nil {
					t.Logf("%s:\n%s", log, b)
				}
			}
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("%s exited: %v\n%s", filepath.Base(path), err, out.String())
		default:
		}
		var d net.Dialer
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		c, err := d.DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listened on %s: %v\n%s", filepath.Base(path), addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startNginx runs examples/nginx.conf in a private prefix in front of
// usher (HTTP check mode at usherAddr) and app, and returns its address.
func startNginx(t *testing.T, usherAddr, appAddr string) string {
	t.Helper()
	bin := lookPath(t, "nginx")
	addr := freePort(t)
	dir := t.TempDir()
	conf := shippedConfig(t, "nginx.conf", map[string]string{
		"127.0.0.1:9002": usherAddr, "127.0.0.1:8000": appAddr, "127.0.0.1:8080": addr,
	})
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), conf, 0o600); err != nil {
		t.Fatal(err)
	}
	startProxy(t, dir, addr, os.Environ(), bin, "-p", dir+"/", "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	return addr
}

// startCaddy runs examples/Caddyfile with HOME and the XDG directories in
// a scratch directory, and returns its address.
func startCaddy(t *testing.T, usherAddr, appAddr string) string {
	t.Helper()
	bin := lookPath(t, "caddy")
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := shippedConfig(t, "Caddyfile", map[string]string{
		"127.0.0.1:9002": usherAddr, "127.0.0.1:8000": appAddr, "http://:8081": "http://:" + port,
	})
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), conf, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + dir, "XDG_CONFIG_HOME=" + dir + "/config", "XDG_DATA_HOME=" + dir + "/data", "PATH=" + os.Getenv("PATH")}
	startProxy(t, dir, addr, env, bin, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
	return addr
}

// headerDump renders headers for a failure message.
func headerDump(h http.Header) string {
	var b strings.Builder
	for name, v := range h {
		fmt.Fprintf(&b, "%s: %s; ", name, strings.Join(v, ","))
	}
	return b.String()
}
