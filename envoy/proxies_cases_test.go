package envoy_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
)

// proxyCase is one client request through a real proxy, and what the
// client and the app must see.
type proxyCase struct {
	name    string
	method  string
	path    string
	headers []string // name, value pairs, in order
	status  int
	body    string // the client's body; "app" when the app answered
	wwwAuth string
	login   string // the Location of a redirect to login
	// app holds, when the app is reached, every identity header and
	// credential it must get (lower-case names); any other one it gets is
	// a failure. nil: the app must not be reached.
	app map[string]string
}

// identityLike matches every header name an app may read as usher's: the
// x-usher- prefix with '_' or '.' for a '-'.
var identityLike = regexp.MustCompile(`(?i)^x[-_.]usher[-_.]`)

// proxyCases are the cases every proxy must pass. Catalogue rows 10, 93,
// 94, 95.
func proxyCases(w *httpWorld) []proxyCase {
	ci, reader := w.keys["acme/ci"], w.keys["acme/reader"]
	read := "/spaces/proj1/datasets/7"
	ciIdentity := func(extra ...string) map[string]string {
		m := map[string]string{"x-usher-subject": "apikey:ciacmekeyaaaaaaa", "x-usher-tenant": "acme",
			"x-usher-auth": "apikey", "x-usher-space": "proj1", "x-usher-seats": "editors"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	return []proxyCase{
		{name: "api key: identity set, key removed", method: "GET", path: read, headers: []string{"X-Api-Key", ci},
			status: 200, body: "app", app: ciIdentity()},
		{name: "spoofed identity headers replaced or removed", method: "GET", path: read, headers: []string{
			"X-Api-Key", ci, "X-Usher-Subject", "root", "X-Usher-Tenant", "globex", "X-Usher-Email", "root@evil.test",
			"X-Usher-Issuer", "evil", "X-Usher-Seats", "admins"},
			status: 200, body: "app", app: ciIdentity()},
		{name: "spoofed '_' and '.' variants removed", method: "GET", path: read, headers: []string{
			"X-Api-Key", ci, "X_Usher_Subject", "root", "x.usher.tenant", "globex", "X-Usher_Email", "root@evil.test",
			"x_usher.seats", "admins"},
			status: 200, body: "app", app: ciIdentity()},
		{name: "spoofs on a public route removed", method: "GET", path: "/public/logo.png", headers: []string{
			"X-Usher-Subject", "root", "X_Usher_Tenant", "acme", "x.usher.seats", "admins"},
			status: 200, body: "app", app: map[string]string{}},
		{name: "bearer consumed", method: "POST", path: read, headers: []string{"Authorization", "Bearer " + ci},
			status: 200, body: "app", app: ciIdentity()},
		{name: "usher token: email and issuer", method: "GET", path: read, headers: []string{"Authorization", "Bearer " + w.tokens["good"]},
			status: 200, body: "app", app: map[string]string{"x-usher-subject": "alice", "x-usher-tenant": "acme",
				"x-usher-email": "alice@acme.test", "x-usher-auth": "jwt", "x-usher-issuer": "usher", "x-usher-space": "proj1",
				"x-usher-seats": "editors"}},
		{name: "the app's own Basic credential stays", method: "GET", path: read,
			headers: []string{"X-Api-Key", ci, "Authorization", "Basic YTpi"},
			status:  200, body: "app", app: ciIdentity("authorization", "Basic YTpi")},
		{name: "unverified key on a public route removed", method: "GET", path: "/public/x", headers: []string{"X-Api-Key", "sk_forged"},
			status: 200, body: "app", app: map[string]string{}},

		{name: "no credential: 401, never the app", method: "GET", path: "/me",
			headers: []string{"X-Usher-Subject", "root"},
			status:  401, body: `{"error":"credential_missing"}`, wwwAuth: `Bearer realm="usher"`},
		{name: "bad key: 401 invalid_token", method: "GET", path: "/me", headers: []string{"X-Api-Key", "sk_notakey"},
			status: 401, body: `{"error":"apikey_malformed"}`,
			wwwAuth: `Bearer realm="usher", error="invalid_token", error_description="apikey_malformed"`},
		{name: "no permission: 403", method: "DELETE", path: read, headers: []string{"X-Api-Key", reader},
			status: 403, body: `{"error":"permission_denied"}`,
			wwwAuth: `Bearer realm="usher", error="insufficient_scope", error_description="permission_denied"`},
		{name: "no rule: 403", method: "GET", path: "/nowhere", headers: []string{"X-Api-Key", ci},
			status: 403, body: `{"error":"no_route"}`},
		{name: "ambiguous path: 400, judged as sent", method: "GET", path: "/public/%2e%2e/admin/users", headers: []string{"X-Api-Key", ci},
			status: 400, body: `{"error":"path_invalid"}`},
		{name: "query is not the path", method: "GET", path: "/admin/users?x=/public/y", headers: []string{"X-Api-Key", ci},
			status: 403, body: `{"error":"permission_denied"}`,
			wwwAuth: `Bearer realm="usher", error="insufficient_scope", error_description="permission_denied"`},
		{name: "client's forwarded headers are not the request", method: "GET", path: "/admin/users", headers: []string{
			"X-Api-Key", ci, "X-Original-URI", "/public/x", "X-Original-Method", "GET", "X-Forwarded-Uri", "/public/x",
			"X-Forwarded-Method", "GET", "X-Forwarded-Host", "other.example.test", "X-Forwarded-Proto", "https"},
			status: 403, body: `{"error":"permission_denied"}`,
			wwwAuth: `Bearer realm="usher", error="insufficient_scope", error_description="permission_denied"`},
		{name: "method override checked", method: "GET", path: read,
			headers: []string{"X-Api-Key", reader, "X-HTTP-Method-Override", "DELETE"},
			status:  403, body: `{"error":"permission_denied"}`,
			wwwAuth: `Bearer realm="usher", error="insufficient_scope", error_description="permission_denied"`},
		{name: "store down: 503", method: "GET", path: "/me", headers: []string{"X-Api-Key", ci, faultHeader, "store_unavailable"},
			status: 503, body: `{"error":"store_unavailable"}`},
		{name: "browser sent to login", method: "GET", path: "/me", headers: []string{"Accept", "text/html"},
			status: 302, login: "https://login.example.test/start?rd=/me", wwwAuth: `Bearer realm="usher"`},
	}
}

// loginHook names a login URL for browsers (an Accept of text/html), as
// issue 9's login app will.
func loginHook(_ *authz.Decision, r *authz.Request) string {
	if !strings.Contains(r.Headers["accept"], "text/html") {
		return ""
	}
	return "https://login.example.test/start?rd=" + r.Path
}

// runProxyCases sends every case through the proxy at addr.
func runProxyCases(t *testing.T, w *httpWorld, rec *recorder, proxy string, cases []proxyCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			rec.take()
			got := roundTrip(t, proxy, rawRequest(tt.method, tt.path, append([]string{"Host", api}, tt.headers...)...))
			seen := rec.take()
			if got.status != tt.status {
				t.Fatalf("status %d, want %d (body %q, headers %s)", got.status, tt.status, got.body, headerDump(got.header))
			}
			if tt.body != "" && got.body != tt.body {
				t.Errorf("body %q, want %q", got.body, tt.body)
			}
			if strings.HasPrefix(tt.body, "{") {
				if ct := got.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("content-type %q", ct)
				}
			}
			if v := got.header.Get("WWW-Authenticate"); v != tt.wwwAuth {
				t.Errorf("www-authenticate %q, want %q", v, tt.wwwAuth)
			}
			if v := got.header.Get("Location"); v != tt.login {
				t.Errorf("location %q, want %q", v, tt.login)
			}
			if tt.app == nil {
				if len(seen) != 0 {
					t.Fatalf("a denied request reached the app: %s", headerDump(seen[0]))
				}
				return
			}
			if len(seen) != 1 {
				t.Fatalf("the app got %d requests, want 1", len(seen))
			}
			h := seen[0]
			if target := h.Get("X-Test-Target"); target != tt.path {
				t.Errorf("the app got %q, usher judged %q", target, tt.path)
			}
			app := map[string]string{}
			for name, values := range h {
				lower := strings.ToLower(name)
				if identityLike.MatchString(lower) || lower == "x-api-key" || lower == "authorization" ||
					lower == "x-envoy-auth-headers-to-remove" {
					app[lower] = strings.Join(values, ",")
				}
			}
			if d := cmp.Diff(tt.app, app); d != "" {
				t.Errorf("identity headers and credentials at the app (-want +got):\n%s", d)
			}
		})
	}
}

