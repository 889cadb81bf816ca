package envoy_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
)

// TestHTTPForwardedTrust: the original request named in forwarded headers
// is believed only from a trusted proxy. From any other peer a request at
// /auth is 400 forwarded_untrusted, whatever it claims, and never a
// decision on the claimed path; Envoy's dialect names nothing in forwarded
// headers and answers anyone who can reach it, as gRPC Check does.
// Catalogue rows 95 and 96.
func TestHTTPForwardedTrust(t *testing.T) {
	key := func(w *httpWorld) string { return w.keys["acme/ci"] }
	nginx := func(w *httpWorld) string {
		return rawRequest("GET", "/auth", "Host", "usher", "X-Original-URI", "/public/x", "X-Original-Method", "GET",
			"X-Forwarded-Host", api, "X-Api-Key", key(w))
	}
	traefik := func(w *httpWorld) string {
		return rawRequest("GET", "/auth", "Host", api, "X-Forwarded-Uri", "/public/x", "X-Forwarded-Method", "GET",
			"X-Forwarded-Host", api, "X-Forwarded-Proto", "https")
	}
	envoyHTTP := func(w *httpWorld) string {
		return rawRequest("GET", "/ext_authz/spaces/proj1/datasets/7", "Host", api, "X-Api-Key", key(w),
			"X-Forwarded-Uri", "/public/x", "X-Original-URI", "/public/x")
	}
	tests := []struct {
		name    string
		trusted []string // nil: the default, loopback only
		request func(w *httpWorld) string
		status  int
		reason  authz.Reason
	}{
		{"nginx from loopback by default", nil, nginx, 200, ""},
		{"forward auth from loopback by default", nil, traefik, 200, ""},
		{"nginx from an untrusted peer", []string{"10.0.0.0/8"}, nginx, 400, authz.ReasonForwardedUntrusted},
		{"forward auth from an untrusted peer", []string{"192.0.2.7/32", "2001:db8::/32"}, traefik, 400, authz.ReasonForwardedUntrusted},
		{"trusted by an explicit range", []string{"10.0.0.0/8", "127.0.0.1/32"}, traefik, 200, ""},
		{"envoy's dialect believes no forwarded header", []string{"10.0.0.0/8"}, envoyHTTP, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*envoy.HTTPServer)
			if tt.trusted != nil {
				opts = append(opts, trusting(t, tt.trusted...))
			}
			w := newHTTPWorld(t, opts...)
			got := roundTrip(t, w.addr, tt.request(w))
			if got.status != tt.status || got.header.Get("X-Usher-Reason") != string(tt.reason) {
				t.Fatalf("status %d reason %q, want %d %q (body %s)", got.status, got.header.Get("X-Usher-Reason"), tt.status, tt.reason, got.body)
			}
			if tt.status == 200 && got.header.Get("X-Usher-Space") != "" && !strings.Contains(tt.name, "envoy") {
				t.Errorf("decided on another path than the claimed public one: %v", got.header)
			}
			if tt.reason != "" && got.body != `{"error":"`+string(tt.reason)+`"}` {
				t.Errorf("body %s", got.body)
			}
		})
	}
}

// TestHTTPDialectErrors: check requests that do not say what to decide, or
// say it twice, differently, are refused; paths that are no check are 404.
func TestHTTPDialectErrors(t *testing.T) {
	w := newHTTPWorld(t)
	ci := w.keys["acme/ci"]
	tests := []struct {
		name    string
		request string
		status  int
		reason  string
	}{
		{"no original URI", rawRequest("GET", "/auth", "Host", "usher", "X-Original-Method", "GET", "X-Forwarded-Host", api), 400, "request_invalid"},
		{"no original method", rawRequest("GET", "/auth", "Host", "usher", "X-Original-URI", "/me", "X-Forwarded-Host", api), 400, "request_invalid"},
		{"no host", rawRequest("GET", "/auth", "Host", "usher", "X-Original-URI", "/me", "X-Original-Method", "GET"), 400, "request_invalid"},
		{"two hosts", rawRequest("GET", "/auth", "Host", "usher", "X-Original-URI", "/me", "X-Original-Method", "GET",
			"X-Forwarded-Host", api+", evil.test"), 400, "request_invalid"},
		{"repeated host", rawRequest("GET", "/auth", "Host", "usher", "X-Original-URI", "/me", "X-Original-Method", "GET",
			"X-Forwarded-Host", api, "X-Forwarded-Host", api), 400, "request_invalid"},
		{"nginx and forward-auth URIs differ", rawRequest("GET", "/auth", "Host", "usher", "X-Original-URI", "/admin/x",
			"X-Forwarded-Uri", "/public/x", "X-Original-Method", "GET", "X-Forwarded-Host", api, "X-Api-Key", ci), 400, "request_invalid"},
		{"methods differ", rawRequest("GET", "/auth", "Host", "usher", "X-Original-URI", "/public/x",
			"X-Original-Method", "GET", "X-Forwarded-Method", "DELETE", "X-Forwarded-Host", api), 400, "request_invalid"},
		{"repeated URI", rawRequest("GET", "/auth", "Host", "usher", "X-Forwarded-Uri", "/public/x", "X-Forwarded-Uri", "/admin",
			"X-Forwarded-Method", "GET", "X-Forwarded-Host", api), 400, "request_invalid"},
		{"method is no token", rawRequest("GET", "/auth", "Host", "usher", "X-Forwarded-Uri", "/public/x",
			"X-Forwarded-Method", "GE T", "X-Forwarded-Host", api), 400, "request_invalid"},
		{"odd scheme", rawRequest("GET", "/auth", "Host", "usher", "X-Forwarded-Uri", "/public/x",
			"X-Forwarded-Method", "GET", "X-Forwarded-Host", api, "X-Forwarded-Proto", "gopher"), 400, "request_invalid"},
		{"same URI both ways", rawRequest("GET", "/auth?x=1", "Host", "usher", "X-Original-URI", "/public/x",
			"X-Forwarded-Uri", "/public/x", "X-Original-Method", "GET", "X-Forwarded-Host", api), 200, ""},
		{"not a check", rawRequest("GET", "/authz", "Host", api), 404, ""},
		{"envoy prefix without the path", rawRequest("GET", "/ext_authz", "Host", api), 404, ""},
		{"absolute form", rawRequest("GET", "http://"+api+"/ext_authz/public/x", "Host", api), 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := roundTrip(t, w.addr, tt.request)
			if got.status != tt.status || got.header.Get("X-Usher-Reason") != tt.reason {
				t.Errorf("status %d reason %q, want %d %q (body %s)", got.status, got.header.Get("X-Usher-Reason"), tt.status, tt.reason, got.body)
			}
		})
	}
}

