package envoy_test

import (
	"context"
	"net"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
	"github.com/usher-dev/usher/internal/checkclient"
	"github.com/usher-dev/usher/internal/testclock"
	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// world is a real usher behind real gRPC on loopback: the embedded store
// seeded with storetest.Seed, the authorizer, and the ext_authz server.
type world struct {
	client authv3.AuthorizationClient
	a      *authz.Authorizer
	st     *storetest.Faulty
	keys   storetest.Keys
	clock  *testclock.Clock
}

func newWorld(t testing.TB, decider func(*authz.Authorizer) envoy.Decider) *world {
	t.Helper()
	return newWorldTimeout(t, decider, checkTimeout)
}

// newWorldTimeout is newWorld with the server's per-Check deadline (0:
// envoy.DefaultTimeout). newWorld's is generous: a cold Check under -race
// on a loaded machine can take longer than the default, and those tests
// assert decisions, not speed.
func newWorldTimeout(t testing.TB, decider func(*authz.Authorizer) envoy.Decider, timeout time.Duration) *world {
	t.Helper()
	clock := testclock.New(storetest.Epoch)
	st := &storetest.Faulty{Store: storetest.Open(t, clock.Now)}
	keys := storetest.Seed(t, st.Store)
	rules := sampleRules(t)
	a, err := authz.New(authz.Config{Rules: rules, Keys: st, Seats: st, Cache: authz.DefaultCacheConfig(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	var d envoy.Decider = a
	if decider != nil {
		d = decider(a)
	}
	return &world{client: serveGRPC(t, &envoy.Server{Decider: d, Realm: "usher", Timeout: timeout}), a: a, st: st, keys: keys, clock: clock}
}

// serveGRPC serves srv on a loopback port and returns a client of it.
func serveGRPC(t testing.TB, srv authv3.AuthorizationServer) authv3.AuthorizationClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(envoy.ServerOptions()...)
	authv3.RegisterAuthorizationServer(gs, srv)
	var wg sync.WaitGroup
	wg.Go(func() { _ = gs.Serve(lis) })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		wg.Wait()
	})
	return authv3.NewAuthorizationClient(conn)
}

// envoyRequest builds a CheckRequest as Envoy's ext_authz filter sends one
// (checkclient's shape: lower-case header names, pseudo-headers included,
// repeated headers joined with ","), with a browser-like set of headers
// before the given name, value pairs.
func envoyRequest(method, host, path string, headers ...string) *authv3.CheckRequest {
	r := checkclient.Request{Method: method, Host: host, Path: path, Scheme: "https", ID: "1234567890",
		SourceAddr: "10.0.0.7", SourcePort: 51234, Headers: []checkclient.Header{
			{Name: "user-agent", Value: "curl/8.5.0"},
			{Name: "x-request-id", Value: "9f1b6c1e-3c1a-4b3e-8f7e-0b5f5f6f1a2b"},
			{Name: "x-forwarded-proto", Value: "https"},
		}}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Headers = append(r.Headers, checkclient.Header{Name: headers[i], Value: headers[i+1]})
	}
	return r.CheckRequest()
}

// answer is what a test asserts of a CheckResponse.
type answer struct {
	Code    codes.Code
	HTTP    int32
	Set     map[string]string
	Remove  []string
	Body    string
	WWWAuth string
}

func answerOf(resp *authv3.CheckResponse) answer {
	a := answer{Code: codes.Code(resp.GetStatus().GetCode())}
	if ok := resp.GetOkResponse(); ok != nil {
		a.HTTP = 200
		a.Set = map[string]string{}
		for _, h := range ok.GetHeaders() {
			if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				a.Set[h.GetHeader().GetKey()] = "NOT OVERWRITTEN: " + h.GetHeader().GetValue()
				continue
			}
			a.Set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		a.Remove = append([]string(nil), ok.GetHeadersToRemove()...)
		sort.Strings(a.Remove)
		return a
	}
	d := resp.GetDeniedResponse()
	a.HTTP = int32(d.GetStatus().GetCode())
	a.Body = d.GetBody()
	for _, h := range d.GetHeaders() {
		if h.GetHeader().GetKey() == "www-authenticate" {
			a.WWWAuth = h.GetHeader().GetValue()
		}
	}
	return a
}

