package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/usher-dev/usher/authz"
)

// maxHandleLen caps the session cookie's value before parsing.
const maxHandleLen = 256

// setSessionCookie sets the session cookie: the opaque handle only, on
// the root domain (host-only for an IP or localhost), Path=/, Secure
// (except on a plain-http loopback login URL), HttpOnly, SameSite=Lax,
// expiring with the session's absolute expiry.
func (a *App) setSessionCookie(w http.ResponseWriter, handle string, expires time.Time, now time.Time) {
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // Secure is off only on a plain-http loopback login URL (Config.InsecureLoopback)
		Name:     a.cfg.CookieName,
		Value:    handle,
		Domain:   a.cfg.cookieDomain(),
		Path:     "/",
		MaxAge:   int(expires.Sub(now).Seconds()),
		Secure:   !a.cfg.InsecureLoopback(),
		HttpOnly: true,
		SameSite: sameSiteLax,
	})
}

// clearSessionCookie removes the session cookie (same name, domain and
// path, so that the browser replaces it).
func (a *App) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // Secure is off only on a plain-http loopback login URL (Config.InsecureLoopback)
		Name: a.cfg.CookieName, Value: "", Domain: a.cfg.cookieDomain(), Path: "/", MaxAge: -1,
		Secure: !a.cfg.InsecureLoopback(), HttpOnly: true, SameSite: sameSiteLax,
	})
}

var (
	errSessionMissing = &appError{status: http.StatusUnauthorized, code: "session_missing", msg: "You are not signed in."}
	errSessionInvalid = &appError{status: http.StatusUnauthorized, code: "session_invalid", msg: "Your session is not valid; sign in again."}
	errSessionExpired = &appError{status: http.StatusUnauthorized, code: "session_expired", msg: "Your session has expired; sign in again."}
	errSessionRevoked = &appError{status: http.StatusUnauthorized, code: "session_revoked", msg: "You were signed out; sign in again."}
	errCookieDup      = &appError{status: http.StatusUnauthorized, code: "cookie_duplicate", msg: "Your browser sent two session cookies; sign in again."}
)

// currentSession reads the session cookie and returns its live session.
// Two session cookies are refused, never "first wins"
// (docs/security-catalogue.md row 35).
func (a *App) currentSession(ctx context.Context, r *http.Request) (authz.Session, error) {
	cs := r.CookiesNamed(a.cfg.CookieName)
	switch {
	case len(cs) == 0:
		return authz.Session{}, errSessionMissing
	case len(cs) > 1:
		return authz.Session{}, errCookieDup
	}
	h := cs[0].Value
	if len(h) > maxHandleLen {
		return authz.Session{}, errSessionInvalid
	}
	p, err := authz.ParseSessionHandle(h)
	if err != nil {
		return authz.Session{}, errSessionInvalid
	}
	s, err := a.d.Sessions.Session(ctx, p.ID)
	if errors.Is(err, authz.ErrNotFound) {
		return authz.Session{}, errSessionInvalid
	}
	if err != nil {
		return authz.Session{}, storeError(err)
	}
	if s.Tenant != p.Tenant || s.Hash == (authz.KeyHash{}) || !s.Hash.Equal(authz.HashAPIKey(h)) {
		return authz.Session{}, errSessionInvalid
	}
	now := a.d.Now()
	switch {
	case !s.RevokedAt.IsZero():
		return authz.Session{}, errSessionRevoked
	case !now.Before(s.ExpiresAt), !now.Before(s.LastSeenAt.Add(a.cfg.IdleTTL)):
		return authz.Session{}, errSessionExpired
	}
	return s, nil
}

func storeError(err error) error {
	return &appError{status: http.StatusServiceUnavailable, code: "store_unavailable", msg: "The login service is unavailable; try again shortly.", err: err}
}

