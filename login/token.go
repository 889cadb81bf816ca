package login

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/usher-dev/usher/authz"
)

// The token endpoints of API clients: POST /auth/oidc/validate exchanges
// an IdP's ID token for usher's tokens, POST /auth/oidc/refresh rotates a
// refresh token (refresh.go). Both parse the request once into a
// tokenRequest and answer a tokenResponse or an OAuth error.

// tokenRequest is a token endpoint's request, from a form or a JSON body,
// parsed once (parseTokenRequest); each grant reads its own fields.
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	DeviceCode   string `json:"device_code"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	Tenant       string `json:"tenant"`
	// Token and TokenTypeHint are RFC 7009's revocation request.
	Token         string `json:"token"`
	TokenTypeHint string `json:"token_type_hint"`
	// SecretSent is true when the client presented a non-empty secret
	// (client_secret or HTTP Basic); a public client never may.
	SecretSent bool `json:"-"`
}

// tokenResponse is usher's tokens (RFC 6749 section 5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// maxTokenParam caps one parameter (an ID token) of a token request.
const maxTokenParam = 16 << 10

// oauthErr is an OAuth error (RFC 6749 section 5.2): error is the OAuth
// code, reason usher's own.
func oauthErr(status int, oauth, reason, msg string, err error) *appError {
	return &appError{status: status, oauth: oauth, code: reason, msg: msg, err: err}
}

func invalidRequest(msg string, err error) error {
	return oauthErr(http.StatusBadRequest, "invalid_request", "request_invalid", msg, err)
}

func invalidGrant(reason, msg string, err error) error {
	return oauthErr(http.StatusBadRequest, "invalid_grant", reason, msg, err)
}

// parseTokenRequest reads a form or a JSON object (by Content-Type); a
// parameter given twice is refused.
func parseTokenRequest(r *http.Request) (tokenRequest, error) {
	var req tokenRequest
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&req); err != nil {
			return req, invalidRequest("The body is not a JSON object of strings.", err)
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return req, invalidRequest("The form could not be read.", err)
		}
		for k, v := range r.PostForm {
			if len(v) > 1 {
				return req, invalidRequest(fmt.Sprintf("The parameter %s is given more than once.", k), nil)
			}
		}
		f := r.PostForm.Get
		req = tokenRequest{
			GrantType: f("grant_type"), ClientID: f("client_id"), ClientSecret: f("client_secret"),
			DeviceCode: f("device_code"), IDToken: f("id_token"), RefreshToken: f("refresh_token"),
			Scope: f("scope"), Tenant: f("tenant"), Token: f("token"), TokenTypeHint: f("token_type_hint"),
		}
	}
	for _, v := range []string{req.GrantType, req.ClientID, req.ClientSecret, req.DeviceCode, req.IDToken,
		req.RefreshToken, req.Scope, req.Tenant, req.Token, req.TokenTypeHint} {
		if len(v) > maxTokenParam {
			return req, invalidRequest("A parameter is too long.", nil)
		}
	}
	req.SecretSent = req.ClientSecret != ""
	// HTTP Basic client authentication (RFC 6749 section 2.3.1): the id
	// and secret are form-encoded. An empty secret is no secret (what
	// golang.org/x/oauth2 sends for a public client).
	if id, secret, ok := r.BasicAuth(); ok {
		uid, err1 := url.QueryUnescape(id)
		usecret, err2 := url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return req, invalidClient("The Authorization header could not be read.")
		}
		if req.ClientID != "" && req.ClientID != uid {
			return req, invalidRequest("Two different client ids were sent.", nil)
		}
		req.ClientID = uid
		req.SecretSent = req.SecretSent || usecret != ""
	}
	return req, nil
}

// validate exchanges an ID token of one of the tenant's providers for
// usher's tokens, under the browser flow's rules (verified email, allowed
// domain, access), and starts a refresh family. Each ID token is accepted
// once.
func (a *App) validate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	req, err := parseTokenRequest(r)
	if err != nil {
		return err
	}
	if req.IDToken == "" {
		return invalidRequest("id_token is required.", nil)
	}
	tenant, err := a.tenantParam(req.Tenant)
	if err != nil {
		return err
	}
	iss := unverifiedIssuer(req.IDToken)
	ps, err := a.providers(ctx, tenant)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ps, func(p Provider) bool { return iss != "" && p.Issuer() == iss })
	if i < 0 {
		return invalidGrant("issuer_unknown", "The ID token is not from a provider of this tenant.", nil)
	}
	p := ps[i]
	id, err := p.VerifyIDToken(ctx, req.IDToken)
	if errors.Is(err, ErrUnsupported) {
		return invalidRequest("This provider has no ID tokens.", err)
	}
	if err != nil {
		var e *appError
		if errors.As(identityError(err), &e) && e.status < 500 {
			return invalidGrant(e.code, "The ID token did not verify.", err)
		}
		return identityError(err)
	}
	sum := sha256.Sum256([]byte(req.IDToken))
	first, err := a.d.Once.MarkOnce(ctx, "id_token", hex.EncodeToString(sum[:]), a.d.Now().Add(24*time.Hour))
	if err != nil {
		return storeError(err)
	}
	if !first {
		return invalidGrant("id_token_replayed", "The ID token was already exchanged.", nil)
	}
	groups, seats, err := a.admit(ctx, tenant, id)
	if err != nil {
		return asAccessDenied(err)
	}
	s, _, err := a.newSession(ctx, p, tenant, id, groups, seats, false)
	if err != nil {
		return err
	}
	resp, err := a.issueTokens(ctx, s)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// asAccessDenied turns a login rule's 403 into OAuth's access_denied.
func asAccessDenied(err error) error {
	var e *appError
	if errors.As(err, &e) && e.status == http.StatusForbidden {
		return oauthErr(http.StatusForbidden, "access_denied", e.code, e.msg, e.err)
	}
	return err
}

// unverifiedIssuer reads iss from a JWT's payload without verifying it,
// only to choose the provider that then verifies it.
func unverifiedIssuer(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.Iss
}

// refreshPrefix marks usher's refresh tokens: "ur_" and 32 random bytes.
const refreshPrefix = "ur_"

func validRefreshToken(t string) bool {
	if !strings.HasPrefix(t, refreshPrefix) || len(t) != len(refreshPrefix)+43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(t[len(refreshPrefix):])
	return err == nil
}

// issueTokens mints an access token for the session's person (hash_perm
// from their seats, sid the session) and a new refresh token of its
// family.
func (a *App) issueTokens(ctx context.Context, s authz.Session) (tokenResponse, error) {
	now := a.d.Now()
	key, err := a.d.SigningKeys.ActiveSigningKey(ctx, s.Tenant)
	if err != nil {
		return tokenResponse{}, storeError(fmt.Errorf("signing key of %s: %w", s.Tenant, err))
	}
	all, err := a.d.Seats.Seats(ctx, s.Tenant)
	if err != nil {
		return tokenResponse{}, storeError(fmt.Errorf("list seats: %w", err))
	}
	ttl := min(a.cfg.AccessTokenTTL, a.d.Tokens.MaxTTL)
	claims := authz.AccessClaims{
		Email:        s.Email,
		IsSSO:        true,
		UserMetadata: authz.UserMetadata{Email: s.Email, Name: s.Name, Sub: s.Subject},
		HashPerm:     HashPerm(all, s.Seats),
		SessionID:    s.ID,
	}
	claims.Subject = s.Subject
	at, err := authz.MintAccessToken(a.d.Tokens, key, claims, now, ttl)
	if err != nil {
		return tokenResponse{}, fmt.Errorf("mint access token: %w", err)
	}
	rt, err := randomToken(32)
	if err != nil {
		return tokenResponse{}, err
	}
	rt = refreshPrefix + rt
	if err := a.d.RefreshTokens.CreateRefreshToken(ctx, RefreshToken{
		Hash: authz.HashAPIKey(rt), Family: s.ID, Tenant: s.Tenant, CreatedAt: now, ExpiresAt: s.ExpiresAt,
	}); err != nil {
		return tokenResponse{}, storeError(fmt.Errorf("store refresh token: %w", err))
	}
	return tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second), RefreshToken: rt}, nil
}

// HashPerm maps each space to one of the person's seats granting there
// (the token names one seat per space): for each space the seat whose
// grant there is widest (a "*" permission first, then the most
// permissions, then the first by name). Seats granting in every space
// ("*") go under "*".
func HashPerm(all []authz.Seat, seats []string) map[string]string {
	type pick struct {
		seat  string
		wide  bool
		perms int
	}
	best := map[string]pick{}
	names := slices.Sorted(slices.Values(seats))
	for _, name := range names {
		i := slices.IndexFunc(all, func(s authz.Seat) bool { return s.Name == name })
		if i < 0 {
			continue
		}
		for _, g := range all[i].Grants {
			c := pick{seat: name, wide: slices.Contains(g.Permissions, "*"), perms: len(g.Permissions)}
			b, ok := best[g.Space]
			if !ok || c.wide && !b.wide || c.wide == b.wide && c.perms > b.perms {
				best[g.Space] = c
			}
		}
	}
	out := make(map[string]string, len(best))
	for sp, p := range best {
		out[sp] = p.seat
	}
	return out
}