func (w *world) check(t testing.TB, req *authv3.CheckRequest) answer {
	t.Helper()
	resp, err := w.client.Check(context.Background(), req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return answerOf(resp)
}

const api = "api.example.test"

func denied(code codes.Code, status int32, reason string) answer {
	a := answer{Code: code, HTTP: status, Body: `{"error":"` + reason + `"}`}
	switch {
	case reason == "credential_missing":
		a.WWWAuth = `Bearer realm="usher"`
	case status == 401:
		a.WWWAuth = `Bearer realm="usher", error="invalid_token", error_description="` + reason + `"`
	case reason == "permission_denied":
		a.WWWAuth = `Bearer realm="usher", error="insufficient_scope", error_description="` + reason + `"`
	}
	return a
}

// allowed is the answer allowing an API key on a permission route in
// space proj1.
func allowed(subject, tenant, seats string, remove ...string) answer {
	set := map[string]string{"x-usher-subject": subject, "x-usher-tenant": tenant, "x-usher-auth": "apikey", "x-usher-space": "proj1"}
	if seats != "" {
		set["x-usher-seats"] = seats
	}
	sort.Strings(remove)
	return answer{Code: codes.OK, HTTP: 200, Set: set, Remove: remove}
}

func TestCheckOverGRPC(t *testing.T) {
	w := newWorld(t, nil)
	ci := w.keys["acme/ci"]
	globexCI := w.keys["globex/ci"]
	tests := []struct {
		name string
		req  *authv3.CheckRequest
		want answer
	}{
		{"allow with identity headers", envoyRequest("GET", api, "/spaces/proj1/datasets/7", "x-api-key", ci),
			allowed("apikey:ciacmekeyaaaaaaa", "acme", "editors", "x-api-key")},
		{"allow via bearer", envoyRequest("POST", api, "/spaces/proj1/datasets/7", "authorization", "Bearer "+ci),
			allowed("apikey:ciacmekeyaaaaaaa", "acme", "editors", "authorization")},
		{"spoofed identity headers", envoyRequest("GET", api, "/spaces/proj1/datasets/7", "x-api-key", ci,
			"x-usher-subject", "root", "x-usher-tenant", "globex", "x-usher-email", "root@evil.test", "x_usher_seats", "admins", "x.usher.auth", "jwt"),
			allowed("apikey:ciacmekeyaaaaaaa", "acme", "editors", "x-api-key", "x-usher-email", "x_usher_seats", "x.usher.auth")},
		{"spoofed on a public route", envoyRequest("GET", api, "/public/logo.png", "x-usher-subject", "root", "X-Usher-Tenant", "acme"),
			answer{Code: codes.OK, HTTP: 200, Set: map[string]string{}, Remove: []string{"x-usher-subject", "x-usher-tenant"}}},
		{"cross-tenant key in its own tenant", envoyRequest("GET", api, "/spaces/proj1/datasets/7", "x-api-key", globexCI),
			allowed("apikey:ciglobexkeyaaaaa", "globex", "editors", "x-api-key")},

		{"missing credential", envoyRequest("GET", api, "/me"), denied(codes.Unauthenticated, 401, "credential_missing")},
		{"malformed key", envoyRequest("GET", api, "/me", "x-api-key", "sk_notakey"), denied(codes.Unauthenticated, 401, "apikey_malformed")},
		{"duplicate x-api-key merged with a comma", envoyRequest("GET", api, "/me", "x-api-key", ci, "x-api-key", ci),
			denied(codes.Unauthenticated, 401, "apikey_malformed")},
		{"bad x-api-key, good bearer: no fall-through", envoyRequest("GET", api, "/me", "x-api-key", "nope", "authorization", "Bearer "+ci),
			denied(codes.Unauthenticated, 401, "apikey_malformed")},
		{"tenant re-encoded in the key", envoyRequest("GET", api, "/me", "x-api-key",
			storetest.FixtureKeyString(storetest.FixtureKey{Tenant: "globex", ID: "ciacmekeyaaaaaaa"})),
			denied(codes.Unauthenticated, 401, "apikey_invalid")},
		{"revoked key", envoyRequest("GET", api, "/me", "x-api-key", w.keys["acme/revoked"]), denied(codes.Unauthenticated, 401, "apikey_revoked")},
		{"unsupported scheme", envoyRequest("GET", api, "/me", "authorization", "Basic YTpi"), denied(codes.Unauthenticated, 401, "unsupported_credential")},
		{"malformed bearer", envoyRequest("GET", api, "/me", "authorization", "Bearer a b"), denied(codes.Unauthenticated, 401, "bearer_malformed")},
		{"no permission", envoyRequest("GET", api, "/admin/users", "x-api-key", ci), denied(codes.PermissionDenied, 403, "permission_denied")},
		{"no rule", envoyRequest("GET", api, "/nowhere", "x-api-key", ci), denied(codes.PermissionDenied, 403, "no_route")},
		{"encoded slash", envoyRequest("GET", api, "/public%2F..%2Fadmin", "x-api-key", ci), denied(codes.InvalidArgument, 400, "path_invalid")},
		{"no HTTP attributes (L4 filter)", &authv3.CheckRequest{Attributes: &authv3.AttributeContext{}}, denied(codes.InvalidArgument, 400, "request_invalid")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, w.check(t, tt.req)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckRawHeaderMap(t *testing.T) {
	w := newWorld(t, nil)
	req := envoyRequest("GET", api, "/spaces/proj1/datasets/7")
	h := req.Attributes.Request.Http
	h.Headers = nil
	h.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":path", RawValue: []byte("/spaces/proj1/datasets/7")},
		{Key: "X-Api-Key", RawValue: []byte(w.keys["acme/ci"])},
		{Key: "x-usher-subject", RawValue: []byte("root")},
	}}
	want := allowed("apikey:ciacmekeyaaaaaaa", "acme", "editors", "x-api-key")
	if diff := cmp.Diff(want, w.check(t, req)); diff != "" {
		t.Errorf("raw header map (-want +got):\n%s", diff)
	}
	// Repeated raw headers are joined with ",", as Envoy joins them.
	h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: "x-api-key", Value: w.keys["acme/ci"]})
	if diff := cmp.Diff(denied(codes.Unauthenticated, 401, "apikey_malformed"), w.check(t, req)); diff != "" {
		t.Errorf("repeated raw header (-want +got):\n%s", diff)
	}
}

