package login

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"time"

	"golang.org/x/oauth2"
)

// The browser flow: the login page, the start of a login and the callback.

// readier is a provider that must reach its IdP before it can build an
// authorization URL (OIDC discovery).
type readier interface {
	Ready(ctx context.Context) error
}

// issRequirer is a provider whose IdP declared that it always sends the
// iss parameter (RFC 9207 section 3).
type issRequirer interface {
	IssParameterRequired() bool
}

// ErrAccessDenied is what a provider wraps when its own policy refuses the
// person (GitHub organisations and teams, Google's hosted domain): 403
// provider_denied.
var ErrAccessDenied = errors.New("refused by the provider's policy")

func idpUnavailable(err error) error {
	return &appError{status: http.StatusServiceUnavailable, code: "idp_unavailable", msg: "The identity provider cannot be reached; try again shortly.", err: err}
}

type loginButton struct {
	Type, Label string
}

// loginPage shows the tenant's providers as buttons; each posts the form
// to POST /auth/oidc/login with provider, next and tenant.
func (a *App) loginPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	tenant, err := a.tenantParam(q.Get("tenant"))
	if err != nil {
		return err
	}
	ps, err := a.providers(r.Context(), tenant)
	if err != nil {
		return err
	}
	buttons := make([]loginButton, 0, len(ps))
	for _, p := range ps {
		buttons = append(buttons, loginButton{Type: p.Type(), Label: buttonLabel(p)})
	}
	next := nextOrDefault(q.Get("next"), a.cfg.RootDomain)
	a.render(w, r, http.StatusOK, "login", map[string]any{
		"Buttons": buttons, "Next": next, "Tenant": tenant, "NoProviders": len(buttons) == 0,
	}, a.formTargets(r.Context(), ps)...)
	return nil
}

// formTargets are the CSP form-action sources of a page whose forms end
// in a redirect (browsers check form-action on redirects too): the apps
// under the root domain, and each provider's authorization and
// end-session endpoints.
func (a *App) formTargets(ctx context.Context, ps []Provider) []string {
	targets := a.appOrigins()
	for _, p := range ps {
		if rd, ok := p.(readier); ok && rd.Ready(ctx) != nil {
			if o := origin(p.Issuer()); o != "" {
				targets = append(targets, o)
			}
			continue
		}
		for _, u := range []string{p.AuthCodeURL("x", "x", "x"), p.EndSessionURL("", "")} {
			if o := origin(u); o != "" && !slices.Contains(targets, o) {
				targets = append(targets, o)
			}
		}
	}
	return targets
}

func buttonLabel(p Provider) string {
	switch p.Type() {
	case "google":
		return "Continue with Google"
	case "github":
		return "Continue with GitHub"
	}
	return "Continue with " + p.Name()
}

// startLogin begins the authorization code flow: a new state, nonce and
// PKCE verifier in the flow cookie, then 302 to the IdP.
func (a *App) startLogin(w http.ResponseWriter, r *http.Request) error {
	if err := a.checkSameSite(r); err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return &appError{status: http.StatusBadRequest, code: "request_invalid", msg: "The form could not be read.", err: err}
	}
	tenant, err := a.tenantParam(r.PostForm.Get("tenant"))
	if err != nil {
		return err
	}
	p, err := a.lookup(r.Context(), tenant, r.PostForm.Get("provider"))
	if err != nil {
		return err
	}
	if rd, ok := p.(readier); ok {
		if err := rd.Ready(r.Context()); err != nil {
			return idpUnavailable(err)
		}
	}
	state, err := randomToken(32)
	if err != nil {
		return err
	}
	nonce, err := randomToken(32)
	if err != nil {
		return err
	}
	// 32 random bytes, S256 only (RFC 7636 section 4.1, row 52).
	verifier := oauth2.GenerateVerifier()
	target := p.AuthCodeURL(state, nonce, verifier)
	if target == "" {
		return idpUnavailable(errors.New("provider has no authorization URL yet"))
	}
	v, err := a.encodeFlow(flow{
		State: state, Nonce: nonce, Verifier: verifier, Type: p.Type(), Tenant: tenant, Issuer: p.Issuer(),
		Next:    nextOrDefault(r.PostForm.Get("next"), a.cfg.RootDomain),
		Expires: a.d.Now().Add(flowTTL).Unix(),
	})
	if err != nil {
		return err
	}
	a.setFlowCookie(w, v, int(flowTTL.Seconds()))
	http.Redirect(w, r, target, http.StatusFound) //nolint:gosec // the provider's own authorization URL, from configuration
	return nil
}

// Reasons of the callback, each a 400 unless said.
func callbackErr(code, msg string, err error) error {
	return &appError{status: http.StatusBadRequest, code: code, msg: msg, err: err}
}

const msgRestart = "This sign-in link is no longer valid. Start again from the sign-in page."

// maxCodeLen caps the authorization code.
const maxCodeLen = 2048

