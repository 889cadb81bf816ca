package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/usher-dev/usher/internal/credentials"
)

// loginFlags are usher login's.
type loginFlags struct {
	server    serverFlag
	tenant    string
	noBrowser bool
}

func newLoginCmd(e *env) *cobra.Command {
	var f loginFlags
	c := &cobra.Command{
		Use:   "login [--server URL] [--tenant T] [--no-browser]",
		Short: "log the CLI in to a server through your browser (OAuth device login)",
		Long: "usher login shows a URL and a code; open the URL in any browser where you can log in, check the code and approve.\n" +
			"The tokens go to $XDG_CONFIG_HOME/usher/credentials.json (mode 0600), one login per server.\n" +
			"Exit codes: 0 approved, 4 denied, 5 the code expired, 1 any other failure.",
		Args: args(),
		RunE: func(c *cobra.Command, _ []string) error { return runLogin(c.Context(), e, &f) },
	}
	f.server.register(c.Flags(), e)
	c.Flags().StringVar(&f.tenant, "tenant", "", "the tenant to log in to (when your login could reach several)")
	c.Flags().BoolVar(&f.noBrowser, "no-browser", false, "do not open a browser; only print the URL and the code")
	return c
}

func runLogin(ctx context.Context, e *env, f *loginFlags) error {
	path, err := credentialsPath(e)
	if err != nil {
		return err
	}
	// Refuse an unsafe credentials file before asking anyone to approve.
	creds, err := credentials.Load(path)
	if err != nil {
		return err
	}
	server, err := f.server.resolve(creds)
	if err != nil {
		if errors.As(err, new(exitError)) {
			return usagef("usher login needs --server URL (the login app's address, e.g. https://login.example.com)")
		}
		return err
	}
	client := newAuthClient(server)
	md, err := client.discover(ctx)
	if err != nil {
		return err
	}
	conf := oauthConfig(md.TokenEndpoint, md.DeviceAuthorizationEndpoint)
	var opts []oauth2.AuthCodeOption
	if f.tenant != "" {
		opts = append(opts, oauth2.SetAuthURLParam("tenant", f.tenant))
	}
	octx := client.ctx(ctx)
	da, err := conf.DeviceAuth(octx, opts...)
	if err != nil {
		return loginError(client, "start the login", err)
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return fmt.Errorf("%s answered the device request without a device code, user code or verification URI", server)
	}
	showCode(e, da)
	if !f.noBrowser {
		target := da.VerificationURIComplete
		if target == "" {
			target = da.VerificationURI
		}
		if openBrowser(e, target) {
			fmt.Fprintln(e.stderr, "Opened your browser.")
		}
	}
	if _, far := client.clockSkew(); far {
		fmt.Fprintln(e.stderr, "warning: "+client.skewError("clock skew").Error())
	}

	start := time.Now()
	tok, err := conf.DeviceAccessToken(octx, da)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return exitError{exitFailed, errors.New("login canceled")}
	case errors.Is(err, context.DeadlineExceeded):
		return exitError{exitExpired, fmt.Errorf("login expired: the code %s was not approved in time; run usher login again", da.UserCode)}
	default:
		return loginError(client, "log in", err)
	}
	entry := credentials.Entry{
		Server: server, ClientID: cliClientID, TokenEndpoint: md.TokenEndpoint, RevocationEndpoint: md.RevocationEndpoint,
		Tenant: f.tenant, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType,
		Expiry: tok.Expiry, Obtained: start,
	}
	// Load again: another usher may have written meanwhile (we waited minutes).
	unlock, err := credentials.Lock(path)
	if err != nil {
		return err
	}
	defer unlock()
	if creds, err = credentials.Load(path); err != nil {
		return err
	}
	creds.Put(entry)
	if err := creds.Save(path); err != nil {
		return fmt.Errorf("save the login: %w", err)
	}
	who := ""
	if w, err := fetchWhoami(ctx, client, tok.AccessToken); err == nil {
		who = " as " + w.display()
	}
	fmt.Fprintf(e.stderr, "Logged in to %s%s.\n", server, who)
	return nil
}

// showCode prints what the person needs, to stderr (stdout stays clean
// for scripts).
func showCode(e *env, da *oauth2.DeviceAuthResponse) {
	fmt.Fprintf(e.stderr, "To log in, open this page in a browser where you can log in:\n\n    %s\n\nand enter the code:\n\n    %s\n\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(e.stderr, "(or open %s, which fills in the code; check that the page shows the same code)\n", da.VerificationURIComplete)
	}
	wait := "Waiting for approval"
	if !da.Expiry.IsZero() {
		wait += fmt.Sprintf(" (the code expires in %s)", time.Until(da.Expiry).Round(time.Second))
	}
	fmt.Fprintln(e.stderr, wait+"; press Ctrl-C to cancel.")
}

// loginError turns a device grant failure into a message and exit code.
func loginError(client *authClient, what string, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return client.unreachable(err)
	}
	switch re.ErrorCode {
	case "access_denied":
		return exitError{exitDenied, errors.New("login denied: the request was denied in the browser; run usher login again if that was a mistake")}
	case "expired_token":
		if _, far := client.clockSkew(); far {
			return exitError{exitExpired, client.skewError("login expired")}
		}
		return exitError{exitExpired, errors.New("login expired: the code was not approved in time; run usher login again")}
	case "invalid_client", "unauthorized_client":
		return fmt.Errorf("%s: %s does not accept the usher CLI (%s %s)", what, client.server, re.ErrorCode, re.ErrorDescription)
	case "":
		return fmt.Errorf("%s: %s answered %s", what, client.server, re.Response.Status)
	}
	return fmt.Errorf("%s: %s answered %s: %s", what, client.server, re.ErrorCode, re.ErrorDescription)
}

// openBrowser opens url with the desktop's opener, if there is a desktop
// and an opener. It reports whether it started one; the person can
// always type the URL themselves.
func openBrowser(e *env, target string) bool {
	// Only a web page: never a file, a scheme handler or an option.
	if u, err := url.Parse(target); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return false
	}
	var name string
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "linux", "freebsd", "openbsd", "netbsd":
		// Over SSH or in a container there is no display, and xdg-open
		// would start a text browser in this terminal.
		if e.getenv("DISPLAY") == "" && e.getenv("WAYLAND_DISPLAY") == "" {
			return false
		}
		name = "xdg-open"
	default:
		return false
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		return false
	}
	cmd := exec.Command(bin, target) //nolint:gosec // the opener found on PATH, with an http(s) URL
	cmd.Stdout, cmd.Stderr = nil, nil
	cmd.Env = append(os.Environ(), "DISPLAY="+e.getenv("DISPLAY"), "WAYLAND_DISPLAY="+e.getenv("WAYLAND_DISPLAY"))
	if err := cmd.Start(); err != nil {
		return false
	}
	go func() { _ = cmd.Wait() }()
	return true
}
