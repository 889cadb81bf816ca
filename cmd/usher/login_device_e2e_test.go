package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usher-dev/usher/internal/testbrowser"
	"github.com/usher-dev/usher/internal/testidp"
)

// cliRun is one finished run of the CLI.
type cliRun struct {
	code           int
	stdout, stderr string
}

// userCLI runs the real binary as a person's CLI would: its own HOME and
// XDG_CONFIG_HOME (where usher login keeps the credentials), no store, no
// master key, bounded by a timeout.
func userCLI(t *testing.T, bin, config string, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + config, "XDG_CONFIG_HOME=" + config}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("usher %s: %v", strings.Join(args, " "), err)
	}
	return cliRun{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

var (
	shownURL  = regexp.MustCompile(`(?m)^    (http://\S+/device)$`)
	shownCode = regexp.MustCompile(`(?m)^    ([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})$`)
)

// TestCLILoginEndToEnd is the whole path of the CLI login (issue 10):
// the real `usher login --no-browser` against server A, whose login app
// signs people in at the real OpenID provider; the person opens the URL
// it prints in headless Chromium, is sent through the login and back to
// /device, enters the code, sees it on the confirmation page and
// approves; the CLI ends logged in. `usher whoami` names alice from the
// server, `usher token` prints a token Check accepts on A and on B (a
// second `usher serve` process on A's store), `usher logout` revokes it
// at /oauth/revoke and B refuses the old token within 2 s.
//
// Catalogue rows 76 (the code is never approved without the person's
// explicit click on a page showing it) and 82 (the CLI says who approved).
func TestCLILoginEndToEnd(t *testing.T) {
	st := startLoginStack(t, "127.0.0.1:8443")
	// usher's access tokens need the tenant's signing key (README).
	cli(t, st.bin, "key", "rotate", "--tenant", "acme", "--data-dir="+st.dir)
	config := t.TempDir()

	// 1. usher login, waiting for approval.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	login := exec.CommandContext(ctx, st.bin, "login", "--no-browser", "--server", st.loginURL)
	login.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + config, "XDG_CONFIG_HOME=" + config}
	var stdout bytes.Buffer
	stderr := &syncBuffer{}
	login.Stdout, login.Stderr = &stdout, stderr
	if err := login.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- login.Wait() }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && t.Failed() {
			t.Logf("usher login: %v\n%s", err, stderr.String())
		}
	})
	waitUntil(t, func() bool { return strings.Contains(stderr.String(), "Waiting for approval") }, "usher login to show the code")
	shown := stderr.String()
	mu, mc := shownURL.FindStringSubmatch(shown), shownCode.FindStringSubmatch(shown)
	if mu == nil || mc == nil || mu[1] != st.loginURL+"/device" {
		t.Fatalf("usher login does not show %s/device and a code XXXX-XXXX:\n%s", st.loginURL, shown)
	}
	code := mc[1]

	// 2. The person opens the URL, not signed in: the login, the IdP,
	// back to /device.
	bctx := testbrowser.New(t)
	runStep(t, bctx, "open the device page signed out",
		chromedp.Navigate(mu[1]),
		chromedp.WaitVisible(chromedp.CSS(`button[name="provider"]`)))
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); !strings.HasPrefix(loc, st.loginURL+"/login?next=") {
		t.Fatalf("the signed-out browser is at %s, want the login page", loc)
	}
	runStep(t, bctx, "sign in at the IdP and come back",
		chromedp.Click(chromedp.CSS(`button[name="provider"]`)),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#login"), testidp.RealAlice),
		chromedp.SendKeys(chromedp.CSS("#password"), testidp.RealPassword),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#user_code")))
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); !strings.HasPrefix(loc, st.loginURL+"/device") {
		t.Fatalf("after signing in the browser is at %s, want /device", loc)
	}

	// 3. The code, typed as a person might (lower case, a space for the
	// dash); the confirmation page shows it as the terminal does.
	typed := strings.ToLower(strings.Replace(code, "-", " ", 1))
	runStep(t, bctx, "enter the code",
		chromedp.SendKeys(chromedp.CSS("#user_code"), typed),
		chromedp.Click(chromedp.CSS(`form[action="/device"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value="approve"]`)))
	if got := pageText(t, bctx, ".lead code"); got != code {
		t.Errorf("the confirmation page shows the code %q, the terminal %q", got, code)
	}
	if facts := pageText(t, bctx, "dl.facts"); !strings.Contains(facts, "alice@acme.test") || !strings.Contains(facts, "acme") || !strings.Contains(facts, "editors") {
		t.Errorf("the confirmation page does not show alice, tenant acme and seat editors:\n%s", facts)
	}
	// Nothing is approved before the click.
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("usher login ended before the approval: %v\n%s", err, stderr.String())
	default:
	}
	runStep(t, bctx, "approve",
		chromedp.Click(chromedp.CSS(`button[value="approve"]`)),
		// The answer's page: a heading and no form.
		chromedp.WaitVisible(chromedp.CSS("main:not(:has(form)) h1")))
	if h := pageText(t, bctx, "h1"); h != "Device connected" {
		t.Errorf("after approving the page says %q", h)
	}

	// 4. usher login ends (its next poll, interval 5 s) with exit 0.
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Fatalf("usher login: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("usher login did not end 30 s after the approval:\n%s", stderr.String())
	}
	wantLine := "Logged in to " + st.loginURL + " as alice@acme.test (tenant acme).\n"
	if !strings.HasSuffix(stderr.String(), wantLine) || stdout.Len() != 0 {
		t.Errorf("usher login ended with stdout %q, stderr:\n%s\nwant the last line %q", stdout.String(), stderr.String(), wantLine)
	}

	// 5. usher whoami, from the server.
	who := userCLI(t, st.bin, config, "whoami")
	if who.code != 0 {
		t.Fatalf("usher whoami: exit %d\n%s", who.code, who.stderr)
	}
	for _, want := range []string{"email    alice@acme.test\n", "tenant   acme\n", "subject  " + testidp.RealAlice + "\n", "seats    editors\n"} {
		if !strings.Contains(who.stdout, want) {
			t.Errorf("usher whoami does not show %q:\n%s", want, who.stdout)
		}
	}

	// 6. usher token: alone on stdout, accepted by Check on A and B.
	tok := userCLI(t, st.bin, config, "token")
	token := strings.TrimSuffix(tok.stdout, "\n")
	if tok.code != 0 || token == "" || strings.ContainsAny(token, " \n") {
		t.Fatalf("usher token: exit %d, stdout %q\n%s", tok.code, tok.stdout, tok.stderr)
	}
	bearer := "authorization: Bearer " + token
	for _, s := range []struct {
		name string
		srv  *server
	}{{"server A", st.a}, {"server B", st.b}} {
		res := checkAt(t, s.srv, st.app, protectedPath, bearer)
		if res.status != http.StatusOK {
			t.Fatalf("%s: Check with the CLI's token: %d %s, want 200", s.name, res.status, res.reason)
		}
		want := map[string]string{"x-usher-auth": "jwt", "x-usher-subject": testidp.RealAlice, "x-usher-tenant": "acme"}
		for k, v := range want {
			if res.headers[k] != v {
				t.Errorf("%s: upstream header %s = %q, want %q (all: %v)", s.name, k, res.headers[k], v, res.headers)
			}
		}
	}

	// 7. usher logout revokes the login at the server; B refuses the
	// old token within the change bound.
	out := userCLI(t, st.bin, config, "logout")
	if out.code != 0 || out.stderr != "Logged out of "+st.loginURL+".\n" {
		t.Fatalf("usher logout: exit %d\n%s", out.code, out.stderr)
	}
	start := time.Now()
	for {
		res := checkAt(t, st.b, st.app, protectedPath, bearer)
		if res.status == http.StatusUnauthorized && res.reason == "session_revoked" {
			t.Logf("server B refused the revoked login's token after %v", time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("server B still answers %d %s for the token 2 s after usher logout, want 401 session_revoked", res.status, res.reason)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if who := userCLI(t, st.bin, config, "whoami"); who.code == 0 {
		t.Errorf("usher whoami after logout: exit 0\n%s", who.stdout)
	}
}
