package idp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// maxBody bounds what is read from a provider: discovery and key sets are
// a few kilobytes.
const maxBody = 1 << 20

// asymmetric are the signature algorithms an IdP token may use. A
// provider's HMAC algorithms are never accepted: its "secret" would be
// public.
var asymmetric = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA,
}

// CheckIssuerURL checks an issuer URL before it is trusted: https, or http
// on a loopback address (local IdPs and tests), which gets a warning. No
// user info, query or fragment.
func CheckIssuerURL(raw string) (warning string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("issuer %q: not an absolute URL", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "#") {
		return "", fmt.Errorf("issuer %q: no user info, query or fragment allowed", raw)
	}
	switch u.Scheme {
	case "https":
		return "", nil
	case "http":
		if isLoopback(u.Hostname()) {
			return fmt.Sprintf("issuer %s uses plain http: accepted only because it is a loopback address", raw), nil
		}
		return "", fmt.Errorf("issuer %q: must be https (plain http is accepted only on loopback addresses)", raw)
	}
	return "", fmt.Errorf("issuer %q: must be https", raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Discovery is what usher reads from a provider's discovery document.
type Discovery struct {
	Issuer     string
	JWKSURL    string
	Algorithms []string // the asymmetric ones the provider signs with
	provider   *oidc.Provider
}

// Discover fetches and checks an issuer's discovery document: it must
// answer, name exactly this issuer, and give a key set URL that is https
// (or http on loopback).
func Discover(ctx context.Context, client *http.Client, issuer string) (Discovery, error) {
	if _, err := CheckIssuerURL(issuer); err != nil {
		return Discovery{}, err
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return Discovery{}, fmt.Errorf("issuer %s: discovery names issuer %q; configure exactly that", issuer, mismatch.Discovered)
		}
		return Discovery{}, fmt.Errorf("issuer %s: discovery: %w", issuer, err)
	}
	var meta struct {
		JWKSURL string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return Discovery{}, fmt.Errorf("issuer %s: discovery: %w", issuer, err)
	}
	if _, err := CheckIssuerURL(meta.JWKSURL); err != nil {
		return Discovery{}, fmt.Errorf("issuer %s: jwks_uri: %w", issuer, err)
	}
	d := Discovery{Issuer: issuer, JWKSURL: meta.JWKSURL, provider: p}
	for _, a := range meta.Algs {
		if slices.Contains(asymmetric, a) && !slices.Contains(d.Algorithms, a) {
			d.Algorithms = append(d.Algorithms, a)
		}
	}
	if len(d.Algorithms) == 0 {
		d.Algorithms = []string{oidc.RS256} // the one OIDC requires
	}
	return d, nil
}

// NewClient returns the HTTP client usher uses to reach providers: a
// timeout on every request and a bound on every response body.
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: limitedTransport{http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirects are not followed")
		},
	}
}

type limitedTransport struct{ rt http.RoundTripper }

func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxBody}
	return resp, nil
}

// limitedBody fails a read past its bound rather than truncating silently.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("response larger than %d bytes", maxBody)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
