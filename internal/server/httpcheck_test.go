package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/config"
)

// startCheckListeners is startListeners with HTTP check mode on a
// loopback port.
func startCheckListeners(t *testing.T, trusted string) *server {
	t.Helper()
	cfg := config.Default()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.HTTPCheckAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.TrustedProxies = trusted
	cfg.ShutdownTimeout = time.Second
	s := newServer(cfg, Deps{Rules: authz.DenyAllRules(), Logger: testLogger(t)})
	if err := s.listen(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.closeListeners(context.Background()) })
	return s
}

// TestHTTPCheckListener: http_check_addr opens HTTP check mode with the
// HTTP listener's limits (docs/security-catalogue.md row 129), deciding
// as gRPC Check does (store_unavailable until the store is reached), and
// trusting the configured proxies only; without it nothing more listens.
// Catalogue rows 95, 96 (forwarded headers only from a configured proxy).
func TestHTTPCheckListener(t *testing.T) {
	if s := startListeners(t, defaultHTTPLimits); s.httpCheck != nil || s.checkAddr != nil {
		t.Fatal("HTTP check mode listens although http_check_addr is empty")
	}
	s := startCheckListeners(t, config.DefaultTrustedProxies)
	h, c := s.http, s.httpCheck
	if c.ReadHeaderTimeout != h.ReadHeaderTimeout || c.ReadTimeout != h.ReadTimeout || c.WriteTimeout != h.WriteTimeout ||
		c.IdleTimeout != h.IdleTimeout || c.MaxHeaderBytes != h.MaxHeaderBytes || c.ReadHeaderTimeout <= 0 {
		t.Errorf("check server limits %+v differ from the HTTP server's %+v", c, h)
	}
	for _, req := range []string{
		"GET /ext_authz/me HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: usher\r\nX-Original-URI: /me\r\nX-Original-Method: GET\r\nX-Forwarded-Host: api.example.test\r\n\r\n",
	} {
		resp := checkHTTP(t, s.checkAddr, req)
		if resp.StatusCode != 503 || resp.Header.Get("X-Usher-Reason") != "store_unavailable" {
			t.Errorf("%q: %d %v, want 503 store_unavailable", req, resp.StatusCode, resp.Header)
		}
	}
	metrics := checkHTTP(t, s.httpAddr, "GET /metrics HTTP/1.1\r\nHost: usher\r\n\r\n")
	if want := `usher_check_decisions_total{auth="none",reason="store_unavailable",status="503"} 2`; !strings.Contains(metrics.body, want) {
		t.Errorf("HTTP check decisions not counted: no %q in /metrics", want)
	}

	// Loopback is not among the trusted proxies: /auth is refused.
	s = startCheckListeners(t, "10.0.0.0/8")
	resp := checkHTTP(t, s.checkAddr, "GET /auth HTTP/1.1\r\nHost: usher\r\nX-Forwarded-Uri: /me\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Host: a\r\n\r\n")
	if resp.StatusCode != 400 || resp.Header.Get("X-Usher-Reason") != "forwarded_untrusted" {
		t.Errorf("untrusted peer: %d %v, want 400 forwarded_untrusted", resp.StatusCode, resp.Header)
	}
}

type checkResponse struct {
	*http.Response
	body string
}

func checkHTTP(t *testing.T, addr net.Addr, req string) checkResponse {
	t.Helper()
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprint(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return checkResponse{resp, string(body)}
}