// TestCheckStoreDownNothingCached covers catalogue rows 85, 111 (docs/catalogue-map.md).
func TestCheckStoreDownNothingCached(t *testing.T) {
	w := newWorld(t, nil)
	w.st.Fail.Store(true)
	got := w.check(t, envoyRequest("GET", api, "/me", "x-api-key", w.keys["acme/ci"]))
	if diff := cmp.Diff(denied(codes.Unavailable, 503, "store_unavailable"), got); diff != "" {
		t.Errorf("store down (-want +got):\n%s", diff)
	}
}

// deadlineDecider records the deadline each Check hands the decision.
type deadlineDecider struct {
	envoy.Decider
	budget chan time.Duration // time left when the decision started
}

func (d deadlineDecider) Check(ctx context.Context, r *authz.Request) authz.Decision {
	if dl, ok := ctx.Deadline(); ok {
		d.budget <- time.Until(dl)
	} else {
		d.budget <- -1
	}
	return d.Decider.Check(ctx, r)
}

// TestCheckSlowStoreDeniesBeforeEnvoyGivesUp: a store slower than the
// per-Check deadline gets a 503 timeout from usher within that deadline,
// well before Envoy's own 200 ms ext_authz timeout would turn it into
// Envoy's answer instead of usher's.
// Catalogue row 104 (docs/catalogue-map.md).
func TestCheckSlowStoreDeniesBeforeEnvoyGivesUp(t *testing.T) {
	budget := make(chan time.Duration, 2)
	w := newWorldTimeout(t, func(a *authz.Authorizer) envoy.Decider { return deadlineDecider{a, budget} }, 0)
	// Warm the connection, so the timing below is one Check's.
	if got := w.check(t, envoyRequest("GET", api, "/public/x")); got.HTTP != 200 {
		t.Fatalf("warm-up: %+v", got)
	}
	if b := <-budget; b <= 0 || b > envoy.DefaultTimeout {
		t.Errorf("the decision got %v to decide, want at most the check_timeout %v", b, envoy.DefaultTimeout)
	}
	w.st.Delay.Store(int64(time.Second))
	start := time.Now()
	got := w.check(t, envoyRequest("GET", api, "/me", "x-api-key", w.keys["acme/ci"]))
	elapsed := time.Since(start)
	<-budget
	if diff := cmp.Diff(denied(codes.Unavailable, 503, "timeout"), got); diff != "" {
		t.Errorf("slow store (-want +got):\n%s", diff)
	}
	// Envoy's default ext_authz timeout: past it, usher's answer is lost.
	const envoyTimeout = 200 * time.Millisecond
	if elapsed >= envoyTimeout {
		t.Errorf("answered after %v, past Envoy's %v timeout; the per-Check deadline is %v", elapsed, envoyTimeout, envoy.DefaultTimeout)
	}
}