// TestNginx runs the proxy cases through real nginx with the shipped
// examples/nginx.conf.
func TestNginx(t *testing.T) {
	w := newHTTPWorld(t, withLogin(loginHook))
	rec := &recorder{}
	proxy := startNginx(t, w.addr, serveHTTP(t, rec))
	runProxyCases(t, w, rec, proxy, proxyCases(w))
	t.Run("untrusted proxy", func(t *testing.T) { untrustedProxy(t, startNginx) })
	t.Run("usher unreachable", func(t *testing.T) {
		rec := &recorder{}
		proxy := startNginx(t, freePort(t), serveHTTP(t, rec))
		runProxyCases(t, w, rec, proxy, []proxyCase{{name: "503", method: "GET", path: "/public/x",
			status: 503, body: `{"error":"authorizer_unavailable"}`}})
	})
}

// untrustedProxy: a proxy whose address is not in trusted_proxies gets
// 400 forwarded_untrusted for every request, a public one too, and nothing
// reaches the app. Catalogue row 95.
func untrustedProxy(t *testing.T, start func(t *testing.T, usher, app string) string) {
	w := newHTTPWorld(t, trusting(t, "10.0.0.0/8"))
	rec := &recorder{}
	proxy := start(t, w.addr, serveHTTP(t, rec))
	runProxyCases(t, w, rec, proxy, []proxyCase{
		{name: "public", method: "GET", path: "/public/x", status: 400, body: `{"error":"forwarded_untrusted"}`},
		{name: "with a key", method: "GET", path: "/spaces/proj1/datasets/7", headers: []string{"X-Api-Key", w.keys["acme/ci"]},
			status: 400, body: `{"error":"forwarded_untrusted"}`},
	})
}

