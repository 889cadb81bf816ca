package testbrowser_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/usher-dev/usher/internal/testbrowser"
	"github.com/usher-dev/usher/internal/testidp"
)

// TestRealProviderLoginInTheBrowser logs alice in at the real OpenID
// provider's login form in Chromium and sees the browser come back to
// the redirect URI with a code that the token endpoint redeems.
func TestRealProviderLoginInTheBrowser(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!DOCTYPE html><title>Back</title><p id="code">` + html.EscapeString(r.URL.Query().Get("code")) +
			`</p><p id="state">` + html.EscapeString(r.URL.Query().Get("state")) + `</p>`))
	})
	rp := httptest.NewServer(mux)
	t.Cleanup(rp.Close)
	real := testidp.StartRealLogin(t, testidp.LoginOptions{RedirectURIs: []string{rp.URL + "/callback"}})
	conf := oauth2.Config{
		ClientID: testidp.RealLoginClientID, ClientSecret: testidp.RealLoginClientSecret, RedirectURL: rp.URL + "/callback",
		Endpoint: oauth2.Endpoint{AuthURL: real.Issuer + "/auth", TokenURL: real.Issuer + "/token"},
		Scopes:   []string{"openid", "email"},
	}
	verifier := oauth2.GenerateVerifier()

	ctx := testbrowser.New(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier))),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#login"), testidp.RealAlice),
		chromedp.SendKeys(chromedp.CSS("#password"), testidp.RealPassword),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#code")),
	); err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, rp.URL+"/callback?") || u.Query().Get("state") != "st-1" {
		t.Fatalf("the browser ended at %q", loc)
	}
	tok, err := conf.Exchange(t.Context(), u.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("redeem the browser's code: %v", err)
	}
	if raw, _ := tok.Extra("id_token").(string); raw == "" {
		t.Error("no ID token")
	}
}