type panicDecider struct{}

func (panicDecider) Check(context.Context, *authz.Request) authz.Decision { panic("boom") }

// TestCheckPanicDenies covers catalogue row 85 (docs/catalogue-map.md).
func TestCheckPanicDenies(t *testing.T) {
	w := newWorld(t, func(*authz.Authorizer) envoy.Decider { return panicDecider{} })
	got := w.check(t, envoyRequest("GET", api, "/public/x"))
	if diff := cmp.Diff(answer{Code: codes.Internal, HTTP: 500, Body: `{"error":"internal"}`}, got); diff != "" {
		t.Errorf("panic (-want +got):\n%s", diff)
	}
}

// TestCheckExpiryBoundaryWhileCached covers catalogue row 7 (docs/catalogue-map.md).
func TestCheckExpiryBoundaryWhileCached(t *testing.T) {
	w := newWorld(t, nil)
	req := envoyRequest("GET", api, "/me", "x-api-key", w.keys["acme/expiring"])
	w.clock.Set(storetest.Epoch.Add(time.Hour - time.Millisecond))
	if got := w.check(t, req); got.HTTP != 200 {
		t.Fatalf("1ms before expiry: %+v", got)
	}
	w.clock.Set(storetest.Epoch.Add(time.Hour))
	if diff := cmp.Diff(denied(codes.Unauthenticated, 401, "apikey_expired"), w.check(t, req)); diff != "" {
		t.Errorf("at expiry (-want +got):\n%s", diff)
	}
	if n := w.st.KeyReads.Load(); n != 1 {
		t.Errorf("%d key reads; the expired key must be refused from the cache", n)
	}
}

