package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/usher-dev/usher/authz"
)

// The OAuth 2.0 endpoints of public clients (the CLI): the server's
// metadata (RFC 8414), POST /oauth/token with the device-code and
// refresh-token grants, and revocation (RFC 7009). The request is parsed
// once (parseTokenRequest), the client checked once (publicClient), then
// one function per grant answers.

// MetadataPath is where the authorization server metadata is.
const MetadataPath = "/.well-known/oauth-authorization-server"

// GrantDeviceCode is RFC 8628's grant type.
const GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// metadata is RFC 8414 section 2, for what the login app serves.
type metadata struct {
	Issuer                      string   `json:"issuer"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
	TokenEndpoint               string   `json:"token_endpoint"`
	RevocationEndpoint          string   `json:"revocation_endpoint"`
	GrantTypesSupported         []string `json:"grant_types_supported"`
	// ResponseTypesSupported is empty: there is no authorization
	// endpoint for clients (the device grant needs none).
	ResponseTypesSupported        []string `json:"response_types_supported"`
	TokenEndpointAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported"`
}

func (a *App) metadata(w http.ResponseWriter, _ *http.Request) error {
	base := a.cfg.LoginURL
	writeJSON(w, http.StatusOK, metadata{
		Issuer:                        base,
		DeviceAuthorizationEndpoint:   base + "/oauth/device/code",
		TokenEndpoint:                 base + "/oauth/token",
		RevocationEndpoint:            base + "/oauth/revoke",
		GrantTypesSupported:           []string{GrantDeviceCode, "refresh_token"},
		ResponseTypesSupported:        []string{},
		TokenEndpointAuthMethods:      []string{"none"},
		RevocationEndpointAuthMethods: []string{"none"},
		CodeChallengeMethodsSupported: []string{"S256"},
	})
	return nil
}

func invalidClient(msg string) error {
	return oauthErr(http.StatusUnauthorized, "invalid_client", "client_invalid", msg, nil)
}

// publicClient checks the client of a request: named, registered, and
// presenting no secret (every client is public; a secret sent anyway is
// refused rather than ignored, so a confidential client's
// misconfiguration shows).
func (a *App) publicClient(ctx context.Context, req tokenRequest) (Client, error) {
	if req.ClientID == "" {
		return Client{}, invalidRequest("client_id is required.", nil)
	}
	c, err := a.d.Clients.Client(ctx, req.ClientID)
	if errors.Is(err, authz.ErrNotFound) {
		return Client{}, invalidClient("The client is not registered.")
	}
	if err != nil {
		return Client{}, storeError(fmt.Errorf("look up client: %w", err))
	}
	if req.SecretSent {
		return Client{}, invalidClient("A public client has no secret; send none.")
	}
	return c, nil
}