// whoamiResponse is GET /whoami: who the session is, never a token.
type whoamiResponse struct {
	Subject       string    `json:"subject"`
	Email         string    `json:"email"`
	Name          string    `json:"name,omitempty"`
	Tenant        string    `json:"tenant"`
	Seats         []string  `json:"seats"`
	Provider      string    `json:"provider"`
	ExpiresAt     time.Time `json:"expires_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
}

// whoami answers the current session as JSON, and slides its idle expiry.
func (a *App) whoami(w http.ResponseWriter, r *http.Request) error {
	// The session cookie, or an usher access token (the CLI's usher
	// whoami): its session must be live, so a revoked login shows.
	s, _, err := a.keysCaller(r)
	if err != nil {
		return err
	}
	now := a.d.Now()
	if err := a.d.Sessions.TouchSessions(r.Context(), map[string]time.Time{s.ID: now}); err != nil {
		a.d.Log.WarnContext(r.Context(), "touch session", "session", s.ID, "err", err)
	} else {
		s.LastSeenAt = now
	}
	seats := s.Seats
	if seats == nil {
		seats = []string{}
	}
	writeJSON(w, http.StatusOK, whoamiResponse{
		Subject: s.Subject, Email: s.Email, Name: s.Name, Tenant: s.Tenant, Seats: seats, Provider: s.Provider,
		ExpiresAt: s.ExpiresAt.UTC(), IdleExpiresAt: minTime(s.ExpiresAt, s.LastSeenAt.Add(a.cfg.IdleTTL)).UTC(),
	})
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// home is the login app's own page: who is signed in, or the login page.
func (a *App) home(w http.ResponseWriter, r *http.Request) error {
	s, err := a.currentSession(r.Context(), r)
	if err != nil {
		var e *appError
		if errors.As(err, &e) && e.status == http.StatusUnauthorized {
			return a.loginPage(w, r)
		}
		return err
	}
	ps, err := a.providers(r.Context(), s.Tenant)
	if err != nil {
		return err
	}
	a.render(w, r, http.StatusOK, "home", map[string]any{
		"Email": s.Email, "Name": s.Name, "Tenant": s.Tenant, "Seats": s.Seats, "ExpiresAt": s.ExpiresAt.UTC().Format(time.RFC1123),
	}, a.formTargets(r.Context(), ps)...)
	return nil
}

// Reasons a person may not log in, as appErrors.
var (
	errEmailUnverified = &appError{status: http.StatusForbidden, code: "email_unverified", msg: "Your identity provider did not confirm your email address."}
	errEmailDomain     = &appError{status: http.StatusForbidden, code: "email_domain_not_allowed", msg: "Your email address is not in a domain allowed to sign in."}
	errNotInvited      = &appError{status: http.StatusForbidden, code: "not_invited", msg: "You have not been given access; ask an administrator to invite you."}
)

// ErrDomainNotAllowed is what the default email check answers for an
// address outside the allowed domains.
var ErrDomainNotAllowed = errors.New("email domain not allowed")

// admit applies the login rules to a verified identity: a verified email,
// an allowed domain, and then AllowAllUsers, an invitation, or groups
// matching a seat. It returns the groups believed (none on overage) and
// the seats the person gets.
func (a *App) admit(ctx context.Context, tenant string, id Identity) (groups, seats []string, err error) {
	if !id.EmailVerified || id.Email == "" {
		return nil, nil, errEmailUnverified
	}
	if err := a.d.CheckEmail(id.Email, a.cfg.AllowedDomains); err != nil {
		return nil, nil, &appError{status: errEmailDomain.status, code: errEmailDomain.code, msg: errEmailDomain.msg, err: err}
	}
	if !id.GroupsOverage {
		groups = id.Groups
	}
	all, err := a.d.Seats.Seats(ctx, tenant)
	if err != nil {
		return nil, nil, storeError(fmt.Errorf("list seats: %w", err))
	}
	// Login maps a group to a seat by the seat's name or one of its
	// group aliases (issue 9): the operator chose the login IdP.
	seats = authz.SeatsForGroups(all, groups, true)
	inv, err := a.d.Users.Invitation(ctx, tenant, strings.ToLower(id.Email))
	invited := err == nil
	if err != nil && !errors.Is(err, authz.ErrNotFound) {
		return nil, nil, storeError(fmt.Errorf("read invitation: %w", err))
	}
	if invited {
		seats = append(seats, inv.Seats...)
		slices.Sort(seats)
		seats = slices.Compact(seats)
	}
	if !a.cfg.AllowAllUsers && !invited && len(seats) == 0 {
		return nil, nil, errNotInvited
	}
	if seats == nil {
		seats = []string{}
	}
	return groups, seats, nil
}

// checkEmailStrict is the default email check: one plain address
// (no quotes, comments, display name, white space or non-ASCII), whose
// domain, lower-cased, equals an allowed domain exactly.
func checkEmailStrict(email string, allowed []string) error {
	if len(email) > 254 {
		return errors.New("email address too long")
	}
	for i := 0; i < len(email); i++ {
		c := email[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),:;<>[\\]", c) >= 0 {
			return fmt.Errorf("email address has the character %q", c)
		}
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || strings.Contains(domain, "@") {
		return errors.New("not a single email address")
	}
	domain = strings.ToLower(domain)
	if !validHost(domain) {
		return errors.New("email domain is not a domain name")
	}
	for _, d := range allowed {
		if domain == strings.ToLower(d) {
			return nil
		}
	}
	return ErrDomainNotAllowed
}

// sealAAD binds a sealed IdP token to its session and purpose.
func sealAAD(sessionID, what string) []byte { return []byte("login/session/" + sessionID + "/" + what) }

// newSession records the user and creates a new session for them: a new
// id always (authz.GenerateSessionHandle), never a handle the browser
// had. With cookie false it is an API client's refresh family, with no
// handle. The IdP's refresh and ID tokens are sealed.
func (a *App) newSession(ctx context.Context, p Provider, tenant string, id Identity, groups, seats []string, cookie bool) (authz.Session, string, error) {
	now := a.d.Now()
	// The seats-shrink rule (keys.go): the person's keys never carry
	// more than the seats this login gives them.
	if err := a.trimKeys(ctx, tenant, id.Email, seats, false); err != nil {
		return authz.Session{}, "", err
	}
	if _, err := a.d.Users.UpsertUser(ctx, User{
		Tenant: tenant, Issuer: id.Issuer, Subject: id.Subject, Email: strings.ToLower(id.Email), Name: id.Name,
		Groups: groups, FirstLogin: now, LastLogin: now,
	}); err != nil {
		return authz.Session{}, "", storeError(fmt.Errorf("upsert user: %w", err))
	}
	h, err := authz.GenerateSessionHandle(tenant)
	if err != nil {
		return authz.Session{}, "", fmt.Errorf("new session: %w", err)
	}
	s := authz.Session{
		ID: h.ID, Tenant: tenant, Issuer: id.Issuer, Subject: id.Subject, Email: strings.ToLower(id.Email), Name: id.Name,
		Seats: seats, Groups: groups, Provider: p.Type(),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(a.cfg.SessionTTL), GroupsCheckedAt: now,
	}
	if cookie {
		s.Hash = h.Hash
	}
	if id.RefreshToken != "" {
		if s.IDPRefresh, err = a.d.Seal.Seal([]byte(id.RefreshToken), sealAAD(s.ID, "idp_refresh")); err != nil {
			return authz.Session{}, "", fmt.Errorf("seal IdP refresh token: %w", err)
		}
	}
	if id.IDToken != "" {
		if s.IDToken, err = a.d.Seal.Seal([]byte(id.IDToken), sealAAD(s.ID, "id_token")); err != nil {
			return authz.Session{}, "", fmt.Errorf("seal ID token: %w", err)
		}
	}
	if err := a.d.Sessions.CreateSession(ctx, s); err != nil {
		return authz.Session{}, "", storeError(fmt.Errorf("create session: %w", err))
	}
	if !cookie {
		return s, "", nil
	}
	return s, h.Handle, nil
}

// checkSameSite refuses a state-changing request another site sent: a
// Sec-Fetch-Site of cross-site, or an Origin that is not on the root
// domain (docs/security-catalogue.md row 38). Clients that send neither
// (curl, the CLI) are not browsers and carry no ambient cookie risk.
func (a *App) checkSameSite(r *http.Request) error {
	refuse := &appError{status: http.StatusForbidden, code: "csrf", msg: "This request came from another site and was refused."}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return refuse
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	if o == origin(a.cfg.LoginURL) {
		return nil
	}
	// A browser sends Origin: null on a POST from a page whose
	// Referrer-Policy is no-referrer, as the login app's pages are, even
	// to the page's own origin: believe its Sec-Fetch-Site (a header
	// pages cannot set) that the form is the login app's own.
	if o == "null" && r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || !onDomain(strings.ToLower(u.Hostname()), a.cfg.RootDomain) {
		return refuse // also "null" (a sandboxed or opaque origin)
	}
	return nil
}
