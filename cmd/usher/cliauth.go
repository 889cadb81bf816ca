package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/oauth2"

	"github.com/usher-dev/usher/internal/credentials"
)

// Exit codes of usher login, whoami, token and logout, beyond 0, 1 and 2.
const (
	exitLoginNeeded = 3 // not logged in, or the login was revoked or expired: run usher login
	exitDenied      = 4 // the device request was denied in the browser
	exitExpired     = 5 // the device code expired before anyone approved it
)

// cliClientID is the login app's built-in public client.
const cliClientID = "usher-cli"

// skewTolerance is how far this machine's clock may differ from the
// server's before usher says so.
const skewTolerance = time.Minute

// exitError is an error with its own exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// serverFlag is --server: the login app's URL. It defaults to
// USHER_SERVER, then to the server used last.
type serverFlag struct{ url string }

func (s *serverFlag) register(fs *pflag.FlagSet, e *env) {
	fs.StringVar(&s.url, "server", e.getenv("USHER_SERVER"), "the login app's URL, e.g. https://login.example.com (env USHER_SERVER; default: the server used last)")
}

// resolve names the server to use, normalised, from the flag or the
// credentials' last server.
func (s *serverFlag) resolve(f *credentials.File) (string, error) {
	raw := s.url
	if raw == "" {
		raw = f.Last
	}
	if raw == "" {
		return "", exitError{exitLoginNeeded, errors.New("not logged in to any server: run usher login --server URL (the login app's address)")}
	}
	return normalizeServer(raw)
}

// normalizeServer checks a server URL and drops a trailing slash. Plain
// http is allowed only to a loopback address: tokens must not cross a
// network in the clear.
func normalizeServer(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", usagef("--server %q: want the login app's URL, like https://login.example.com", raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", usagef("--server %q: use https (plain http is allowed only to localhost)", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// credentialsPath is $XDG_CONFIG_HOME/usher/credentials.json, or the
// OS's user config directory's.
func credentialsPath(e *env) (string, error) {
	dir := e.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		var err error
		if dir, err = os.UserConfigDir(); err != nil {
			return "", fmt.Errorf("find the config directory for credentials (set XDG_CONFIG_HOME): %w", err)
		}
	}
	return credentials.Path(dir), nil
}

// authClient is the HTTP side of the CLI's OAuth calls. It remembers the
// server's clock (the Date header) to explain failures caused by skew.
type authClient struct {
	server string
	http   *http.Client

	mu   sync.Mutex
	skew time.Duration // server's clock minus ours, at the last response
	seen bool
}

func newAuthClient(server string) *authClient {
	c := &authClient{server: server}
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: dateRecorder{c, http.DefaultTransport}}
	return c
}

type dateRecorder struct {
	c    *authClient
	next http.RoundTripper
}

func (d dateRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.next.RoundTrip(r)
	if err == nil {
		if t, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
			d.c.mu.Lock()
			d.c.skew, d.c.seen = t.Sub(time.Now().Truncate(time.Second)), true
			d.c.mu.Unlock()
		}
	}
	return resp, err
}

// clockSkew returns how far the server's clock is ahead of ours, and
// whether that is past the tolerance.
func (c *authClient) clockSkew() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.skew
	if d < 0 {
		d = -d
	}
	return c.skew, c.seen && d > skewTolerance
}

func (c *authClient) skewError(what string) error {
	skew, _ := c.clockSkew()
	dir := "behind" // the server's clock is ahead
	if skew < 0 {
		dir, skew = "ahead of", -skew
	}
	return fmt.Errorf("%s: this machine's clock is %s %s %s's: fix the clock (e.g. `timedatectl set-ntp true`) and retry",
		what, skew.Round(time.Second), dir, c.server)
}

// ctx carries the client into x/oauth2.
func (c *authClient) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.http)
}

// unreachable explains a transport failure.
func (c *authClient) unreachable(err error) error {
	return fmt.Errorf("cannot reach %s: %w; check the address (--server) and your network, then retry", c.server, err)
}

