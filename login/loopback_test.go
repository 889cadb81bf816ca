package login_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/usher-dev/usher/login"
)

// TestLoopbackLogin runs the login app over plain http on loopback with a
// cookie jar, as a developer's browser would: the flow cookie is then
// usher_flow (no __Host-, no Secure) and the session cookie host-only and
// not Secure, and the whole login, whoami and logout work.
// Catalogue row 36 (cookie attributes on plain-http loopback).
func TestLoopbackLogin(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	h := newHarness(t, func(c *login.Config) { c.RootDomain, c.LoginURL = "127.0.0.1", base })
	srv.Config.Handler = h.h
	srv.Start()
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if !strings.HasPrefix(r.URL.String(), base) {
			return http.ErrUseLastResponse // the test plays the IdP
		}
		return nil
	}}
	resp, err := client.PostForm(base+"/auth/oidc/login", url.Values{"provider": {"oidc"}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name != "usher_flow" || c.Secure {
			t.Errorf("flow cookie %+v: want usher_flow, not Secure, on plain-http loopback", c)
		}
	}
	au, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("start: %d %v", resp.StatusCode, err)
	}
	if got := au.Query().Get("redirect_uri"); got != base+login.CallbackPath {
		t.Errorf("redirect_uri %q", got)
	}
	_, q := h.idp.issueCode(t, au, alice)
	resp, err = client.Get(base + login.CallbackPath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "You are signed in") || !strings.Contains(string(body), alice.Email) {
		t.Fatalf("after login: %d %s", resp.StatusCode, body)
	}
	resp, err = client.Get(base + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami %d", resp.StatusCode)
	}
	resp, err = client.PostForm(base+"/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), h.idp.URL+"/session/end") {
		t.Fatalf("logout %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = client.Get(base + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("whoami after logout %d", resp.StatusCode)
	}
}
