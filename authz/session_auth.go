// Step 3, authenticate the session cookie: read the session by the id its
// handle carries (cached, like an API key), compare the handle's digest
// with the stored one in constant time, then refuse a revoked session, one
// past its absolute expiry, and one left unused longer than the idle TTL.
// Uses are noted and written to the store in batches, which slides the
// idle expiry. usher's access tokens minted from a session (their "sid")
// are checked against the same cache.

package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// sessionInfo is a cached session with the principal it authenticates.
type sessionInfo struct {
	Session
	principal principal
	// lastUsed is this server's latest use (unix nanoseconds), which
	// slides the idle expiry before the store hears of it.
	lastUsed atomic.Int64
}

func (s *sessionInfo) cost() int64 {
	p := &s.principal
	return int64(320 + len(p.id.Subject) + len(p.id.Email) + len(p.id.Issuer) + p.seats.cost())
}

// lastSeen is when the session was last used, by any server as far as the
// store knows, or by this one.
func (s *sessionInfo) lastSeen() time.Time {
	if t := s.lastUsed.Load(); t > s.LastSeenAt.UnixNano() {
		return time.Unix(0, t)
	}
	return s.LastSeenAt
}

func (a *Authorizer) loadSession(ctx context.Context, id string) (*sessionInfo, error) {
	s, err := a.sessionStore.Session(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load session %s: %w", id, err)
	}
	if s.ID != id {
		return nil, fmt.Errorf("load session %s: store returned session %s", id, s.ID)
	}
	seats := newSeatList(s.Tenant, slices.Clone(s.Seats))
	s.Seats = seats.names
	// Only what a decision reads is kept: the sealed IdP tokens stay in
	// the store.
	s.IDPRefresh, s.IDToken, s.Groups = "", "", nil
	info := &sessionInfo{
		Session: s,
		principal: principal{
			id:       Identity{Subject: s.Subject, Tenant: s.Tenant, Email: s.Email, Method: AuthCookie, Issuer: s.Issuer},
			seats:    seats,
			allSeats: seats.joined,
		},
	}
	// A use noted here but not yet written to the store still counts.
	if t := a.sessionUsage.pendingFor(id); !t.IsZero() {
		info.lastUsed.Store(t.UnixNano())
	}
	return info, nil
}

// authenticateSession verifies a session handle from the session cookie.
func (a *Authorizer) authenticateSession(ctx context.Context, c credential, now time.Time) (principal, Decision) {
	if len(c.value) > maxAPIKeyLen {
		return principal{}, Deny(ReasonSessionInvalid)
	}
	h := HashAPIKey(c.value)
	ps, known := a.parsedSessions.lookup(h)
	if !known {
		var err error
		if ps, err = ParseSessionHandle(c.value); err != nil {
			return principal{}, Deny(ReasonSessionInvalid)
		}
	}
	e, err := a.sessions.get(ctx, ps.ID, now)
	if err != nil {
		return principal{}, failureFrom(err, Decision{})
	}
	if e.absent {
		return principal{}, Deny(ReasonSessionInvalid)
	}
	s := e.val
	// The digest first, in constant time: only the holder of the handle
	// learns whether the session ended. A session without a cookie (an API
	// client's refresh family) has no digest and no handle matches it.
	if !h.Equal(s.Hash) || s.Hash == (KeyHash{}) || s.Tenant != ps.Tenant {
		return principal{}, Deny(ReasonSessionInvalid)
	}
	if !known {
		a.parsedSessions.remember(h, ps)
	}
	if d := a.sessionEnded(s, now); d.Status != 0 {
		return principal{}, d
	}
	a.touchSession(s, now)
	p := s.principal
	p.consumed = HeaderCookie
	return p, Decision{}
}

// sessionEnded denies a revoked session, one past its absolute expiry (a
// session without one never authenticates) and one idle for the idle TTL.
func (a *Authorizer) sessionEnded(s *sessionInfo, now time.Time) Decision {
	switch {
	case !s.RevokedAt.IsZero():
		return Deny(ReasonSessionRevoked)
	case !now.Before(s.ExpiresAt):
		return Deny(ReasonSessionExpired)
	case !now.Before(s.lastSeen().Add(a.cookie.IdleTTL)):
		return Deny(ReasonSessionExpired)
	}
	return Decision{}
}

// sessionLive checks the session an usher access token was minted from
// (its sid): a token of a revoked session, or of one that no longer
// exists or belongs to another tenant, is refused, so revoking a refresh
// family stops its access tokens at the next change-feed tick.
func (a *Authorizer) sessionLive(ctx context.Context, sid, tenant string, now time.Time) Decision {
	e, err := a.sessions.get(ctx, sid, now)
	if err != nil {
		return failureFrom(err, Decision{})
	}
	if e.absent || !e.val.RevokedAt.IsZero() || e.val.Tenant != tenant {
		return Deny(ReasonSessionRevoked)
	}
	return Decision{}
}

// touchSession notes a use of s: at once for this server's idle check,
// and for the next FlushUsage.
func (a *Authorizer) touchSession(s *sessionInfo, now time.Time) {
	last := s.lastUsed.Load()
	t := now.UnixNano()
	if t-last < int64(usageGranularity) || !s.lastUsed.CompareAndSwap(last, t) {
		return
	}
	if a.sessionUsage == nil {
		return
	}
	a.sessionUsage.note(s.ID, now)
}

// scanSessionCookies reads what the Cookie header holds of the session
// cookie, once per Check: authentication and the header sent upstream
// both use it. Nothing, with the cookie off.
func (a *Authorizer) scanSessionCookies(h map[string]string) sessionCookies {
	if !a.cookie.Enabled {
		return sessionCookies{}
	}
	v, ok := h[HeaderCookie]
	if !ok {
		return sessionCookies{}
	}
	return scanCookies(v, a.cookie.Name)
}

// sessionCredential is the session cookie as a credential: none, one, or
// a present but unusable one (two of them).
func sessionCredential(s *sessionCookies) credential {
	switch {
	case s.n == 0:
		return credential{}
	case s.n > 1:
		return credential{kind: credMalformed, header: HeaderCookie, reason: ReasonSessionDuplicate}
	}
	return credential{kind: credSession, value: s.value, header: HeaderCookie}
}

var errSessionsRequired = errors.New("authz: Sessions is required with the session cookie enabled")