// TestCaddy runs the proxy cases through real Caddy with the shipped
// examples/Caddyfile. Caddy passes usher's denials through as they are;
// its forward_auth has no login hook of its own: the X-Usher-Login-URL
// header reaches the client with the 401.
func TestCaddy(t *testing.T) {
	w := newHTTPWorld(t, withLogin(loginHook))
	rec := &recorder{}
	proxy := startCaddy(t, w.addr, serveHTTP(t, rec))
	cases := proxyCases(w)
	for i := range cases {
		if cases[i].login != "" {
			cases[i].status, cases[i].login = 401, ""
			cases[i].body = `{"error":"credential_missing"}`
		}
	}
	cases = append(cases, proxyCase{name: "any x-usher- header removed", method: "GET", path: "/public/x",
		headers: []string{"X-Usher-Admin", "true", "x_usher_role", "root"}, status: 200, body: "app", app: map[string]string{}})
	runProxyCases(t, w, rec, proxy, cases)
	t.Run("untrusted proxy", func(t *testing.T) { untrustedProxy(t, startCaddy) })
	t.Run("usher unreachable", func(t *testing.T) {
		rec := &recorder{}
		proxy := startCaddy(t, freePort(t), serveHTTP(t, rec))
		runProxyCases(t, w, rec, proxy, []proxyCase{{name: "502", method: "GET", path: "/public/x", status: 502}})
	})
}
