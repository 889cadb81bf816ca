package envoy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
	"github.com/usher-dev/usher/internal/testclock"
	"github.com/usher-dev/usher/store/storetest"
)

// parityRules are the shipped sample rules and two routes that carry the
// tenant and take the space from a header, so that every reason a rule can
// give is reachable.
func parityRules(t testing.TB) *authz.Rules {
	t.Helper()
	data, err := os.ReadFile("examples/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, `
  - name: tenant-spaces
    path: /tenants/{tenant}/spaces/{space}/**
    permission: datasets.read

  - name: reports
    path: /reports/**
    tenant_header: x-tenant-id
    permission: datasets.read
    space_header: x-space-id
`...)
	rules, err := authz.ParseRules("rules.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// httpWorld is a real usher answering both gRPC Check and HTTP check mode
// with one authorizer: the embedded store seeded with storetest.Seed and a
// keyring for acme, so that usher's own tokens verify.
type httpWorld struct {
	*world
	http   *envoy.HTTPServer
	addr   string // the HTTP check listener, 127.0.0.1:port
	tokens map[string]string
	// sessions are session cookies ("usher_session=…") by name: good
	// (acme, editors), revoked, and short (its absolute expiry an hour
	// after the epoch).
	sessions map[string]string
}

// seedSessions stores login sessions of alice in acme and returns their
// cookies.
func seedSessions(t testing.TB, st *storetest.Faulty, now time.Time) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range []struct {
		name    string
		ttl     time.Duration
		revoked bool
	}{{"good", 12 * time.Hour, false}, {"revoked", 12 * time.Hour, true}, {"short", time.Hour, false}} {
		h, err := authz.GenerateSessionHandle("acme")
		if err != nil {
			t.Fatal(err)
		}
		sess := authz.Session{ID: h.ID, Tenant: "acme", Issuer: "https://idp.example.test", Subject: "alice-" + s.name,
			Email: "alice@example.test", Seats: []string{"editors"}, Hash: h.Hash, CreatedAt: now, LastSeenAt: now,
			ExpiresAt: now.Add(s.ttl)}
		if err := st.CreateSession(t.Context(), sess); err != nil {
			t.Fatal(err)
		}
		if s.revoked {
			if err := st.RevokeSession(t.Context(), "acme", h.ID); err != nil {
				t.Fatal(err)
			}
		}
		out[s.name] = authz.DefaultCookieName + "=" + h.Handle
	}
	return out
}

// faultHeader names a fault for faultDecider to inject: the reasons no
// real part of this world can produce over every transport (an IdP
// outage, a panic, a cancelled caller, a route's contradictory context
// extensions, which HTTP check mode has none of).
const faultHeader = "x-test-fault"

// faultDecider decides with the authorizer, or injects the fault a
// request names in faultHeader.
type faultDecider struct{ envoy.Decider }

func (f faultDecider) Check(ctx context.Context, r *authz.Request) authz.Decision {
	switch v := r.Headers[faultHeader]; v {
	case "":
		return f.Decider.Check(ctx, r)
	case "panic":
		panic("injected")
	default:
		return authz.Failure(authz.Reason(v), errors.New("injected"))
	}
}

// checkTimeout is the test servers' per-check deadline: generous, so that
// a loaded machine (the race detector on two cores) never turns a
// decision into a timeout. Timeouts have tests of their own.
const checkTimeout = 5 * time.Second

// trusting makes an HTTP server trust these proxies only.
func trusting(t testing.TB, cidrs ...string) func(*envoy.HTTPServer) {
	return func(s *envoy.HTTPServer) {
		s.TrustedProxies = []netip.Prefix{}
		for _, c := range cidrs {
			s.TrustedProxies = append(s.TrustedProxies, mustPrefix(t, c))
		}
	}
}

// withLogin sets the login URL hook.
func withLogin(f func(*authz.Decision, *authz.Request) string) func(*envoy.HTTPServer) {
	return func(s *envoy.HTTPServer) { s.LoginURL = f }
}

// newHTTPWorld starts the world; opts configure the HTTP server before it
// serves.
func newHTTPWorld(t testing.TB, opts ...func(*envoy.HTTPServer)) *httpWorld {
	t.Helper()
	clock := testclock.New(storetest.Epoch)
	st := &storetest.Faulty{Store: storetest.Open(t, clock.Now)}
	keys := storetest.Seed(t, st.Store)
	tokens := mintTokens(t, st, clock.Now())
	sessions := seedSessions(t, st, clock.Now())
	a, err := authz.New(authz.Config{Rules: parityRules(t), Keys: st, Seats: st, SigningKeys: st.Store,
		Sessions: st.Store, Cookie: authz.CookieConfig{Enabled: true, RootDomain: "example.test"},
		Cache: authz.DefaultCacheConfig(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	d := faultDecider{a}
	hs := &envoy.HTTPServer{Decider: d, Realm: "usher", Timeout: checkTimeout}
	for _, o := range opts {
		o(hs)
	}
	w := &httpWorld{
		world:    &world{client: serveGRPC(t, &envoy.Server{Decider: d, Realm: "usher", Timeout: checkTimeout}), a: a, st: st, keys: keys, clock: clock},
		http:     hs,
		tokens:   tokens,
		sessions: sessions,
	}
	w.addr = serveHTTP(t, hs)
	return w
}

// serveHTTP serves h on a loopback port with the listener limits usher
// uses, and returns its address.
func serveHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 64 << 10}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	t.Cleanup(func() {
		_ = srv.Close()
		wg.Wait()
	})
	return lis.Addr().String()
}

// mintTokens makes usher access tokens of acme for every token reason: a
// good one, and expired, not yet valid, tampered, for another audience or
// issuer, and signed with a revoked key.
func mintTokens(t testing.TB, st *storetest.Faulty, now time.Time) map[string]string {
	t.Helper()
	ctx := t.Context()
	rotate := func() authz.SigningKey {
		if _, _, err := st.RotateSigningKey(ctx, "acme", 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		k, err := st.ActiveSigningKey(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	mint := func(cfg authz.TokenConfig, key authz.SigningKey, at time.Time) string {
		tok, err := authz.MintAccessToken(cfg, key, authz.AccessClaims{
			RegisteredClaims: jwt.RegisteredClaims{Subject: "alice"},
			Email:            "alice@acme.test",
			HashPerm:         map[string]string{"proj1": "editors"},
		}, at, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cfg := authz.DefaultTokenConfig()
	old := rotate()
	revoked := mint(cfg, old, now)
	key := rotate()
	if _, err := st.RevokeSigningKey(ctx, "acme", old.ID); err != nil {
		t.Fatal(err)
	}
	good := mint(cfg, key, now)
	otherAud, otherIss := cfg, cfg
	otherAud.Audience = "another-api"
	otherIss.Issuer = "https://idp.example.test"
	// A signature byte changed in the middle: the last character of a
	// base64url segment may carry padding bits only.
	sig := strings.LastIndexByte(good, '.') + 5
	tampered := []byte(good)
	if tampered[sig] == 'A' {
		tampered[sig] = 'B'
	} else {
		tampered[sig] = 'A'
	}
	return map[string]string{
		"good":     good,
		"revoked":  revoked,
		"expired":  mint(cfg, key, now.Add(-2*time.Hour)),
		"future":   mint(cfg, key, now.Add(time.Hour)),
		"tampered": string(tampered),
		"audience": mint(otherAud, key, now),
		"issuer":   mint(otherIss, key, now),
	}
}

// rawResponse is an HTTP answer as a proxy reads it.
type rawResponse struct {
	status int
	header http.Header
	body   string
}

// roundTrip sends one raw HTTP/1.1 request (exactly these bytes: no
// client library cleans the target or canonicalises header names) and
// reads the answer.
func roundTrip(t testing.TB, addr, request string) rawResponse {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", request, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// rawRequest renders a request line and header lines, in order, for
// roundTrip.
func rawRequest(method, target string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, target)
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("Connection: close\r\n\r\n")
	return b.String()
}

// verdict is what a proxy makes of an answer, gRPC or HTTP: the status,
// the body and challenge of a denial, and the headers set and removed
// upstream on an allow.
type verdict struct {
	Status  int
	Body    string
	WWWAuth string
	Set     map[string]string
	Remove  []string
}

func verdictOfGRPC(a answer) verdict {
	v := verdict{Status: int(a.HTTP), Body: a.Body, WWWAuth: a.WWWAuth, Set: a.Set, Remove: a.Remove}
	if v.Remove == nil && v.Status == 200 {
		v.Remove = []string{}
	}
	return v
}

func verdictOfHTTP(t testing.TB, r rawResponse) verdict {
	t.Helper()
	v := verdict{Status: r.status}
	if r.status != 200 {
		v.Body = r.body
		v.WWWAuth = r.header.Get("WWW-Authenticate")
		if got, want := r.header.Get("X-Usher-Reason"), reasonOfBody(r.body); got != want {
			t.Errorf("x-usher-reason %q, body %s", got, r.body)
		}
		return v
	}
	if r.body != "" {
		t.Errorf("an allow with a body: %q", r.body)
	}
	v.Set = map[string]string{}
	for name, values := range r.header {
		if n := strings.ToLower(name); strings.HasPrefix(n, "x-usher-") || n == "cookie" {
			v.Set[strings.ToLower(name)] = strings.Join(values, ",")
		}
	}
	v.Remove = []string{}
	if rm := r.header.Get("X-Envoy-Auth-Headers-To-Remove"); rm != "" {
		v.Remove = strings.Split(rm, ",")
	}
	slices.Sort(v.Remove)
	return v
}

func reasonOfBody(body string) string {
	r, ok := strings.CutPrefix(body, `{"error":"`)
	if !ok {
		return ""
	}
	return strings.TrimSuffix(r, `"}`)
}

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
