package testidp

import (
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The real provider's browser-login client and its users' password.
const (
	RealLoginClientID     = "usher-login"
	RealLoginClientSecret = "usher-login-secret"
	RealPassword          = "secret"
)

// The real provider's users (testdata/idp/server.mjs): their login name
// is their subject.
//
//	alice    alice@acme.test    verified  groups editors
//	bob      bob@acme.test      verified  groups viewers
//	mallory  mallory@evil.test  verified  groups editors
//	carol    carol@acme.test    email_verified false, groups viewers
const (
	RealAlice   = "alice"
	RealBob     = "bob"
	RealMallory = "mallory"
	RealCarol   = "carol"
)

// LoginOptions configure the real provider's login client.
type LoginOptions struct {
	// RedirectURIs are the client's redirect URIs (at least one);
	// PostLogoutRedirectURIs those RP-initiated logout may return to.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// Env adds settings of server.mjs: "ID_TOKEN_TTL=5",
	// "USERS={...}", "PASSWORD=…".
	Env []string
}

// StartRealLogin runs the real OpenID provider with its login client
// usher-login (RealLoginClientID, RealLoginClientSecret): authorization
// code with PKCE S256, refresh tokens, RP-initiated logout at the
// discovery's end_session_endpoint, and a login form for its users
// (RealAlice …, password RealPassword).
func StartRealLogin(t testing.TB, opts LoginOptions) *Real {
	t.Helper()
	if len(opts.RedirectURIs) == 0 {
		t.Fatal("StartRealLogin: no redirect URIs")
	}
	env := append([]string{
		"REDIRECT_URIS=" + strings.Join(opts.RedirectURIs, ","),
		"POST_LOGOUT_REDIRECT_URIS=" + strings.Join(opts.PostLogoutRedirectURIs, ","),
	}, opts.Env...)
	return startReal(t, env...)
}

var (
	loginActionRE  = regexp.MustCompile(`action="(/interaction/[^"/]+/login)"`)
	logoutActionRE = regexp.MustCompile(`<form[^>]*id="op\.logoutForm"[^>]*action="([^"]+)"`)
	xsrfRE         = regexp.MustCompile(`name="xsrf" value="([^"]+)"`)
)

// ErrLoginRefused: the provider's login form refused the user and
// password.
var ErrLoginRefused = errors.New("the OpenID provider refused the login")

// LoginForm logs user in (password RealPassword) as a browser would,
// with client's cookie jar: it opens authURL (the provider's
// authorization URL a relying party redirected to), fills the login form
// unless the provider still has a session, and returns the URL the
// provider redirects back to (redirect_uri?code=…&state=…&iss=…) without
// following it.
func (r *Real) LoginForm(client *http.Client, authURL, user string) (callbackURL string, err error) {
	return r.LoginFormPassword(client, authURL, user, RealPassword)
}

// LoginFormPassword is LoginForm with another password. A refused login
// is an error wrapping ErrLoginRefused.
func (r *Real) LoginFormPassword(client *http.Client, authURL, user, password string) (callbackURL string, err error) {
	c := r.stayOnProvider(client)
	resp, body, err := fetch(c, http.MethodGet, authURL, nil)
	if err != nil {
		return "", err
	}
	if back := r.leaving(resp); back != "" {
		return back, nil // the provider remembered the session
	}
	m := loginActionRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return "", fmt.Errorf("authorization request: %s, no login form: %.300s", resp.Status, body)
	}
	form := url.Values{"login": {user}, "password": {password}}
	resp, body, err = fetch(c, http.MethodPost, r.Issuer+html.UnescapeString(m[1]), form)
	if err != nil {
		return "", err
	}
	if back := r.leaving(resp); back != "" {
		return back, nil
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return "", fmt.Errorf("login of %q: %w", user, ErrLoginRefused)
	}
	return "", fmt.Errorf("login of %q: %s, no redirect back: %.300s", user, resp.Status, body)
}

// Logout opens endSessionURL (RP-initiated logout, with its id_token_hint
// and post_logout_redirect_uri), confirms the sign-out as a person would,
// and returns where the provider sends the browser next: the post-logout
// redirect URI (not followed), or "" when it shows its own signed-out
// page.
func (r *Real) Logout(client *http.Client, endSessionURL string) (redirect string, err error) {
	c := r.stayOnProvider(client)
	resp, body, err := fetch(c, http.MethodGet, endSessionURL, nil)
	if err != nil {
		return "", err
	}
	action, xsrf := logoutActionRE.FindStringSubmatch(body), xsrfRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || action == nil || xsrf == nil {
		return "", fmt.Errorf("end session: %s, no logout form: %.300s", resp.Status, body)
	}
	target, err := resp.URL.Parse(html.UnescapeString(action[1]))
	if err != nil {
		return "", err
	}
	form := url.Values{"xsrf": {html.UnescapeString(xsrf[1])}, "logout": {"yes"}}
	resp, body, err = fetch(c, http.MethodPost, target.String(), form)
	if err != nil {
		return "", err
	}
	if back := r.leaving(resp); back != "" {
		return back, nil
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("confirm sign-out: %s: %.300s", resp.Status, body)
	}
	return "", nil
}

// Disable makes user unknown to the provider (its refresh tokens are then
// refused, as after an account is deleted); Enable undoes it.
func (r *Real) Disable(t testing.TB, user string) { r.admin(t, "disable", user, nil) }

// Enable makes a disabled user known again.
func (r *Real) Enable(t testing.TB, user string) { r.admin(t, "enable", user, nil) }

// SetGroups changes user's groups in the tokens issued from now on.
func (r *Real) SetGroups(t testing.TB, user string, groups ...string) {
	r.admin(t, "groups", user, url.Values{"groups": {strings.Join(groups, ",")}})
}

func (r *Real) admin(t testing.TB, what, user string, q url.Values) {
	t.Helper()
	if q == nil {
		q = url.Values{}
	}
	q.Set("user", user)
	resp, err := http.Post(r.Issuer+"/admin/"+what+"?"+q.Encode(), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("admin %s %s: %s", what, user, resp.Status)
	}
}

// stayOnProvider copies client (its jar too) to follow redirects only
// while they stay on the provider.
func (r *Real) stayOnProvider(client *http.Client) *http.Client {
	c := *client
	host := strings.TrimPrefix(r.Issuer, "http://")
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != host {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("more than 10 redirects on the provider")
		}
		return nil
	}
	return &c
}

// leaving returns the absolute URL of a redirect off the provider, or "".
func (r *Real) leaving(p page) string {
	if p.StatusCode < 300 || p.StatusCode > 399 || p.Location == nil || p.Location.Host == strings.TrimPrefix(r.Issuer, "http://") {
		return ""
	}
	return p.Location.String()
}

// page is a response read and closed.
type page struct {
	StatusCode int
	Status     string
	URL        *url.URL // of the request that answered
	Location   *url.URL // of a redirect, resolved; nil when none
}

// fetch makes a request (a form POST when form is not nil) and reads
// the body.
func fetch(c *http.Client, method, target string, form url.Values) (page, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		return page{}, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		return page{}, "", fmt.Errorf("%s %s: %w", method, target, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return page{}, "", fmt.Errorf("%s %s: %w", method, target, err)
	}
	p := page{StatusCode: resp.StatusCode, Status: resp.Status, URL: resp.Request.URL}
	if loc, err := resp.Location(); err == nil {
		p.Location = loc
	}
	return p, string(b), nil
}
