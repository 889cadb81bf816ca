// HTTP check mode: the decision of gRPC Check, asked over plain HTTP by
// Envoy's HTTP ext_authz (http_service), nginx auth_request, Traefik
// forwardAuth and Caddy forward_auth. The request is read in http_request.go
// and answered here with the identity headers and denials of response.go.

package envoy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/usher-dev/usher/authz"
)

// Paths of HTTP check mode.
const (
	// PathExtAuthz is Envoy's http_service path_prefix: the original path
	// follows it, and the method, headers and Host are the request's own.
	PathExtAuthz = "/ext_authz"
	// PathAuth answers nginx auth_request, Traefik forwardAuth and Caddy
	// forward_auth: the original request is named in forwarded headers.
	PathAuth = "/auth"
)

// Response headers of HTTP check mode besides the identity headers.
const (
	// HeaderHeadersToRemove lists, comma separated, the request headers the
	// upstream must not see (authz.Decision.Remove): Envoy's HTTP ext_authz
	// removes them itself; the shipped nginx and Caddy configs match on it.
	HeaderHeadersToRemove = "x-envoy-auth-headers-to-remove"
	// HeaderReason carries a denial's reason code, so that a proxy that
	// drops the auth response's body (nginx) can rebuild it.
	HeaderReason = "x-usher-reason"
	// HeaderLoginURL carries where a browser denied with 401 should log in,
	// when [HTTPServer.LoginURL] names a place: nginx passes no 3xx through
	// auth_request, so its error_page 401 redirects to this.
	HeaderLoginURL = "x-usher-login-url"
)

// HTTPServer answers HTTP check mode. It decides with Decider exactly as
// [Server.Check] does, and answers 200 with the identity headers or the
// denial's status, headers and JSON body.
type HTTPServer struct {
	Decider Decider
	// Timeout is the per-check deadline; zero means DefaultTimeout.
	Timeout time.Duration
	// Realm goes into WWW-Authenticate challenges.
	Realm string
	// TrustedProxies are the peers whose forwarded headers (at [PathAuth])
	// are believed; nil means loopback only ([DefaultTrustedProxies]).
	TrustedProxies []netip.Prefix
	// LoginURL, if set, names the login page for a denied request, or ""
	// for none; it is sent in [HeaderLoginURL]. It is the hook the login
	// app's redirect plugs into.
	LoginURL func(d *authz.Decision, r *authz.Request) string
	Logger   *slog.Logger
	// Observe, if set, is told of every decision, e.g. for metrics.
	Observe func(d *authz.Decision, elapsed time.Duration)
	// Tracer, as [Server.Tracer].
	Tracer trace.Tracer
}

// DefaultTrustedProxies are the peers trusted when none are configured:
// loopback only.
var DefaultTrustedProxies = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// ServeHTTP answers one check. Like Check, every outcome but a decided
// allow is a denial, a panic included.
func (s *HTTPServer) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	start := time.Now()
	var (
		r       authz.Request
		d       authz.Decision
		decided bool
		span    trace.Span
	)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { //nolint:errorlint // net/http's sentinel panic value
				panic(p)
			}
			d = authz.Failure(authz.ReasonInternal, fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
			s.answer(w, &r, &d, redirectOK(hr))
			decided = true
		}
		if span != nil {
			endCheckSpan(span, &d)
		}
		if decided {
			s.record(hr, &r, &d, time.Since(start))
		}
	}()
	var reason authz.Reason
	var found bool
	r, reason, found = s.requestFrom(hr)
	if !found {
		http.NotFound(w, hr)
		return
	}
	ctx := hr.Context()
	if s.Tracer != nil {
		ctx, span = startCheckSpan(ctx, s.Tracer, r.Headers)
	}
	if reason != "" {
		d = authz.Deny(reason)
	} else {
		d = s.decide(ctx, &r)
	}
	decided = true
	s.answer(w, &r, &d, redirectOK(hr))
}

