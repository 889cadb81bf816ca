package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/store/storetest"
)

// TestServeHTTPCheckMode: --http-check-addr opens HTTP check mode next to
// gRPC, deciding with the same store and rules, and --trusted-proxies says
// whose forwarded headers it believes.
func TestServeHTTPCheckMode(t *testing.T) {
	dir := storetest.ShortTempDir(t)
	s := newServer(t)
	checkAddr := freePort(t)
	ctx, cancel := context.WithCancel(t.Context())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		var out bytes.Buffer
		done <- run(ctx, s.args(dir, "--http-check-addr", checkAddr, "--trusted-proxies", "127.0.0.1/32"),
			strings.NewReader(""), &out, &logs, func(string) string { return "" })
	}()
	s.waitReady(t)
	key := seedTour(t, dir)

	ask := func(path string, headers map[string]string) (int, http.Header) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+checkAddr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		if h, ok := headers["Host"]; ok {
			req.Host = h
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	status, h := ask("/ext_authz/spaces/proj1/datasets/x", map[string]string{"Host": "api.example.test", "X-Api-Key": key})
	if status != 200 || h.Get("X-Usher-Tenant") != "acme" || h.Get("X-Usher-Space") != "proj1" {
		t.Errorf("Envoy dialect: %d %v", status, h)
	}
	status, h = ask("/auth", map[string]string{"X-Original-URI": "/admin/x", "X-Original-Method": "GET",
		"X-Forwarded-Host": "api.example.test", "X-Api-Key": key})
	if status != 403 || h.Get("X-Usher-Reason") != "permission_denied" {
		t.Errorf("nginx dialect: %d %v", status, h)
	}
	if got := s.check(t, "/admin/x", key); got != 403 {
		t.Errorf("gRPC: HTTP %d", got)
	}
	metrics := httpGet(t, "http://"+s.httpAddr+"/metrics")
	if want := `usher_check_decisions_total{auth="apikey",reason="permission_denied",status="403"} 2`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %q", want)
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
	if want := `"msg":"usher HTTP check mode listening"`; !strings.Contains(logs.String(), want) {
		t.Errorf("logs lack %s", want)
	}
}
