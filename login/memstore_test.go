package login_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
)

// memStore is the store's stand-in for the login app's unit tests: the
// storage interfaces in memory, with the same contract (ErrNotFound,
// exactly one winner per claim). store/ tests the real one on FerretDB.
type memStore struct {
	mu       sync.Mutex
	sessions map[string]authz.Session
	refresh  map[authz.KeyHash]login.RefreshToken
	consumed map[authz.KeyHash]time.Time
	users    map[string]login.User
	invites  map[string]login.Invitation
	marks    map[string]bool
	seats    []authz.Seat
	key      authz.SigningKey
	revoked  []string // session ids, in order
	failAll  error    // every call fails with it when set
}

func newMemStore(key authz.SigningKey, seats ...authz.Seat) *memStore {
	return &memStore{
		sessions: map[string]authz.Session{}, refresh: map[authz.KeyHash]login.RefreshToken{},
		consumed: map[authz.KeyHash]time.Time{}, users: map[string]login.User{},
		invites: map[string]login.Invitation{}, marks: map[string]bool{}, seats: seats, key: key,
	}
}

func notFound(what string) error { return fmt.Errorf("%s: %w", what, authz.ErrNotFound) }

func (m *memStore) Session(_ context.Context, id string) (authz.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failAll != nil {
		return authz.Session{}, m.failAll
	}
	s, ok := m.sessions[id]
	if !ok {
		return authz.Session{}, notFound("session " + id)
	}
	return s, nil
}

func (m *memStore) TouchSessions(_ context.Context, used map[string]time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, at := range used {
		if s, ok := m.sessions[id]; ok && at.After(s.LastSeenAt) {
			s.LastSeenAt = at
			m.sessions[id] = s
		}
	}
	return nil
}

func (m *memStore) CreateSession(_ context.Context, s authz.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s.ID]; ok {
		return fmt.Errorf("session %s exists", s.ID)
	}
	m.sessions[s.ID] = s
	return nil
}

func (m *memStore) UpdateSessionGroups(_ context.Context, id string, groups, seats []string, idpRefresh string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return notFound("session " + id)
	}
	s.Groups, s.Seats, s.IDPRefresh, s.GroupsCheckedAt = groups, seats, idpRefresh, at
	m.sessions[id] = s
	return nil
}

func (m *memStore) RevokeSession(_ context.Context, tenant, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok || s.Tenant != tenant {
		return notFound("session " + id)
	}
	if s.RevokedAt.IsZero() {
		s.RevokedAt = time.Now()
		m.sessions[id] = s
		m.revoked = append(m.revoked, id)
	}
	return nil
}

func (m *memStore) RevokeUserSessions(ctx context.Context, tenant, email string) (int, error) {
	n := 0
	for _, s := range m.snapshot() {
		if s.Tenant == tenant && s.Email == email && s.RevokedAt.IsZero() {
			if err := m.RevokeSession(ctx, tenant, s.ID); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func (m *memStore) ListSessions(_ context.Context, tenant, email string) ([]authz.Session, error) {
	var out []authz.Session
	for _, s := range m.snapshot() {
		if s.Tenant == tenant && (email == "" || s.Email == email) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (m *memStore) snapshot() []authz.Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]authz.Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, s)
	}
	return out
}

func (m *memStore) CreateRefreshToken(_ context.Context, t login.RefreshToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refresh[t.Hash] = t
	return nil
}

func (m *memStore) ClaimRefreshToken(_ context.Context, hash authz.KeyHash, now time.Time) (login.Refresh, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.refresh[hash]
	if !ok {
		return login.Refresh{}, notFound("refresh token")
	}
	if at, used := m.consumed[hash]; used {
		return login.Refresh{Token: t, ConsumedAt: at}, nil
	}
	m.consumed[hash] = now
	return login.Refresh{Token: t, ConsumedAt: now, Won: true}, nil
}

func userKey(tenant, iss, sub string) string { return tenant + "\x00" + iss + "\x00" + sub }

func (m *memStore) UpsertUser(_ context.Context, u login.User) (login.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := userKey(u.Tenant, u.Issuer, u.Subject)
	if old, ok := m.users[k]; ok {
		u.FirstLogin = old.FirstLogin
	}
	m.users[k] = u
	return u, nil
}

func (m *memStore) ListUsers(_ context.Context, tenant string) ([]login.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []login.User
	for _, u := range m.users {
		if u.Tenant == tenant {
			out = append(out, u)
		}
	}
	return out, nil
}

func (m *memStore) InviteUser(_ context.Context, inv login.Invitation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	inv.Email = strings.ToLower(inv.Email)
	m.invites[inv.Tenant+"\x00"+inv.Email] = inv
	return nil
}

func (m *memStore) Invitation(_ context.Context, tenant, email string) (login.Invitation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failAll != nil {
		return login.Invitation{}, m.failAll
	}
	inv, ok := m.invites[tenant+"\x00"+email]
	if !ok {
		return login.Invitation{}, notFound("invitation")
	}
	return inv, nil
}

func (m *memStore) RemoveUser(_ context.Context, tenant, email string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.invites, tenant+"\x00"+email)
	return nil
}

func (m *memStore) MarkOnce(_ context.Context, kind, key string, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := kind + "\x00" + key
	if m.marks[k] {
		return false, nil
	}
	m.marks[k] = true
	return true, nil
}

func (m *memStore) Seats(_ context.Context, tenant string) ([]authz.Seat, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failAll != nil {
		return nil, m.failAll
	}
	var out []authz.Seat
	for _, s := range m.seats {
		if s.Tenant == tenant {
			out = append(out, s)
		}
	}
	return out, nil
}

func (m *memStore) ActiveSigningKey(_ context.Context, tenant string) (authz.SigningKey, error) {
	if tenant != m.key.Tenant {
		return authz.SigningKey{}, notFound("signing key")
	}
	return m.key, nil
}

func (m *memStore) isRevoked(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Contains(m.revoked, id)
}

// Compile-time checks that memStore keeps the contract.
var (
	_ login.Sessions      = (*memStore)(nil)
	_ login.RefreshTokens = (*memStore)(nil)
	_ login.Users         = (*memStore)(nil)
	_ login.OnceMarks     = (*memStore)(nil)
	_ login.SeatLister    = (*memStore)(nil)
	_ login.SigningKeys   = (*memStore)(nil)
)