// metadata is the part of RFC 8414 server metadata the CLI uses.
type metadata struct {
	Issuer                      string `json:"issuer"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
	RevocationEndpoint          string `json:"revocation_endpoint"`
}

// metadataURL is RFC 8414 §3.1's: the well-known path goes between the
// host and the issuer's path.
func metadataURL(server string) string {
	u, _ := url.Parse(server) // normalised already
	u.Path = "/.well-known/oauth-authorization-server" + u.Path
	return u.String()
}

// discover reads and checks the server's metadata.
func (c *authClient) discover(ctx context.Context) (metadata, error) {
	var m metadata
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metadataURL(c.server), nil)
	if err != nil {
		return m, fmt.Errorf("server metadata: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return m, c.unreachable(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("%s answered %s for its OAuth metadata (%s): is it usher's login app?", c.server, resp.Status, req.URL)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil {
		return m, fmt.Errorf("%s's OAuth metadata is not JSON: %w", c.server, err)
	}
	// RFC 8414 §3.3: the issuer must be the URL the metadata was asked of.
	if strings.TrimRight(m.Issuer, "/") != c.server {
		return m, fmt.Errorf("%s's OAuth metadata names another issuer, %q: refusing it (RFC 8414 §3.3); check --server", c.server, m.Issuer)
	}
	for name, ep := range map[string]string{"device_authorization_endpoint": m.DeviceAuthorizationEndpoint, "token_endpoint": m.TokenEndpoint} {
		if ep == "" {
			return m, fmt.Errorf("%s's metadata has no %s: the server does not offer device login", c.server, name)
		}
	}
	for _, ep := range []string{m.DeviceAuthorizationEndpoint, m.TokenEndpoint, m.RevocationEndpoint} {
		if ep == "" {
			continue
		}
		if _, err := normalizeServer(ep); err != nil {
			return m, fmt.Errorf("%s's metadata names an endpoint that is not https: %q", c.server, ep)
		}
	}
	return m, nil
}

func oauthConfig(tokenURL, deviceURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: cliClientID, // a public client: no secret
		Endpoint: oauth2.Endpoint{DeviceAuthURL: deviceURL, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
}

// session is a logged-in server: its credentials file and entry.
type session struct {
	path   string
	server string
	entry  credentials.Entry
	client *authClient
}

// openSession loads the credentials and the entry of the server that
// --server (or the last login) names.
func openSession(e *env, sf *serverFlag) (*session, error) {
	path, err := credentialsPath(e)
	if err != nil {
		return nil, err
	}
	f, err := credentials.Load(path)
	if err != nil {
		return nil, err
	}
	server, err := sf.resolve(f)
	if err != nil {
		return nil, err
	}
	entry, ok := f.Get(server)
	if !ok {
		return nil, exitError{exitLoginNeeded, fmt.Errorf("not logged in to %s: run usher login --server %s", server, server)}
	}
	return &session{path: path, server: server, entry: entry, client: newAuthClient(server)}, nil
}

// refreshMargin is how close to its expiry an access token is refreshed
// before use: a minute, or a quarter of its life if that is shorter.
func refreshMargin(en credentials.Entry) time.Duration {
	m := time.Minute
	if life := en.Expiry.Sub(en.Obtained); !en.Obtained.IsZero() && life/4 < m {
		m = life / 4
	}
	return m
}

func needsRefresh(en credentials.Entry, now time.Time) bool {
	return en.AccessToken == "" || (!en.Expiry.IsZero() && !now.Add(refreshMargin(en)).Before(en.Expiry))
}

// fresh returns an access token good for a while, refreshing it (and
// saving the rotated refresh token) when it is near expiry. The refresh
// runs under a file lock, so concurrent usher processes never spend one
// single-use refresh token twice.
func (s *session) fresh(ctx context.Context) (string, error) {
	if !needsRefresh(s.entry, time.Now()) {
		return s.entry.AccessToken, nil
	}
	unlock, err := credentials.Lock(s.path)
	if err != nil {
		return "", err
	}
	defer unlock()
	f, err := credentials.Load(s.path) // another process may have refreshed meanwhile
	if err != nil {
		return "", err
	}
	en, ok := f.Get(s.server)
	if !ok {
		return "", exitError{exitLoginNeeded, fmt.Errorf("not logged in to %s: run usher login --server %s", s.server, s.server)}
	}
	if !needsRefresh(en, time.Now()) {
		s.entry = en
		return en.AccessToken, nil
	}
	if en.RefreshToken == "" {
		return "", exitError{exitLoginNeeded, fmt.Errorf("your login at %s has expired: run usher login --server %s again", s.server, s.server)}
	}
	conf := oauthConfig(en.TokenEndpoint, "")
	start := time.Now()
	tok, err := conf.TokenSource(s.client.ctx(ctx), &oauth2.Token{RefreshToken: en.RefreshToken}).Token()
	if err != nil {
		return "", s.refreshError(err)
	}
	en.AccessToken, en.TokenType, en.Expiry, en.Obtained = tok.AccessToken, tok.TokenType, tok.Expiry, start
	if tok.RefreshToken != "" {
		en.RefreshToken = tok.RefreshToken
	}
	f.Put(en)
	if err := f.Save(s.path); err != nil {
		// The old refresh token is spent: without the new one the login is lost.
		return "", fmt.Errorf("save the refreshed login (run usher login --server %s again if this persists): %w", s.server, err)
	}
	s.entry = en
	return en.AccessToken, nil
}

func (s *session) refreshError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return s.client.unreachable(err)
	}
	switch re.ErrorCode {
	case "invalid_grant":
		msg := fmt.Errorf("your login at %s was revoked or has expired (the server refused the refresh token): run usher login --server %s again", s.server, s.server)
		return exitError{exitLoginNeeded, msg}
	case "invalid_client", "unauthorized_client":
		return exitError{exitLoginNeeded, fmt.Errorf("%s no longer accepts the usher CLI's login (%s): run usher login --server %s again", s.server, re.ErrorCode, s.server)}
	case "":
		return fmt.Errorf("refresh the login at %s: the server answered %s; retry later", s.server, re.Response.Status)
	}
	return fmt.Errorf("refresh the login at %s: %s %s", s.server, re.ErrorCode, re.ErrorDescription)
}