// token is POST /oauth/token.
func (a *App) token(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	req, err := parseTokenRequest(r)
	if err != nil {
		return err
	}
	if req.GrantType == "" {
		return invalidRequest("grant_type is required.", nil)
	}
	c, err := a.publicClient(ctx, req)
	if err != nil {
		return err
	}
	var resp tokenResponse
	switch req.GrantType {
	case GrantDeviceCode:
		resp, err = a.grantDeviceCode(ctx, req, c)
	case "refresh_token":
		resp, err = a.grantRefresh(ctx, req, c)
	default:
		return oauthErr(http.StatusBadRequest, "unsupported_grant_type", "grant_type_unsupported", "That grant type is not supported.", nil)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func deviceGrantErr(oauth, msg string) error {
	return oauthErr(http.StatusBadRequest, oauth, oauth, msg, nil)
}

// grantDeviceCode answers a device's poll (RFC 8628 section 3.5):
// pending (slow_down when it polls too fast), denied, expired, or once
// the tokens of a new refresh family of the person who approved.
func (a *App) grantDeviceCode(ctx context.Context, req tokenRequest, c Client) (tokenResponse, error) {
	if req.DeviceCode == "" {
		return tokenResponse{}, invalidRequest("device_code is required.", nil)
	}
	invalid := invalidGrant("device_code_invalid", "The device code is not valid.", nil)
	if len(req.DeviceCode) > maxDeviceCodeLen {
		return tokenResponse{}, invalid
	}
	now := a.d.Now()
	d, err := a.d.DeviceCodes.DeviceCode(ctx, authz.HashAPIKey(req.DeviceCode))
	switch {
	case errors.Is(err, authz.ErrNotFound):
		return tokenResponse{}, invalid
	case err != nil:
		return tokenResponse{}, storeError(fmt.Errorf("look up device code: %w", err))
	case d.ClientID != c.ID: // catalogue row 79
		return tokenResponse{}, invalid
	case !d.RedeemedAt.IsZero():
		return tokenResponse{}, invalidGrant("device_code_redeemed", "The device code was already used.", nil)
	case !now.Before(d.ExpiresAt):
		return tokenResponse{}, deviceGrantErr("expired_token", "The device code has expired; start again.")
	case d.Decision == nil:
		interval := d.Interval
		fast := !d.LastPollAt.IsZero() && now.Sub(d.LastPollAt) < interval-pollTolerance
		if fast {
			interval += DeviceSlowDown
		}
		if err := a.d.DeviceCodes.PollDeviceCode(ctx, d.Hash, now, interval); err != nil {
			return tokenResponse{}, storeError(fmt.Errorf("record poll: %w", err))
		}
		if fast {
			return tokenResponse{}, deviceGrantErr("slow_down", fmt.Sprintf("Polling too fast; wait %d seconds between polls.", int(interval/time.Second)))
		}
		return tokenResponse{}, deviceGrantErr("authorization_pending", "Waiting for a person to approve the request.")
	case !d.Decision.Approved:
		return tokenResponse{}, deviceGrantErr("access_denied", "The request was denied.")
	}
	// A tenant without a signing key cannot be given tokens: answer 503
	// before the code is spent, so that a poll after `usher key rotate`
	// still redeems it.
	if _, err := a.d.SigningKeys.ActiveSigningKey(ctx, d.Decision.Tenant); err != nil {
		return tokenResponse{}, storeError(fmt.Errorf("signing key of %s: %w", d.Decision.Tenant, err))
	}
	won, err := a.d.DeviceCodes.RedeemDeviceCode(ctx, d.Hash, now)
	if err != nil {
		return tokenResponse{}, storeError(fmt.Errorf("redeem device code: %w", err))
	}
	if !won {
		return tokenResponse{}, invalidGrant("device_code_redeemed", "The device code was already used.", nil)
	}
	return a.deviceFamily(ctx, d, c, now)
}

// deviceFamily starts the refresh family of an approved device code: the
// approver's identity, tenant and seats, the client, a new id; and mints
// its first tokens. The approver's browser session must still be live.
// The family has no IdP refresh token (the browser session keeps its
// own), so its groups stay those of the approval; seats' permissions
// still change at once, and `usher user remove` or `usher session
// revoke` end it.
func (a *App) deviceFamily(ctx context.Context, d DeviceCode, c Client, now time.Time) (tokenResponse, error) {
	dec := d.Decision
	b, err := a.d.Sessions.Session(ctx, dec.SessionID)
	switch {
	case errors.Is(err, authz.ErrNotFound):
		return tokenResponse{}, invalidGrant("session_revoked", "The approval's sign-in ended; start again.", err)
	case err != nil:
		return tokenResponse{}, storeError(fmt.Errorf("load approver's session: %w", err))
	case b.Tenant != dec.Tenant || !b.RevokedAt.IsZero() || !now.Before(b.ExpiresAt):
		return tokenResponse{}, invalidGrant("session_revoked", "The approval's sign-in ended; start again.", nil)
	}
	h, err := authz.GenerateSessionHandle(b.Tenant)
	if err != nil {
		return tokenResponse{}, fmt.Errorf("new family: %w", err)
	}
	s := authz.Session{
		ID: h.ID, Tenant: b.Tenant, Issuer: b.Issuer, Subject: b.Subject, Email: b.Email, Name: b.Name,
		Seats: b.Seats, Groups: b.Groups, Provider: b.Provider, ClientID: c.ID,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(a.cfg.SessionTTL), GroupsCheckedAt: b.GroupsCheckedAt,
	}
	if err := a.d.Sessions.CreateSession(ctx, s); err != nil {
		return tokenResponse{}, storeError(fmt.Errorf("create family: %w", err))
	}
	a.d.Log.InfoContext(ctx, "device login", "request_id", requestID(ctx), "tenant", s.Tenant, "session", s.ID,
		"client", c.ID, "approved_in", dec.SessionID)
	return a.issueTokens(ctx, s)
}

// grantRefresh is the refresh-token grant: the same rotation as POST
// /auth/oidc/refresh, and a family started by a client is refreshed
// only by that client.
func (a *App) grantRefresh(ctx context.Context, req tokenRequest, c Client) (tokenResponse, error) {
	return a.rotate(ctx, req, c.ID)
}

// revoke is POST /oauth/revoke (RFC 7009): a refresh token ends its
// whole family, and with it the access tokens carrying its sid (within
// the change feed's bound). An unknown, invalid or already revoked token
// is a 200 all the same, as the RFC says; so is a token of another
// client's family, which is left alone.
func (a *App) revoke(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	req, err := parseTokenRequest(r)
	if err != nil {
		return err
	}
	if req.SecretSent {
		return invalidClient("A public client has no secret; send none.")
	}
	if req.ClientID != "" {
		if _, err := a.publicClient(ctx, req); err != nil {
			return err
		}
	}
	if req.Token == "" {
		return invalidRequest("token is required.", nil)
	}
	if req.TokenTypeHint == "access_token" || !validRefreshToken(req.Token) && req.TokenTypeHint != "refresh_token" && looksLikeJWT(req.Token) {
		return oauthErr(http.StatusBadRequest, "unsupported_token_type", "token_type_unsupported",
			"Revoke the refresh token; access tokens end with it.", nil)
	}
	if !validRefreshToken(req.Token) {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	c, err := a.d.RefreshTokens.ClaimRefreshToken(ctx, authz.HashAPIKey(req.Token), a.d.Now())
	switch {
	case errors.Is(err, authz.ErrNotFound):
		w.WriteHeader(http.StatusOK)
		return nil
	case err != nil:
		return storeError(fmt.Errorf("claim refresh token: %w", err))
	}
	s, err := a.d.Sessions.Session(ctx, c.Token.Family)
	switch {
	case errors.Is(err, authz.ErrNotFound):
		w.WriteHeader(http.StatusOK)
		return nil
	case err != nil:
		return storeError(fmt.Errorf("load family: %w", err))
	case s.Tenant != c.Token.Tenant || s.ClientID != "" && req.ClientID != "" && s.ClientID != req.ClientID:
		a.d.Log.WarnContext(ctx, "revocation of another client's token ignored", "request_id", requestID(ctx), "session", s.ID)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if err := a.d.Sessions.RevokeSession(ctx, s.Tenant, s.ID); err != nil {
		return storeError(fmt.Errorf("revoke family: %w", err))
	}
	a.d.Log.InfoContext(ctx, "refresh family revoked", "request_id", requestID(ctx), "tenant", s.Tenant, "session", s.ID)
	w.WriteHeader(http.StatusOK)
	return nil
}

func looksLikeJWT(t string) bool {
	n := 0
	for i := 0; i < len(t); i++ {
		if t[i] == '.' {
			n++
		}
	}
	return n == 2
}