func (s *HTTPServer) decide(ctx context.Context, r *authz.Request) authz.Decision {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var c deadlineCtx
	c.init(ctx, timeout)
	defer c.release()
	return s.Decider.Check(&c, r)
}

// answer writes d: on allow the identity headers and the headers to
// remove, on deny the headers and body that gRPC Check sends in its
// denied_response, with the reason and login URL added.
func (s *HTTPServer) answer(w http.ResponseWriter, r *authz.Request, d *authz.Decision, redirectOK bool) {
	h := w.Header()
	if d.Allowed() {
		d.IdentityHeaders(func(name, value string) { h[http.CanonicalHeaderKey(name)] = []string{value} })
		if d.Cookie != "" {
			// The client's cookies without the session cookie, for the
			// proxy to send upstream in its place.
			h.Set("Cookie", d.Cookie)
		}
		if len(d.Remove) > 0 {
			h.Set(HeaderHeadersToRemove, strings.Join(d.Remove, ","))
		}
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	if d.Location != "" {
		h.Set(HeaderLoginURL, d.Location)
		if redirectOK {
			for _, f := range redirectFields(d) {
				h[http.CanonicalHeaderKey(f.Name)] = []string{f.Value}
			}
			h.Set(HeaderReason, string(d.Reason))
			h.Set("Content-Length", "0")
			w.WriteHeader(d.Status)
			return
		}
		// nginx's auth_request passes only 2xx, 401 and 403 on: the
		// browser is sent to HeaderLoginURL by its error_page 401.
		u := *d
		u.Status, u.Location = http.StatusUnauthorized, ""
		d = &u
	}
	parts := denialParts(s.Realm, d)
	for _, f := range parts.fields {
		h[http.CanonicalHeaderKey(f.Name)] = []string{f.Value}
	}
	h.Set(HeaderReason, string(d.Reason))
	if s.LoginURL != nil && d.Status == http.StatusUnauthorized {
		if u := s.LoginURL(d, r); u != "" {
			h.Set(HeaderLoginURL, u)
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(parts.body)))
	w.WriteHeader(d.Status)
	_, _ = w.Write([]byte(parts.body)) //nolint:gosec // {"error":"<reason code>"}, served as application/json
}

// redirectOK reports whether the proxy asking passes a 302 on to the
// browser: Envoy's HTTP ext_authz, Traefik and Caddy do; nginx's
// auth_request (which names the request in X-Original-URI) does not.
func redirectOK(hr *http.Request) bool {
	return hr.Header.Get("X-Original-Uri") == ""
}

// record logs a denial (one line each, never a credential) and observes
// the decision.
func (s *HTTPServer) record(hr *http.Request, r *authz.Request, d *authz.Decision, elapsed time.Duration) {
	if s.Observe != nil {
		s.Observe(d, elapsed)
	}
	if d.Allowed() || s.Logger == nil {
		return
	}
	level := slog.LevelInfo
	if d.Status >= 500 {
		level = slog.LevelError
	}
	ctx := hr.Context()
	if !s.Logger.Enabled(ctx, level) {
		return
	}
	s.Logger.LogAttrs(ctx, level, "denied",
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", pathOnly(r.Path)),
		slog.String("source", hr.RemoteAddr),
		slog.Any("decision", *d),
		slog.Duration("elapsed", elapsed),
	)
}

// errNotTrusted is why a peer's forwarded headers are not believed.
var errNotTrusted = errors.New("peer is not a trusted proxy")

// trusted reports whether the peer at remoteAddr (host:port) is a trusted
// proxy.
func (s *HTTPServer) trusted(remoteAddr string) error {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return fmt.Errorf("peer address %q: %w", remoteAddr, err)
	}
	prefixes := s.TrustedProxies
	if prefixes == nil {
		prefixes = DefaultTrustedProxies
	}
	addr := ap.Addr().Unmap()
	for _, p := range prefixes {
		if p.Contains(addr) {
			return nil
		}
	}
	return errNotTrusted
}
