package authz_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
)

// memSessions holds login sessions in memory: the store's session
// collection is another package's work, and Check only needs a lookup and
// a usage writer.
type memSessions struct {
	mu      sync.Mutex
	m       map[string]authz.Session
	loads   atomic.Int64
	touches atomic.Int64
}

func newMemSessions() *memSessions { return &memSessions{m: map[string]authz.Session{}} }

func (s *memSessions) Session(_ context.Context, id string) (authz.Session, error) {
	s.loads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok {
		return authz.Session{}, fmt.Errorf("session %s: %w", id, authz.ErrNotFound)
	}
	return v, nil
}

func (s *memSessions) TouchSessions(_ context.Context, used map[string]time.Time) error {
	s.touches.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range used {
		if v, ok := s.m[id]; ok && t.After(v.LastSeenAt) {
			v.LastSeenAt = t
			s.m[id] = v
		}
	}
	return nil
}

// edit changes a stored session, as the login app or the CLI would.
func (s *memSessions) edit(id string, f func(*authz.Session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[id]
	f(&v)
	s.m[id] = v
}

func (s *memSessions) get(id string) authz.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

const (
	testRootDomain = "example.test"
	testLoginURL   = "https://auth.example.test/"
	testIssuer     = "https://idp.example.test"
)

// withCookie turns the session cookie on, with sessions from ms.
func withCookie(ms *memSessions) func(*authz.Config) {
	return func(c *authz.Config) {
		c.Sessions, c.SessionUsage = ms, ms
		c.Cookie = authz.CookieConfig{Enabled: true, RootDomain: testRootDomain, LoginURL: testLoginURL}
	}
}

// cookieWorld is a world with the session cookie on.
type cookieWorld struct {
	*world
	ms *memSessions
}

func newCookieWorld(t testing.TB, tweak ...func(*authz.Config)) *cookieWorld {
	t.Helper()
	ms := newMemSessions()
	return &cookieWorld{world: newWorld(t, append([]func(*authz.Config){withCookie(ms)}, tweak...)...), ms: ms}
}

// login stores a new session of alice in tenant with seats, as the login
// app does at its callback, and returns its handle (the cookie's value)
// and id.
func (w *cookieWorld) login(t testing.TB, tenant string, seats ...string) (handle, id string) {
	t.Helper()
	n, err := authz.GenerateSessionHandle(tenant)
	if err != nil {
		t.Fatal(err)
	}
	now := w.clock.Now()
	w.ms.mu.Lock()
	w.ms.m[n.ID] = authz.Session{ID: n.ID, Tenant: tenant, Issuer: testIssuer, Subject: "alice-sub",
		Email: "alice@example.test", Name: "Alice", Seats: seats, Groups: []string{"g"}, Hash: n.Hash, Provider: "oidc",
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(12 * time.Hour), IDPRefresh: "sealed", IDToken: "sealed"}
	w.ms.mu.Unlock()
	return n.Handle, n.ID
}

// cookies is a Cookie header with the session cookie between two others.
func cookies(handle string) string {
	return "theme=dark; usher_session=" + handle + "; lang=en"
}

// identityHeaders collects what an allowed decision sets upstream.
func identityHeaders(d authz.Decision) map[string]string {
	m := map[string]string{}
	d.IdentityHeaders(func(k, v string) { m[k] = v })
	return m
}
