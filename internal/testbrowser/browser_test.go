package testbrowser_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/usher-dev/usher/internal/testbrowser"
)

// TestNewLoadsAPage loads a page from an httptest server, fills and
// submits its form, and reads the DOM the server's answer builds.
func TestNewLoadsAPage(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!DOCTYPE html><title>Form</title>
<form method="post" action="/hello"><input id="name" name="name"><button id="go">Go</button></form>`))
	})
	mux.HandleFunc("POST /hello", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "seen", Value: "1", Path: "/", HttpOnly: true})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!DOCTYPE html><title>Hello</title><p id="greeting">Hello, ` + r.FormValue("name") + `</p>`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	ctx := testbrowser.New(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.SendKeys(chromedp.CSS("#name"), "Alice"),
		chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS("#greeting")),
	); err != nil {
		t.Fatal(err)
	}
	greeting, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#greeting")))
	if err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if greeting != "Hello, Alice" || title != "Hello" || loc != srv.URL+"/hello" {
		t.Errorf("after submitting: greeting %q, title %q, location %q", greeting, title, loc)
	}
	// The HttpOnly cookie is kept but hidden from scripts.
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.cookie"))
	if err != nil || cookies != "" {
		t.Errorf("document.cookie = %q, %v; want the HttpOnly cookie hidden", cookies, err)
	}
}
