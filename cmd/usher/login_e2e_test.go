package main

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/usher-dev/usher/internal/checkclient"
	"github.com/usher-dev/usher/internal/testidp"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// loginRules protect the datasets of a space on any host (the login
// tests' app runs on 127.0.0.1).
const loginRules = `default: deny
rules:
  - name: datasets
    path: /spaces/{space}/datasets/**
    methods: [GET, HEAD]
    permission: datasets.read
  - name: me
    path: /me
    authenticated: true
`

// loginStack is the whole login path on loopback: the real OpenID
// provider, server A (`usher serve`, authz and login roles, on the
// embedded store) and server B (a second `usher serve` process, authz
// only, on A's store through its Unix socket), both the real binary.
type loginStack struct {
	bin      string
	dir      string
	idp      *testidp.Real
	loginURL string
	a, b     *server
	pa, pb   *proc
	// app is the host:port of the protected app in the Checks (nothing
	// listens there unless the test starts something).
	app string
}

// loginEnv is the USHER_* login settings for the real provider.
func loginEnv(loginURL, issuer string) []string {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef-login-e2e"))
	return []string{
		"USHER_AUTH_ENABLED=true",
		"USHER_LOGIN_URL=" + loginURL,
		"USHER_LOGIN_ADDR=" + strings.TrimPrefix(loginURL, "http://"),
		"USHER_ROOT_DOMAIN=127.0.0.1",
		"USHER_SESSION_KEY=" + key,
		"USHER_ALLOWED_DOMAINS=acme.test",
		"USHER_AUTH_TENANT=acme",
		"USHER_AUTH_PROVIDER_TYPE=oidc",
		"USHER_AUTH_CLIENT_ID=" + testidp.RealLoginClientID,
		"USHER_AUTH_CLIENT_SECRET=" + testidp.RealLoginClientSecret,
		"USHER_AUTH_ISSUER_URL=" + issuer,
	}
}

// startProcEnv is startProc with more environment.
func startProcEnv(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "USHER_MASTER_KEY=" + storetest.MasterKeyText}, env...)
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
		if t.Failed() {
			t.Logf("logs of usher %s:\n%s", strings.Join(args, " "), p.logs.String())
		}
	})
	return p
}

// startLoginStack starts the provider and both servers, and seeds tenant
// acme: space proj1 and seat editors (alice's IdP group) granting
// datasets.read there.
func startLoginStack(t *testing.T, app string) *loginStack {
	t.Helper()
	bin, err := buildUsher()
	if err != nil {
		t.Fatal(err)
	}
	st := &loginStack{bin: bin, dir: storetest.ShortTempDir(t), loginURL: "http://" + freePort(t), app: app}
	st.idp = testidp.StartRealLogin(t, testidp.LoginOptions{
		RedirectURIs:           []string{st.loginURL + "/auth/oidc/callback"},
		PostLogoutRedirectURIs: []string{st.loginURL + "/signed-out"},
	})
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(loginRules), 0o600); err != nil {
		t.Fatal(err)
	}
	env := loginEnv(st.loginURL, st.idp.Issuer)

	st.a = newServer(t)
	st.a.rules = rules
	st.pa = startProcEnv(t, bin, env, st.a.args(st.dir)...)
	st.a.waitReady(t)
	waitUntil(t, func() bool {
		resp, err := http.Get(st.loginURL + "/login")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "the login app")

	// Server B shares A's store: the embedded store's socket, as the
	// admin CLI reaches it.
	sock, err := store.SocketPath(st.dir)
	if err != nil {
		t.Fatal(err)
	}
	uri := "mongodb://" + strings.ReplaceAll(url.PathEscape(sock), "/", "%2F") + "/" + store.DefaultDatabase
	st.b = newServer(t)
	st.b.rules = rules
	st.pb = startProcEnv(t, bin, env, "serve", "--mongo-uri", uri, "--roles", "authz",
		"--grpc-addr", st.b.grpcAddr, "--http-addr", st.b.httpAddr, "--rules", rules,
		"--log-format", "json", "--changes-interval", "200ms", "--check-timeout", "5s")
	st.b.waitReady(t)
	if !strings.Contains(st.pb.logs.String(), `"store":"`+uri+`"`) {
		t.Errorf("server B does not say it runs on A's store %s:\n%s", uri, st.pb.logs.String())
	}

	d := "--data-dir=" + st.dir
	cli(t, bin, "tenant", "create", "acme", d)
	cli(t, bin, "space", "create", "--tenant", "acme", "proj1", d)
	cli(t, bin, "seat", "create", "--tenant", "acme", "--name", "editors", "--grant", "proj1=datasets.read", d)
	return st
}

