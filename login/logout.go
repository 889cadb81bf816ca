package login

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// signedOutPath is where the IdP sends the browser back after
// RP-initiated logout (post_logout_redirect_uri); register it at the IdP.
const signedOutPath = "/signed-out"

// logoutStateTTL bounds the trip through the IdP's logout page.
const logoutStateTTL = 10 * time.Minute

// logout signs the person out: the cookie is cleared and the session
// revoked (every server denies it within the change feed's bound); then
// the browser goes to the IdP's end_session_endpoint when it has one
// (RP-initiated logout with id_token_hint and post_logout_redirect_uri),
// else to a validated next, else to the signed-out page.
//
// A GET that another site started (Sec-Fetch-Site: cross-site) gets a
// confirmation page with a POST form instead (row 44); a cross-site POST
// is refused.
func (a *App) logout(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var next string
	if r.Method == http.MethodPost {
		if err := a.checkSameSite(r); err != nil {
			return err
		}
		if err := r.ParseForm(); err != nil {
			return &appError{status: http.StatusBadRequest, code: "request_invalid", msg: "The form could not be read.", err: err}
		}
		next = r.PostForm.Get("next")
	} else {
		next = r.URL.Query().Get("next")
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			v, _ := ValidateNext(next, a.cfg.RootDomain)
			targets := a.appOrigins()
			if s, err := a.currentSession(ctx, r); err == nil {
				if ps, err := a.providers(ctx, s.Tenant); err == nil {
					targets = a.formTargets(ctx, ps)
				}
			}
			a.render(w, r, http.StatusOK, "logout_confirm", map[string]any{"Next": v}, targets...)
			return nil
		}
	}
	next, nextOK := ValidateNext(next, a.cfg.RootDomain)
	a.clearSessionCookie(w)
	s, err := a.currentSession(ctx, r)
	var endSession string
	if err == nil {
		if err := a.d.Sessions.RevokeSession(ctx, s.Tenant, s.ID); err != nil {
			return storeError(err)
		}
		a.d.Log.InfoContext(ctx, "logout", "request_id", requestID(ctx), "tenant", s.Tenant, "session", s.ID)
		endSession = a.endSessionURL(r, s.Tenant, s.Provider, s.ID, s.IDToken, next)
	} else if e := (*appError)(nil); errors.As(err, &e) && e.status >= 500 {
		return err
	}
	switch {
	case endSession != "":
		http.Redirect(w, r, endSession, http.StatusFound) //nolint:gosec // the IdP's end_session_endpoint from discovery
	case nextOK:
		http.Redirect(w, r, next, http.StatusFound) //nolint:gosec // next passed ValidateNext
	default:
		a.render(w, r, http.StatusOK, "signed_out", nil)
	}
	return nil
}

// endSessionURL is the IdP's RP-initiated logout URL for the session's
// provider, with the ID token as hint and the next URL carried in a MACed
// state, or "" when the IdP has none.
func (a *App) endSessionURL(r *http.Request, tenant, typ, sessionID, sealedIDToken, next string) string {
	p, err := a.lookup(r.Context(), tenant, typ)
	if err != nil {
		return ""
	}
	var hint string
	if sealedIDToken != "" {
		if b, err := a.d.Seal.Open(sealedIDToken, sealAAD(sessionID, "id_token")); err == nil {
			hint = string(b)
		}
	}
	u := p.EndSessionURL(hint, a.cfg.LoginURL+signedOutPath)
	if u == "" {
		return ""
	}
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	q := pu.Query()
	q.Set("state", a.logoutState(next))
	pu.RawQuery = q.Encode()
	return pu.String()
}

func (a *App) logoutKey() []byte {
	m := hmac.New(sha256.New, a.cfg.SessionKey)
	m.Write([]byte("usher logout state v1"))
	return m.Sum(nil)
}

type logoutState struct {
	Next    string `json:"nx"`
	Expires int64  `json:"e"`
}

func (a *App) logoutState(next string) string {
	b, _ := json.Marshal(logoutState{Next: next, Expires: a.d.Now().Add(logoutStateTTL).Unix()})
	p := base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, a.logoutKey())
	m.Write([]byte(p))
	return p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signedOut is where the IdP returns after logout: to the next carried in
// the MACed state when it is valid (checked again), else the signed-out
// page.
func (a *App) signedOut(w http.ResponseWriter, r *http.Request) error {
	st := r.URL.Query().Get("state")
	if p, mac, ok := strings.Cut(st, "."); ok && len(st) < maxFlowCookieLen {
		m := hmac.New(sha256.New, a.logoutKey())
		m.Write([]byte(p))
		want := base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		var ls logoutState
		if hmac.Equal([]byte(mac), []byte(want)) {
			if b, err := base64.RawURLEncoding.DecodeString(p); err == nil && json.Unmarshal(b, &ls) == nil &&
				a.d.Now().Before(time.Unix(ls.Expires, 0)) {
				if next, ok := ValidateNext(ls.Next, a.cfg.RootDomain); ok {
					http.Redirect(w, r, next, http.StatusFound)
					return nil
				}
			}
		}
	}
	a.render(w, r, http.StatusOK, "signed_out", nil)
	return nil
}
