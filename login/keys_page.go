package login

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"

	"github.com/usher-dev/usher/authz"
)

// The /keys page: a signed-in person names a key, picks an expiry and
// seats, sees the key once, lists and revokes their keys. Its forms carry
// a CSRF token bound to the session (an HMAC of the session id under a
// key derived from the session key) and are also refused from another
// site (checkSameSite).

// keyExpiries are the page's expiry choices.
var keyExpiries = []string{"7d", "30d", "90d", "365d"}

func (a *App) csrfToken(sessionID string) string {
	k := hmac.New(sha256.New, a.cfg.SessionKey)
	k.Write([]byte("usher keys csrf v1"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var errCSRF = &appError{status: http.StatusForbidden, code: "csrf", msg: "This form has expired or came from elsewhere; reload the page and try again."}

// keysForm authenticates a /keys form post: the session cookie, our own
// site, and the form's CSRF token for that session.
func (a *App) keysForm(r *http.Request) (authz.Session, error) {
	s, err := a.currentSession(r.Context(), r)
	if err != nil {
		return s, err
	}
	if err := a.checkSameSite(r); err != nil {
		return s, err
	}
	if err := r.ParseForm(); err != nil {
		return s, &appError{status: http.StatusBadRequest, code: "request_invalid", msg: "The form could not be read.", err: err}
	}
	got := r.PostForm["csrf"]
	if len(got) != 1 || !hmac.Equal([]byte(got[0]), []byte(a.csrfToken(s.ID))) {
		return s, errCSRF
	}
	return s, nil
}

// keysPage is GET /keys; a person not signed in goes through login first.
func (a *App) keysPage(w http.ResponseWriter, r *http.Request) error {
	s, err := a.currentSession(r.Context(), r)
	if err != nil {
		var e *appError
		if errors.As(err, &e) && e.status == http.StatusUnauthorized {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(a.cfg.LoginURL+"/keys"), http.StatusFound)
			return nil
		}
		return err
	}
	return a.renderKeys(w, r, s, http.StatusOK, nil)
}

// keysCreate is POST /keys: the page again, with the new key shown once.
func (a *App) keysCreate(w http.ResponseWriter, r *http.Request) error {
	s, err := a.keysForm(r)
	if err != nil {
		return err
	}
	k, plain, err := a.createKey(r.Context(), s, r.PostForm.Get("name"), r.PostForm.Get("expires_in"), r.PostForm["seat"])
	var e *appError
	if errors.As(err, &e) && e.status < 500 {
		return a.renderKeys(w, r, s, e.status, map[string]any{"Error": e.msg})
	}
	if err != nil {
		return err
	}
	return a.renderKeys(w, r, s, http.StatusCreated, map[string]any{"NewKey": plain, "NewName": a.view(k).Name})
}

// keysRevoke is POST /keys/{id}/revoke.
func (a *App) keysRevoke(w http.ResponseWriter, r *http.Request) error {
	s, err := a.keysForm(r)
	if err != nil {
		return err
	}
	if err := a.revokeKey(r.Context(), s, r.PathValue("id")); err != nil {
		return err
	}
	http.Redirect(w, r, "/keys", http.StatusSeeOther)
	return nil
}

func (a *App) renderKeys(w http.ResponseWriter, r *http.Request, s authz.Session, status int, data map[string]any) error {
	keys, err := a.ownKeys(r.Context(), s)
	if err != nil {
		return err
	}
	views := make([]keyView, 0, len(keys))
	for _, k := range keys {
		views = append(views, a.view(k))
	}
	if data == nil {
		data = map[string]any{}
	}
	data["Keys"] = views
	data["Seats"] = s.Seats
	data["Email"] = s.Email
	data["Tenant"] = s.Tenant
	data["CSRF"] = a.csrfToken(s.ID)
	data["Expiries"] = keyExpiries
	a.render(w, r, status, "keys", data)
	return nil
}
