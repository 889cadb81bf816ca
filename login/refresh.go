package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/usher-dev/usher/authz"
)

// Refresh-token rotation (RFC 9700 section 4.14.2, rows 40–42): each
// refresh consumes the presented token with exactly one winner in the
// store and hands out a new pair. A loser within RefreshReuseGrace of the
// first consumption (two tabs, a retry after a lost answer) also gets a
// new pair; a later reuse is treated as theft and revokes the whole
// family, and with it every access token carrying its sid. The winner
// re-reads the person's groups from the IdP at most every GroupsRefresh;
// if the IdP refuses, or the person no longer passes the login rules,
// the family ends.

// errFamilyEnded is the answer after a family was ended.
func familyEnded(reason, msg string, err error) error {
	return invalidGrant(reason, msg, err)
}

// refresh is POST /auth/oidc/refresh; POST /oauth/token with
// grant_type=refresh_token is the other door to the same rotate.
func (a *App) refresh(w http.ResponseWriter, r *http.Request) error {
	req, err := parseTokenRequest(r)
	if err != nil {
		return err
	}
	resp, err := a.rotate(r.Context(), req, "")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// rotate consumes a refresh token and answers a new pair. clientID, when
// not empty, is the OAuth client asking: a family one client started is
// not refreshed by another.
func (a *App) rotate(ctx context.Context, req tokenRequest, clientID string) (tokenResponse, error) {
	fail := func(err error) (tokenResponse, error) { return tokenResponse{}, err }
	if req.RefreshToken == "" {
		return fail(invalidRequest("refresh_token is required.", nil))
	}
	if !validRefreshToken(req.RefreshToken) {
		return fail(invalidGrant("refresh_token_invalid", "The refresh token is not valid.", nil))
	}
	now := a.d.Now()
	c, err := a.d.RefreshTokens.ClaimRefreshToken(ctx, authz.HashAPIKey(req.RefreshToken), now)
	if errors.Is(err, authz.ErrNotFound) {
		return fail(invalidGrant("refresh_token_invalid", "The refresh token is not valid.", nil))
	}
	if err != nil {
		return fail(storeError(fmt.Errorf("claim refresh token: %w", err)))
	}
	if !now.Before(c.Token.ExpiresAt) {
		return fail(invalidGrant("refresh_token_expired", "The refresh token has expired; sign in again.", nil))
	}
	s, err := a.d.Sessions.Session(ctx, c.Token.Family)
	switch {
	case errors.Is(err, authz.ErrNotFound):
		return fail(invalidGrant("refresh_token_invalid", "The refresh token is not valid.", err))
	case err != nil:
		return fail(storeError(fmt.Errorf("load session: %w", err)))
	case s.Tenant != c.Token.Tenant:
		return fail(invalidGrant("refresh_token_invalid", "The refresh token is not valid.", errors.New("family of another tenant")))
	case !s.RevokedAt.IsZero():
		return fail(invalidGrant("session_revoked", "This sign-in was ended; sign in again.", nil))
	case !now.Before(s.ExpiresAt):
		return fail(invalidGrant("session_expired", "This sign-in has expired; sign in again.", nil))
	case clientID != "" && s.ClientID != "" && s.ClientID != clientID:
		return fail(invalidGrant("refresh_token_invalid", "The refresh token is not valid.", errors.New("family of another client")))
	}
	if !c.Won {
		if now.Sub(c.ConsumedAt) > a.cfg.RefreshReuseGrace {
			a.d.Log.WarnContext(ctx, "refresh token reused after the grace window: family revoked",
				"request_id", requestID(ctx), "tenant", s.Tenant, "session", s.ID, "consumed_at", c.ConsumedAt)
			if err := a.d.Sessions.RevokeSession(ctx, s.Tenant, s.ID); err != nil {
				return fail(storeError(fmt.Errorf("revoke family: %w", err)))
			}
			return fail(familyEnded("refresh_token_reused", "The refresh token was already used; sign in again.", nil))
		}
		// An honest race inside the grace window: a new pair of the same
		// family. Only the winner talks to the IdP.
	} else if s, err = a.refreshGroups(ctx, s, now); err != nil {
		return fail(err)
	}
	if err := a.d.Sessions.TouchSessions(ctx, map[string]time.Time{s.ID: now}); err != nil {
		return fail(storeError(fmt.Errorf("touch session: %w", err)))
	}
	return a.issueTokens(ctx, s)
}

// refreshGroups re-reads the person's identity and groups from the IdP
// when GroupsRefresh has passed since the last read, with the sealed IdP
// refresh token, and applies the login rules again. A family without an
// IdP refresh token (the IdP gave none) keeps the groups of its login;
// its seats' permissions still change at once. An IdP that cannot be
// reached is a 503 and leaves the family alone; an IdP that refuses, or a
// person who no longer passes the rules, ends it.
func (a *App) refreshGroups(ctx context.Context, s authz.Session, now time.Time) (authz.Session, error) {
	if now.Sub(s.GroupsCheckedAt) < a.cfg.GroupsRefresh || s.IDPRefresh == "" {
		return s, nil
	}
	end := func(reason string, cause error) (authz.Session, error) {
		a.d.Log.InfoContext(ctx, "refresh family ended", "request_id", requestID(ctx), "tenant", s.Tenant,
			"session", s.ID, "reason", reason, "err", cause)
		if err := a.d.Sessions.RevokeSession(ctx, s.Tenant, s.ID); err != nil {
			return s, storeError(fmt.Errorf("revoke family: %w", err))
		}
		return s, familyEnded(reason, "Your identity provider no longer confirms this sign-in; sign in again.", cause)
	}
	rt, err := a.d.Seal.Open(s.IDPRefresh, sealAAD(s.ID, "idp_refresh"))
	if err != nil {
		return end("idp_refresh_refused", err)
	}
	p, err := a.lookup(ctx, s.Tenant, s.Provider)
	if err != nil {
		var e *appError
		if errors.As(err, &e) && e.status >= 500 {
			return s, err
		}
		return end("idp_refresh_refused", err)
	}
	id, err := p.Refresh(ctx, string(rt))
	switch {
	case errors.Is(err, ErrIdPUnavailable):
		return s, oauthErr(http.StatusServiceUnavailable, "temporarily_unavailable", "idp_unavailable",
			"The identity provider cannot be reached; try again shortly.", err)
	case err != nil:
		return end("idp_refresh_refused", err)
	case id.Subject != "" && id.Subject != s.Subject:
		return end("idp_refresh_refused", errSubChanged)
	}
	if id.Email == "" {
		id.Email, id.EmailVerified = s.Email, true
	}
	groups, seats, err := a.admit(ctx, s.Tenant, id)
	if err != nil {
		var e *appError
		if errors.As(err, &e) && e.status == http.StatusForbidden {
			if err := a.trimKeys(ctx, s.Tenant, s.Email, nil, true); err != nil {
				return s, err
			}
			return end("access_revoked", err)
		}
		return s, err
	}
	sealed := s.IDPRefresh
	if id.RefreshToken != "" && id.RefreshToken != string(rt) {
		if sealed, err = a.d.Seal.Seal([]byte(id.RefreshToken), sealAAD(s.ID, "idp_refresh")); err != nil {
			return s, fmt.Errorf("seal IdP refresh token: %w", err)
		}
	}
	if err := a.d.Sessions.UpdateSessionGroups(ctx, s.ID, groups, seats, sealed, now); err != nil {
		return s, storeError(fmt.Errorf("update session groups: %w", err))
	}
	s.Groups, s.Seats, s.IDPRefresh, s.GroupsCheckedAt = groups, seats, sealed, now
	if err := a.trimKeys(ctx, s.Tenant, s.Email, seats, false); err != nil {
		return s, err
	}
	return s, nil
}