// checkResult is a Check's answer as Envoy would apply it.
type checkResult struct {
	status  int
	reason  string
	headers map[string]string // upstream headers (allowed) or response headers (denied)
}

// checkAt sends s a Check for GET http://<host><path> with headers.
func checkAt(t *testing.T, s *server, host, path string, headers ...string) checkResult {
	t.Helper()
	r := checkclient.Request{Method: "GET", Scheme: "http", Host: host, Path: path}
	for _, h := range headers {
		hv, ok := checkclient.ParseHeader(h)
		if !ok {
			t.Fatalf("header %q", h)
		}
		r.Headers = append(r.Headers, hv)
	}
	resp, err := s.client.Check(t.Context(), r.CheckRequest())
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return decodeCheck(resp)
}

func decodeCheck(resp *authv3.CheckResponse) checkResult {
	res := checkResult{reason: resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue(), headers: map[string]string{}}
	if ok := resp.GetOkResponse(); ok != nil {
		res.status = 200
		for _, h := range ok.GetHeaders() {
			res.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		return res
	}
	d := resp.GetDeniedResponse()
	res.status = int(d.GetStatus().GetCode())
	for _, h := range d.GetHeaders() {
		res.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return res
}

// navigation is what a browser sends on a top-level navigation.
var navigation = []string{"accept: text/html,application/xhtml+xml", "sec-fetch-mode: navigate"}

const protectedPath = "/spaces/proj1/datasets/report"

// wantAllowed requires res to be alice's session allowed by cookie.
func wantAllowed(t *testing.T, where string, res checkResult) {
	t.Helper()
	want := map[string]string{
		"x-usher-auth": "cookie", "x-usher-subject": testidp.RealAlice, "x-usher-tenant": "acme",
		"x-usher-email": "alice@acme.test", "x-usher-seats": "editors",
	}
	if res.status != 200 {
		t.Fatalf("%s: Check with the session cookie: %d %s, want 200", where, res.status, res.reason)
	}
	for k, v := range want {
		if res.headers[k] != v {
			t.Errorf("%s: upstream header %s = %q, want %q (all: %v)", where, k, res.headers[k], v, res.headers)
		}
	}
}

// wantRedirectToLogin requires a 302 to the login page with next the
// protected URL, and returns the Location.
func (st *loginStack) wantRedirectToLogin(t *testing.T, res checkResult) string {
	t.Helper()
	want := st.loginURL + "/login?next=" + url.QueryEscape("http://"+st.app+protectedPath)
	if res.status != http.StatusFound || res.headers["location"] != want {
		t.Fatalf("browser navigation without a session: %d %s location %q, want 302 to %s", res.status, res.reason, res.headers["location"], want)
	}
	return want
}

// deniedWithin2s polls server s until it refuses cookie with 401, failing
// after 2 s.
func deniedWithin2s(t *testing.T, s *server, app, cookie string) {
	t.Helper()
	start := time.Now()
	for {
		res := checkAt(t, s, app, protectedPath, "cookie: "+cookie)
		if res.status == http.StatusUnauthorized {
			t.Logf("the server denied the signed-out session after %v (%s)", time.Since(start).Round(time.Millisecond), res.reason)
			return
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the server (gRPC %s) still answers %d %s for the signed-out session 2s after logout", s.grpcAddr, res.status, res.reason)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// sessionCookie finds the session cookie in a "name=value; ..." header.
func sessionCookie(t *testing.T, cookies []*http.Cookie) string {
	t.Helper()
	for _, c := range cookies {
		if c.Name == "usher_session" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no usher_session cookie among %v", cookies)
	return ""
}

// TestLoginEndToEndHTTP is the whole browser path over plain HTTP with a
// cookie jar, against the real OpenID provider and two real `usher serve`
// processes: protected URL → 302 → login page → IdP → callback → cookie
// → Check allows on A and B → logout → B denies within 2 s.
//
// Catalogue row 32 (the cookie replayed after logout is denied on every
// server).
// Catalogue row 121 (a session revoked on A is denied by B within 2 s).
func TestLoginEndToEndHTTP(t *testing.T) {
	st := startLoginStack(t, "127.0.0.1:8443")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The client follows redirects on the login app only: the test plays
	// the browser's steps at the IdP and the app.
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}

	// 1. A browser navigation to the protected URL: 302 to the login page.
	loc := st.wantRedirectToLogin(t, checkAt(t, st.a, st.app, protectedPath, navigation...))
	// An API call without a credential: 401, no redirect.
	if res := checkAt(t, st.a, st.app, protectedPath, "accept: application/json"); res.status != 401 || res.headers["location"] != "" {
		t.Errorf("API call without a credential: %d %v, want 401 without location", res.status, res.headers)
	}

	// 2. The login page, with the provider's button and next.
	resp, body := do(t, client, http.MethodGet, loc, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `name="provider" value="oidc"`) ||
		!strings.Contains(body, `value="http://`+st.app+protectedPath+`"`) {
		t.Fatalf("login page: %d\n%s", resp.StatusCode, body)
	}
	// 3. The button: to the IdP with code flow, PKCE S256, state, nonce.
	resp, _ = do(t, client, http.MethodPost, st.loginURL+"/auth/oidc/login", url.Values{
		"provider": {"oidc"}, "tenant": {"acme"}, "next": {"http://" + st.app + protectedPath},
	})
	authURL, err := resp.Location()
	if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(authURL.String(), st.idp.Issuer+"/") {
		t.Fatalf("POST /auth/oidc/login: %d to %v, want 302 to the IdP", resp.StatusCode, authURL)
	}
	q := authURL.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("state") == "" || q.Get("nonce") == "" || q.Get("response_type") != "code" {
		t.Errorf("authorization request lacks PKCE S256, state or nonce: %s", authURL)
	}
	// 4. alice logs in at the IdP's form.
	callback, err := st.idp.LoginForm(client, authURL.String(), testidp.RealAlice)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(callback, st.loginURL+"/auth/oidc/callback?") {
		t.Fatalf("the IdP sent the browser to %s", callback)
	}
	// 5. The callback sets the session cookie and goes back to next.
	resp, body = do(t, client, http.MethodGet, callback, nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://"+st.app+protectedPath {
		t.Fatalf("callback: %d to %q, want 302 to the protected URL\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var set *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "usher_session" {
			set = c
		}
	}
	if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.Path != "/" || len(set.Value) > 200 {
		t.Fatalf("session cookie %+v: want usher_session, HttpOnly, SameSite=Lax, Path=/, ≤ 200 bytes", set)
	}
	app, _ := url.Parse("http://" + st.app + "/")
	cookie := sessionCookie(t, jar.Cookies(app))

	// 6. Check accepts the cookie, on A and on B, with the person's headers.
	wantAllowed(t, "server A", checkAt(t, st.a, st.app, protectedPath, append(navigation, "cookie: theme=dark; "+cookie)...))
	wantAllowed(t, "server B", checkAt(t, st.b, st.app, protectedPath, "cookie: "+cookie))
	resp, body = do(t, client, http.MethodGet, st.loginURL+"/whoami", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"alice@acme.test"`) || strings.Contains(body, "eyJ") {
		t.Errorf("whoami: %d %s", resp.StatusCode, body)
	}

	// 7. Logout: the cookie is cleared, the session revoked, the browser
	// sent to the IdP's end_session_endpoint and back to the signed-out
	// page.
	resp, _ = do(t, client, http.MethodPost, st.loginURL+"/logout", url.Values{})
	end, err := resp.Location()
	if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(end.String(), st.idp.Issuer+"/") || end.Query().Get("id_token_hint") == "" {
		t.Fatalf("logout: %d to %v, want 302 to the IdP's end_session_endpoint with id_token_hint", resp.StatusCode, end)
	}
	for _, c := range jar.Cookies(app) {
		if c.Name == "usher_session" {
			t.Errorf("the jar still holds the session cookie after logout")
		}
	}
	deniedWithin2s(t, st.b, st.app, cookie)
	// Server A (its own change feed, polled apart from B's) sends a
	// browser with the old cookie to log in again.
	start := time.Now()
	for {
		res := checkAt(t, st.a, st.app, protectedPath, append(navigation, "cookie: "+cookie)...)
		if res.status == http.StatusFound && res.reason == "session_revoked" {
			st.wantRedirectToLogin(t, res)
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("server A after logout, browser navigation: %d %s, want 302 to login (session_revoked) within 2s", res.status, res.reason)
		}
		time.Sleep(25 * time.Millisecond)
	}
	back, err := st.idp.Logout(client, end.String())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(back, st.loginURL+"/signed-out") {
		t.Fatalf("the IdP's logout returned to %q", back)
	}
	resp, body = do(t, client, http.MethodGet, back, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "signed out") {
		t.Errorf("signed-out page: %d\n%s", resp.StatusCode, body)
	}
}

// reply is a response read and closed.
type reply struct {
	StatusCode int
	Header     http.Header
	cookies    []*http.Cookie
	location   *url.URL
}

// Cookies are the cookies the response set.
func (r reply) Cookies() []*http.Cookie { return r.cookies }

// Location is the redirect's target, resolved.
func (r reply) Location() (*url.URL, error) {
	if r.location == nil {
		return nil, http.ErrNoLocation
	}
	return r.location, nil
}

// do sends a request (a form POST when form is not nil) with the
// headers of a same-site browser page and reads the answer.
func do(t *testing.T, c *http.Client, method, target string, form url.Values) (reply, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	r := reply{StatusCode: resp.StatusCode, Header: resp.Header, cookies: resp.Cookies()}
	r.location, _ = resp.Location()
	return r, string(b)
}

// TestServeLoginMissingSettings: auth enabled and nothing else, the real
// binary names every missing setting and exits 2 before listening.
// Catalogue row 45 (no session key: no start).
func TestServeLoginMissingSettings(t *testing.T) {
	bin, err := buildUsher()
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t)
	cmd := exec.Command(bin, "serve", "--data-dir", storetest.ShortTempDir(t), "--grpc-addr", s.grpcAddr, "--http-addr", s.httpAddr)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "USHER_AUTH_ENABLED=true"}
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitUsage {
		t.Fatalf("exit %d (%v), want %d\n%s", code, err, exitUsage, out)
	}
	for _, want := range []string{"USHER_ROOT_DOMAIN", "USHER_SESSION_KEY", "USHER_ALLOWED_DOMAINS", "USHER_AUTH_TENANT",
		"USHER_AUTH_PROVIDER_TYPE", "USHER_AUTH_CLIENT_ID", "USHER_AUTH_CLIENT_SECRET", "USHER_MASTER_KEY"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the error does not name %s:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "listening") {
		t.Errorf("serve listened before refusing its configuration:\n%s", out)
	}
}