// TestCheckRotationWithGrace covers catalogue row 118 (docs/catalogue-map.md).
func TestCheckRotationWithGrace(t *testing.T) {
	w := newWorld(t, nil)
	storetest.Follow(t, w.a, w.st.Store, 10*time.Millisecond)

	old := w.keys["acme/ci"]
	req := func(key string) *authv3.CheckRequest { return envoyRequest("GET", api, "/me", "x-api-key", key) }
	if got := w.check(t, req(old)); got.HTTP != 200 {
		t.Fatalf("before rotation: %+v", got)
	}
	rec, err := w.st.APIKeyRecord(t.Context(), "ciacmekeyaaaaaaa")
	if err != nil {
		t.Fatal(err)
	}
	nk, err := authz.GenerateAPIKey("acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.st.RotateAPIKey(t.Context(), rec, storeKey(nk, w.clock.Now().Add(24*time.Hour)), time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return w.check(t, req(nk.Key)).HTTP == 200 }, "the new key to work")
	if got := w.check(t, req(old)); got.HTTP != 200 {
		t.Errorf("old key within the grace period: %+v", got)
	}
	w.clock.Advance(time.Hour)
	if diff := cmp.Diff(denied(codes.Unauthenticated, 401, "apikey_expired"), w.check(t, req(old))); diff != "" {
		t.Errorf("old key after the grace period (-want +got):\n%s", diff)
	}
	if got := w.check(t, req(nk.Key)); got.HTTP != 200 {
		t.Errorf("new key after the grace period: %+v", got)
	}
}

// TestCheckRevocationReachesServerWithinBound covers catalogue rows 8, 121
// (docs/catalogue-map.md).
func TestCheckRevocationReachesServerWithinBound(t *testing.T) {
	w := newWorld(t, nil)
	storetest.Follow(t, w.a, w.st.Store, 500*time.Millisecond)

	req := envoyRequest("GET", api, "/me", "x-api-key", w.keys["acme/ci"])
	if got := w.check(t, req); got.HTTP != 200 {
		t.Fatalf("before revocation: %+v", got)
	}
	if _, err := w.st.RevokeAPIKey(t.Context(), "acme", "ciacmekeyaaaaaaa"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return w.check(t, req).HTTP == 401 }, "the revocation")
}

// waitFor polls cond for up to 2s, the documented bound on change
// propagation.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s did not happen within 2s", what)
}

func storeKey(nk authz.NewAPIKey, expires time.Time) store.APIKey {
	return store.APIKey{ID: nk.ID, Hash: nk.Hash, ExpiresAt: expires}
}

// TestCheckConcurrentAnswers sends denials (whose headers and body are
// shared between responses) and allows from many callers at once: run with
// -race, it proves that marshalling shared parts of responses concurrently
// is safe, and every caller still gets its own answer.
func TestCheckConcurrentAnswers(t *testing.T) {
	w := newWorld(t, nil)
	cases := []struct {
		req  *authv3.CheckRequest
		want answer
	}{
		{envoyRequest("GET", api, "/me"), denied(codes.Unauthenticated, 401, "credential_missing")},
		{envoyRequest("GET", api, "/admin/users", "x-api-key", w.keys["acme/ci"]), denied(codes.PermissionDenied, 403, "permission_denied")},
		{envoyRequest("GET", api, "/spaces/proj1/datasets/7", "x-api-key", w.keys["acme/ci"]),
			allowed("apikey:ciacmekeyaaaaaaa", "acme", "editors", "x-api-key")},
	}
	// Warm the caches first: a cold store read under -race on a busy
	// machine may pass the 150 ms per-Check deadline, which is not what
	// this test is about.
	for _, c := range cases {
		w.check(t, c.req)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 30 {
				c := cases[(g+i)%len(cases)]
				resp, err := w.client.Check(context.Background(), c.req)
				if err != nil {
					t.Errorf("Check: %v", err)
					return
				}
				if diff := cmp.Diff(c.want, answerOf(resp)); diff != "" {
					t.Errorf("answer (-want +got):\n%s", diff)
					return
				}
			}
		})
	}
	wg.Wait()
}

// sampleRules are the shipped sample rules, envoy/examples/rules.yaml.
func sampleRules(t testing.TB) *authz.Rules {
	t.Helper()
	data, err := os.ReadFile("examples/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := authz.ParseRules("examples/rules.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}
