package authz_test

import (
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/testclock"
	"github.com/usher-dev/usher/store/storetest"
)

// The world every black-box test of Check runs in: the seeded embedded
// store (behind a fault injector), the rules below and a test clock.

const testRules = `
default: deny
rules:
  - path: /public/**
    public: true
  - host: api.example.test
    path: /spaces/{space}/datasets/**
    methods: [GET, HEAD]
    permission: datasets.read
  - path: /spaces/{space}/datasets/**
    methods: [POST, PUT, DELETE]
    permission: datasets.write
  - path: /me
    authenticated: true
  - path: /admin/**
    permission: admin
    space: ops
  - path: /projects/**
    permission: datasets.read
    space_header: x-space-id
`

type world struct {
	a     *authz.Authorizer
	st    *storetest.Faulty
	keys  storetest.Keys
	clock *testclock.Clock
}

func newWorld(t testing.TB, tweak ...func(*authz.Config)) *world {
	t.Helper()
	clock := testclock.New(storetest.Epoch)
	st := &storetest.Faulty{Store: storetest.Open(t, clock.Now)}
	keys := storetest.Seed(t, st.Store)
	rules, err := authz.ParseRules("test", []byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	cfg := authz.Config{Rules: rules, Keys: st, Seats: st, Usage: st.Store, SigningKeys: st.Store,
		Cache: authz.DefaultCacheConfig(), Now: clock.Now}
	for _, f := range tweak {
		f(&cfg)
	}
	a, err := authz.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return &world{a: a, st: st, keys: keys, clock: clock}
}

// outcome is what a test asserts of a decision.
type outcome struct {
	Status  int
	Reason  authz.Reason
	Subject string
	Tenant  string
	Auth    authz.AuthMethod
	Seats   string
	Remove  []string
}

func outcomeOf(d authz.Decision) outcome {
	return outcome{d.Status, d.Reason, d.Identity.Subject, d.Identity.Tenant, d.Identity.Method, d.Seats, d.Remove}
}

func get(host, path string, headers ...string) *authz.Request {
	return req("GET", host, path, headers...)
}

func req(method, host, path string, headers ...string) *authz.Request {
	r := &authz.Request{Method: method, Host: host, Path: path, Headers: map[string]string{}}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Headers[headers[i]] = headers[i+1]
	}
	return r
}

func (w *world) check(t *testing.T, r *authz.Request) authz.Decision {
	t.Helper()
	return w.a.Check(t.Context(), r)
}

// reencode returns key with its tenant replaced: same id and secret.
func reencode(t *testing.T, k storetest.FixtureKey, tenant string) string {
	t.Helper()
	plain := storetest.FixtureKeyString(k)
	re := storetest.FixtureKeyString(storetest.FixtureKey{Tenant: tenant, ID: k.ID})
	if re == plain {
		t.Fatal("re-encoding did not change the key")
	}
	return re
}

// waitFor polls cond for up to 2s, the bound on change propagation.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
