package envoy_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
	"github.com/usher-dev/usher/internal/testclock"
	"github.com/usher-dev/usher/store/storetest"
)

// memSessions holds login sessions in memory (the store's sessions are
// another package's work).
type memSessions struct {
	mu sync.Mutex
	m  map[string]authz.Session
}

func (s *memSessions) Session(_ context.Context, id string) (authz.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok {
		return authz.Session{}, fmt.Errorf("session %s: %w", id, authz.ErrNotFound)
	}
	return v, nil
}

// newCookieWorld is newWorld with the session cookie on, and the handle of
// one session of alice in acme with the seat editors.
func newCookieWorld(t testing.TB) (*world, string) {
	t.Helper()
	clock := testclock.New(storetest.Epoch)
	st := &storetest.Faulty{Store: storetest.Open(t, clock.Now)}
	keys := storetest.Seed(t, st.Store)
	rules := sampleRules(t)
	n, err := authz.GenerateSessionHandle("acme")
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	ms := &memSessions{m: map[string]authz.Session{n.ID: {ID: n.ID, Tenant: "acme", Issuer: "https://idp.example.test",
		Subject: "alice-sub", Email: "alice@example.test", Seats: []string{"editors"}, Hash: n.Hash,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(12 * time.Hour)}}}
	a, err := authz.New(authz.Config{Rules: rules, Keys: st, Seats: st, Cache: authz.DefaultCacheConfig(), Now: clock.Now,
		Sessions: ms, Cookie: authz.CookieConfig{Enabled: true, RootDomain: "example.test", LoginURL: "https://auth.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return &world{client: serveGRPC(t, &envoy.Server{Decider: a, Realm: "usher"}), a: a, st: st, keys: keys, clock: clock}, n.Handle
}

// TestSessionCookieUpstream: through gRPC, an allowed cookie request sets
// the Cookie header without the session cookie (overwriting the client's),
// or removes the header when nothing else is left; a browser navigation
// without a session gets a 302 to log in; everything else the 401 JSON.
func TestSessionCookieUpstream(t *testing.T) {
	w, h := newCookieWorld(t)
	const path = "/spaces/proj1/datasets/7?page=2"
	identity := map[string]string{
		"x-usher-subject": "alice-sub", "x-usher-tenant": "acme", "x-usher-email": "alice@example.test",
		"x-usher-auth": "cookie", "x-usher-issuer": "https://idp.example.test", "x-usher-space": "proj1", "x-usher-seats": "editors",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range identity {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	login := "https://auth.example.test/login?next=" + url.QueryEscape("https://"+api+path)
	for _, tt := range []struct {
		name    string
		method  string
		headers []string
		want    answer
		loc     string
	}{
		{"other cookies go through", "GET", []string{"cookie", "theme=dark; usher_session=" + h + "; lang=en"},
			answer{Code: codes.OK, HTTP: 200, Set: with(map[string]string{"cookie": "theme=dark; lang=en"})}, ""},
		{"the only cookie is removed", "GET", []string{"cookie", "usher_session=" + h},
			answer{Code: codes.OK, HTTP: 200, Set: identity, Remove: []string{"cookie"}}, ""},
		{"api key decides, the cookie is stripped", "GET", []string{"x-api-key", w.keys["acme/ci"], "cookie", "usher_session=" + h + "; a=1"},
			answer{Code: codes.OK, HTTP: 200, Set: map[string]string{
				"x-usher-subject": "apikey:ciacmekeyaaaaaaa", "x-usher-tenant": "acme", "x-usher-auth": "apikey",
				"x-usher-space": "proj1", "x-usher-seats": "editors", "cookie": "a=1"}, Remove: []string{"x-api-key"}}, ""},
		{"duplicate", "GET", []string{"cookie", "usher_session=" + h + "; usher_session=" + h},
			denied(codes.Unauthenticated, 401, "session_duplicate"), ""},
		{"csrf", "POST", []string{"cookie", "usher_session=" + h, "origin", "https://evil.test"},
			answer{Code: codes.PermissionDenied, HTTP: 403, Body: `{"error":"csrf"}`}, ""},
		{"navigation without a credential", "GET", []string{"sec-fetch-mode", "navigate"},
			answer{Code: codes.Unauthenticated, HTTP: 302}, login},
		{"navigation with a bad session", "GET", []string{"accept", "text/html", "cookie", "usher_session=us_1"},
			answer{Code: codes.Unauthenticated, HTTP: 302}, login},
		{"script without a credential", "GET", []string{"accept", "text/html", "x-requested-with", "XMLHttpRequest"},
			denied(codes.Unauthenticated, 401, "credential_missing"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := w.client.Check(t.Context(), envoyRequest(tt.method, api, path, tt.headers...))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, answerOf(resp)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			var loc, cache string
			for _, hv := range resp.GetDeniedResponse().GetHeaders() {
				switch hv.GetHeader().GetKey() {
				case "location":
					loc = hv.GetHeader().GetValue()
				case "cache-control":
					cache = hv.GetHeader().GetValue()
				}
			}
			if loc != tt.loc {
				t.Errorf("location %q, want %q", loc, tt.loc)
			}
			if tt.want.HTTP != 200 && cache != "no-store" {
				t.Errorf("cache-control %q, want no-store", cache)
			}
			if r := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue(); tt.loc != "" && r == "" {
				t.Error("a redirect without its reason in the metadata")
			}
		})
	}
}