// TestHTTPLoginURLHook: a denial with 401 carries the login URL the hook
// names (issue 9's login redirect plugs in here); other denials and
// allows never do.
func TestHTTPLoginURLHook(t *testing.T) {
	w := newHTTPWorld(t, withLogin(func(d *authz.Decision, r *authz.Request) string {
		return "https://login.example.test/start?rd=https://" + r.Host + r.Path
	}))
	tests := []struct {
		name, request, want string
	}{
		{"401", rawRequest("GET", "/ext_authz/me", "Host", api), "https://login.example.test/start?rd=https://" + api + "/me"},
		{"403", rawRequest("GET", "/ext_authz/admin/x", "Host", api, "X-Api-Key", w.keys["acme/ci"]), ""},
		{"allow", rawRequest("GET", "/ext_authz/public/x", "Host", api), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := roundTrip(t, w.addr, tt.request)
			if d := cmp.Diff(tt.want, got.header.Get("X-Usher-Login-URL")); d != "" {
				t.Errorf("x-usher-login-url (-want +got):\n%s", d)
			}
		})
	}
}

// TestHTTPDenialHeadersAsGRPC: an HTTP denial carries every header of the
// gRPC denied_response, so a header a denial gains (a login redirect's
// Location) reaches both transports.
func TestHTTPDenialHeadersAsGRPC(t *testing.T) {
	w := newHTTPWorld(t)
	reader := w.keys["acme/reader"]
	for path, key := range map[string]string{"/me": "sk_bad", "/admin/x": reader, "/nowhere": reader, "/public/%2e%2e/x": reader} {
		resp, err := w.client.Check(t.Context(), envoyRequest("GET", api, path, "X-Api-Key", key))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetDeniedResponse() == nil {
			t.Fatalf("%s: not denied", path)
		}
		got := roundTrip(t, w.addr, rawRequest("GET", "/ext_authz"+path, "Host", api, "X-Api-Key", key))
		for _, h := range resp.GetDeniedResponse().GetHeaders() {
			name := http.CanonicalHeaderKey(h.GetHeader().GetKey())
			if v := got.header.Get(name); v != h.GetHeader().GetValue() {
				t.Errorf("%s: %s over HTTP %q, over gRPC %q", path, name, v, h.GetHeader().GetValue())
			}
		}
		if got.header.Get("Content-Type") != "application/json" || got.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", path, got.header)
		}
	}
}

// TestHTTPCheckDeadline: a store slower than the per-check deadline gets
// 503 timeout, within the deadline, as over gRPC. Catalogue row 104.
func TestHTTPCheckDeadline(t *testing.T) {
	w := newHTTPWorld(t)
	addr := serveHTTP(t, &envoy.HTTPServer{Decider: w.a, Realm: "usher", Timeout: 50 * time.Millisecond})
	w.st.Delay.Store(int64(time.Minute))
	t.Cleanup(func() { w.st.Delay.Store(0) })
	start := time.Now()
	got := roundTrip(t, addr, rawRequest("GET", "/ext_authz/me", "Host", api, "X-Api-Key", w.keys["acme/ci"]))
	if got.status != 503 || got.body != `{"error":"timeout"}` {
		t.Errorf("slow store: %d %s, want 503 timeout", got.status, got.body)
	}
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("answered after %v: the deadline did not apply", elapsed)
	}
}