// callback finishes a login: the flow cookie and state (single use), the
// provider that started the flow and its iss (mix-up, RFC 9207), the code
// (single use) exchanged with the PKCE verifier, the ID token and nonce,
// the login rules; then a new session, its cookie, and 302 to next.
// Nothing the IdP sent in error parameters is shown or followed (row 68).
func (a *App) callback(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	now := a.d.Now()
	q := r.URL.Query()
	raw, err := a.readFlowCookie(r)
	a.clearFlowCookie(w)
	switch {
	case errors.Is(err, errFlowMissing):
		return callbackErr("flow_missing", msgRestart, err)
	case err != nil:
		return callbackErr("flow_invalid", msgRestart, err)
	}
	f, err := a.decodeFlow(raw, now)
	switch {
	case errors.Is(err, errFlowExpired):
		return callbackErr("flow_expired", "This sign-in took too long. Start again from the sign-in page.", err)
	case err != nil:
		return callbackErr("flow_invalid", msgRestart, err)
	}
	states := q["state"]
	switch {
	case len(states) == 0 || states[0] == "":
		return callbackErr("state_missing", msgRestart, nil)
	case len(states) > 1 || subtle.ConstantTimeCompare([]byte(states[0]), []byte(f.State)) != 1:
		return callbackErr("state_mismatch", msgRestart, nil)
	}
	first, err := a.d.Once.MarkOnce(ctx, "flow", f.State, time.Unix(f.Expires, 0))
	if err != nil {
		return storeError(err)
	}
	if !first {
		return callbackErr("flow_replayed", msgRestart, nil)
	}
	p, err := a.lookup(ctx, f.Tenant, f.Type)
	if err != nil {
		return err
	}
	// The provider that started the flow is the only one that may finish
	// it (mix-up, row 56): the same issuer as when it started, and the
	// iss parameter, when sent, equal to it.
	if p.Issuer() != f.Issuer {
		return callbackErr("provider_mismatch", msgRestart, errors.New("provider's issuer changed since the flow started"))
	}
	if iss, sent := q["iss"]; sent {
		if len(iss) != 1 || iss[0] != f.Issuer {
			return callbackErr("issuer_mismatch", "The sign-in response came from another identity provider.", nil)
		}
	} else if ir, ok := p.(issRequirer); ok && ir.IssParameterRequired() {
		return callbackErr("issuer_missing", "The sign-in response did not say which identity provider sent it.", nil)
	}
	if q.Get("error") != "" {
		return callbackErr("idp_error", "The identity provider did not sign you in. Start again from the sign-in page.", nil)
	}
	code := q.Get("code")
	if code == "" || len(q["code"]) > 1 || len(code) > maxCodeLen {
		return callbackErr("code_missing", msgRestart, nil)
	}
	sum := sha256.Sum256([]byte(f.Issuer + "\x00" + code))
	if first, err := a.d.Once.MarkOnce(ctx, "code", hex.EncodeToString(sum[:]), now.Add(flowTTL)); err != nil {
		return storeError(err)
	} else if !first {
		return callbackErr("code_replayed", msgRestart, nil)
	}
	id, err := p.Exchange(ctx, code, f.Verifier, f.Nonce)
	if err != nil {
		return identityError(err)
	}
	if id.Subject == "" {
		return identityError(&IDTokenError{errors.New("no subject")})
	}
	groups, seats, err := a.admit(ctx, f.Tenant, id)
	if err != nil {
		return err
	}
	s, handle, err := a.newSession(ctx, p, f.Tenant, id, groups, seats, true)
	if err != nil {
		return err
	}
	a.d.Log.InfoContext(ctx, "login", "request_id", requestID(ctx), "tenant", s.Tenant, "session", s.ID, "provider", s.Provider)
	a.setSessionCookie(w, handle, s.ExpiresAt, now)
	http.Redirect(w, r, nextOrDefault(f.Next, a.cfg.RootDomain), http.StatusFound)
	return nil
}

// identityError maps a provider's failure to a reason.
func identityError(err error) error {
	var (
		idErr *IDTokenError
		exErr *ExchangeError
	)
	switch {
	case errors.Is(err, ErrIdPUnavailable):
		return idpUnavailable(err)
	case errors.Is(err, errNonce):
		return &appError{status: http.StatusUnauthorized, code: "nonce_mismatch", msg: msgRestart, err: err}
	case errors.As(err, &idErr):
		return &appError{status: http.StatusUnauthorized, code: "id_token_invalid", msg: "The identity provider's answer did not verify.", err: err}
	case errors.As(err, &exErr):
		return &appError{status: http.StatusBadRequest, code: "code_exchange_failed", msg: msgRestart, err: err}
	case errors.Is(err, ErrAccessDenied):
		return &appError{status: http.StatusForbidden, code: "provider_denied", msg: "Your account at the identity provider is not allowed to sign in.", err: err}
	case errors.Is(err, errGroupsShape):
		return &appError{status: http.StatusUnauthorized, code: "groups_invalid", msg: "The identity provider sent groups usher cannot read.", err: err}
	}
	return &appError{status: http.StatusBadGateway, code: "idp_error", msg: "The identity provider's answer could not be used.", err: err}
}
