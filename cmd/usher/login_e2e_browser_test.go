package main

import (
	"context"
	"flag"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/usher-dev/usher/internal/checkclient"
	"github.com/usher-dev/usher/internal/testbrowser"
	"github.com/usher-dev/usher/internal/testidp"
)

// screenshots, when set, is where TestLoginEndToEndBrowser writes the
// README's screenshots (docs/img): go test ./cmd/usher -run
// TestLoginEndToEndBrowser -login-screenshots ../../docs/img
var screenshots = flag.String("login-screenshots", "", "write the login, error and signed-out pages as PNG files to this directory")

// browserStep bounds each browser step.
const browserStep = 30 * time.Second

// gateway plays Envoy in front of an app: every request is sent to s's
// Check over gRPC as Envoy's ext_authz filter would; a denial is answered
// as Check says (status, headers such as location, body), an allowed
// request reaches the "app", a page naming the person from the headers
// usher added.
func gateway(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := checkclient.Request{Method: r.Method, Scheme: "http", Host: r.Host, Path: r.URL.RequestURI()}
		for name, values := range r.Header {
			req.Headers = append(req.Headers, checkclient.Header{Name: strings.ToLower(name), Value: strings.Join(values, ",")})
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		resp, err := s.client.Check(ctx, req.CheckRequest())
		if err != nil {
			http.Error(w, "ext_authz: "+err.Error(), http.StatusForbidden)
			return
		}
		res := decodeCheck(resp)
		if res.status != http.StatusOK {
			for k, v := range res.headers {
				w.Header().Set(k, v)
			}
			w.WriteHeader(res.status)
			_, _ = io.WriteString(w, resp.GetDeniedResponse().GetBody())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!DOCTYPE html><title>App</title><p id="who">`+html.EscapeString(res.headers["x-usher-email"])+
			`</p><p id="auth">`+html.EscapeString(res.headers["x-usher-auth"])+`</p>`)
	})
}

// TestLoginEndToEndBrowser is the whole path in headless Chromium: the
// browser opens the protected app behind a gateway that asks server A's
// Check over gRPC, is sent to the login page, clicks the provider, signs
// in at the real IdP's form, comes back to the app signed in; the session
// cookie the browser holds (read over the DevTools protocol) is allowed by
// Check on A and B; signing out on the home page and at the IdP ends on
// the signed-out page, and B denies the cookie within 2 s.
//
// Catalogue rows 32 (the cookie replayed after logout) and 50 (a
// callback the browser did not start: an error page, no session).
func TestLoginEndToEndBrowser(t *testing.T) {
	app := httptest.NewUnstartedServer(nil)
	appHost := app.Listener.Addr().String()
	st := startLoginStack(t, appHost)
	app.Config.Handler = gateway(st.a)
	app.Start()
	t.Cleanup(app.Close)
	protected := "http://" + appHost + protectedPath

	ctx := testbrowser.New(t)
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		runStep(t, ctx, what, steps...)
	}
	text := func(sel string) string {
		t.Helper()
		return pageText(t, ctx, sel)
	}

	// The app sends the browser to the login page.
	step("open the protected app", chromedp.Navigate(protected), chromedp.WaitVisible(chromedp.CSS(`button[name="provider"]`)))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, st.loginURL+"/login?next=") {
		t.Fatalf("the browser is at %s, want the login page", loc)
	}
	shoot(t, ctx, "login-page.png")

	// The provider's button, then alice at the IdP's form.
	step("sign in at the IdP",
		chromedp.Click(chromedp.CSS(`button[name="provider"]`)),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#login"), testidp.RealAlice),
		chromedp.SendKeys(chromedp.CSS("#password"), testidp.RealPassword),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#who")),
	)
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != protected {
		t.Errorf("after login the browser is at %s, want %s", loc, protected)
	}
	if who, auth := text("#who"), text("#auth"); who != "alice@acme.test" || auth != "cookie" {
		t.Errorf("the app sees %q by %q, want alice@acme.test by cookie", who, auth)
	}

	// The browser's session cookie, read over the DevTools protocol.
	cookies, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{protected}})
		if err != nil {
			return nil, err
		}
		return res.Cookies, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var cookie string
	for _, c := range cookies {
		if c.Name == "usher_session" {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" {
				t.Errorf("session cookie in the browser: %+v, want HttpOnly, SameSite=Lax, Path=/", c)
			}
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		t.Fatalf("the browser holds no usher_session cookie: %v", cookies)
	}
	wantAllowed(t, "server A", checkAt(t, st.a, appHost, protectedPath, append(navigation, "cookie: "+cookie)...))
	wantAllowed(t, "server B", checkAt(t, st.b, appHost, protectedPath, "cookie: "+cookie))

	// Sign out on the home page; the IdP asks to confirm.
	step("sign out",
		chromedp.Navigate(st.loginURL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`button[name="logout"]`)),
	)
	deniedWithin2s(t, st.b, appHost, cookie)
	step("confirm at the IdP",
		chromedp.Click(chromedp.CSS(`button[name="logout"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/login"]`)),
	)
	if h := text("h1"); h != "You are signed out" {
		t.Errorf("after logout the page says %q", h)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, st.loginURL+"/signed-out") {
		t.Errorf("after logout the browser is at %s", loc)
	}
	shoot(t, ctx, "signed-out-page.png")

	// The app sends the signed-out browser to the login page again, once
	// A's change feed has the revocation too.
	deniedWithin2s(t, st.a, appHost, cookie)
	step("open the app signed out", chromedp.Navigate(protected), chromedp.WaitVisible(chromedp.CSS(`button[name="provider"]`)))

	// A callback the browser did not start: the error page.
	step("a stray callback", chromedp.Navigate(st.loginURL+"/auth/oidc/callback?code=stolen&state=forged"), chromedp.WaitVisible(chromedp.CSS("h1")))
	if h, page := text("h1"), text("main"); h != "We could not sign you in" || !strings.Contains(page, "Request id") {
		t.Errorf("error page: %q\n%s", h, page)
	}
	shoot(t, ctx, "error-page.png")
}

// shoot saves the page as a PNG under -login-screenshots, when set.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if *screenshots == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*screenshots, name), png, 0o644); err != nil { //nolint:gosec // documentation images
		t.Fatal(err)
	}
}

// runStep runs one bounded browser step, failing with where the browser
// is and what it shows.
func runStep(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, browserStep)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		page, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		t.Fatalf("%s: %v\nat %s\n%.2000s", what, err, loc, page)
	}
}

// pageText is the trimmed text of the element sel.
func pageText(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(v)
}
