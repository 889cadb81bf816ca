package login

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/seal"
)

//go:embed templates/*.html.tmpl static/*
var assets embed.FS

// ProviderSource lists the login providers of a tenant (the default one
// from the environment and those in identity_providers). An unknown
// tenant has none.
type ProviderSource func(ctx context.Context, tenant string) ([]Provider, error)

// SigningKeys finds a tenant's active signing key, which signs the usher
// access tokens the login app mints.
type SigningKeys interface {
	ActiveSigningKey(ctx context.Context, tenant string) (authz.SigningKey, error)
}

// Deps are the login app's dependencies.
type Deps struct {
	Sessions      Sessions
	RefreshTokens RefreshTokens
	Users         Users
	Seats         SeatLister
	Once          OnceMarks
	DeviceCodes   DeviceCodes
	Clients       Clients
	Providers     ProviderSource
	SigningKeys   SigningKeys
	// APIKeys stores people's own API keys; without it /api/keys and
	// /keys are not served. With it, SigningKeys must also look keys up
	// by id (authz.SigningKeyLookup) for Bearer tokens on /api/keys.
	APIKeys APIKeys
	// Tokens says what usher access tokens look like (the same as Check's).
	Tokens authz.TokenConfig
	// Seal seals the IdP's tokens kept in sessions (the master key).
	Seal seal.Key
	// CheckEmail reports whether a verified email may log in given the
	// allowed domains; a strict exact-domain check when nil.
	CheckEmail func(email string, allowed []string) error
	// Now is the clock (time.Now when nil); Log the logger.
	Now func() time.Time
	Log *slog.Logger
}

// App is the login app: its configuration, dependencies and pages.
type App struct {
	cfg     Config
	d       Deps
	flowKey []byte
	pages   map[string]*template.Template
	static  fs.FS
	csrfKey []byte
	// wrongCodes counts wrong user codes per session and per address;
	// deviceReqs device authorization requests per address.
	wrongCodes, deviceReqs *limiter
}

// New returns the login app for cfg (defaults applied, then validated)
// and its dependencies; every dependency is required except CheckEmail,
// Now and Log.
func New(cfg Config, d Deps) (*App, error) {
	cfg = cfg.WithDefaults()
	errs := []error{cfg.Validate()}
	if d.Sessions == nil || d.RefreshTokens == nil || d.Users == nil || d.Seats == nil || d.Once == nil || d.DeviceCodes == nil || d.Clients == nil || d.Providers == nil || d.SigningKeys == nil {
		errs = append(errs, errors.New("login: a storage dependency is missing"))
	}
	if d.Seal.IsZero() {
		errs = append(errs, seal.ErrNoKey)
	}
	if err := d.Tokens.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if d.CheckEmail == nil {
		d.CheckEmail = checkEmailStrict
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	return &App{
		cfg: cfg, d: d, flowKey: flowKey(cfg.SessionKey), pages: pages, static: static, csrfKey: csrfKey(cfg.SessionKey),
		wrongCodes: newLimiter(wrongCodeLimit, wrongCodeWindow, limiterMaxKeys),
		deviceReqs: newLimiter(deviceReqLimit, deviceReqWindow, limiterMaxKeys),
	}, nil
}

// Config returns the app's configuration with defaults applied.
func (a *App) Config() Config { return a.cfg }

// Mount registers every route of the login app on mux.
func (a *App) Mount(mux *http.ServeMux) {
	mux.Handle("GET /{$}", a.handle(a.home))
	mux.Handle("GET /login", a.handle(a.loginPage))
	mux.Handle("POST /auth/oidc/login", a.handle(a.startLogin))
	mux.Handle("GET "+CallbackPath, a.handle(a.callback))
	mux.Handle("GET /logout", a.handle(a.logout))
	mux.Handle("POST /logout", a.handle(a.logout))
	mux.Handle("GET /signed-out", a.handle(a.signedOut))
	mux.Handle("GET /whoami", a.handle(a.whoami))
	mux.Handle("POST /auth/oidc/validate", a.handle(a.validate))
	mux.Handle("POST /auth/oidc/refresh", a.handle(a.refresh))
	mux.Handle("GET "+MetadataPath, a.handle(a.metadata))
	mux.Handle("POST /oauth/device/code", a.handle(a.deviceAuthorize))
	mux.Handle("GET /device", a.handle(a.devicePage))
	mux.Handle("POST /device", a.handle(a.deviceDecide))
	mux.Handle("POST /oauth/token", a.handle(a.token))
	mux.Handle("POST /oauth/revoke", a.handle(a.revoke))
	if a.d.APIKeys != nil {
		a.mountKeys(mux)
	}
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(a.static)))
	mux.Handle("/", a.handle(func(http.ResponseWriter, *http.Request) error {
		return &appError{status: http.StatusNotFound, code: "not_found", msg: "There is nothing here."}
	}))
}

// Handler returns the login app with every route mounted, behind the
// headers every answer carries and the request id.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Mount(mux)
	return a.wrap(mux)
}

// maxBody caps request bodies (forms and JSON).
const maxBody = 64 << 10

type ctxKey int

const requestIDKey ctxKey = 0

// wrap adds the request id (X-Request-Id when it is a sane value, else a
// new one), the security headers of every answer, the body cap and a
// recover that answers 500.
func (a *App) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		hdr := w.Header()
		hdr.Set("X-Request-Id", id)
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("Pragma", "no-cache")
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("X-Frame-Options", "DENY")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("Content-Security-Policy", a.csp(nil))
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				a.fail(w, r, &appError{status: http.StatusInternalServerError, code: "internal", msg: "Something went wrong.", err: fmt.Errorf("panic: %v", v)})
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func validRequestID(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// csp is the Content-Security-Policy: nothing but our own stylesheet and
// images, no script at all, forms posting to us and to the origins extra
// (where our forms' redirects go: the IdPs, the apps for next), never
// framed.
func (a *App) csp(formTargets []string) string {
	fa := "'self'"
	for _, o := range formTargets {
		fa += " " + o
	}
	return "default-src 'none'; style-src 'self'; img-src 'self'; form-action " + fa +
		"; frame-ancestors 'none'; base-uri 'none'"
}

// appError is a failure answered to the client: status, a stable reason
// code, a message safe to show, and the cause, which is only logged.
type appError struct {
	status int
	code   string
	// oauth, when set, is the OAuth error code (RFC 6749 section 5.2)
	// JSON answers give as "error"; code then goes as "reason".
	oauth string
	msg   string
	err   error
}

func (e *appError) Error() string {
	if e.err != nil {
		return e.code + ": " + e.err.Error()
	}
	return e.code
}

func (e *appError) Unwrap() error { return e.err }

// handle adapts a handler that returns an error to the one error writer.
func (a *App) handle(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			a.fail(w, r, err)
		}
	})
}

// fail is the one error writer: a JSON body {"error", "error_description",
// "reason", "request_id"} when the client asks for JSON (or calls an API endpoint),
// else an HTML page with the status, the reason code and the request id.
// Nothing the client sent is reflected.
func (a *App) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *appError
	if !errors.As(err, &e) {
		e = &appError{status: http.StatusInternalServerError, code: "internal", msg: "Something went wrong.", err: err}
	}
	rid := requestID(r.Context())
	level := slog.LevelInfo
	if e.status >= 500 {
		level = slog.LevelError
	}
	a.d.Log.Log(r.Context(), level, "login request refused", "request_id", rid, "path", r.URL.Path,
		"status", e.status, "reason", e.code, "err", e.err)
	if wantsJSON(r) {
		switch {
		case e.oauth == "invalid_client":
			w.Header().Set("WWW-Authenticate", `Basic realm="usher"`)
		case e.status == http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
		body := map[string]string{"error": e.code, "error_description": e.msg, "reason": e.code, "request_id": rid}
		if e.oauth != "" {
			body["error"] = e.oauth
		}
		writeJSON(w, e.status, body)
		return
	}
	a.render(w, r, e.status, "error", map[string]any{
		"Status": e.status, "StatusText": http.StatusText(e.status), "Code": e.code, "Message": e.msg, "RequestID": rid,
	})
}

// wantsJSON: the API endpoints always answer JSON; the browser routes
// answer JSON when Accept names JSON and not HTML.
func wantsJSON(r *http.Request) bool {
	switch r.URL.Path {
	case "/whoami", "/auth/oidc/validate", "/auth/oidc/refresh", MetadataPath, "/oauth/device/code", "/oauth/token", "/oauth/revoke":
		return true
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		return true
	}
	acc := r.Header.Get("Accept")
	return strings.Contains(acc, "json") && !strings.Contains(acc, "text/html")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// parsePages parses each page with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	names := []string{"login", "error", "signed_out", "home", "logout_confirm", "device", "device_confirm", "device_done", "keys"}
	pages := make(map[string]*template.Template, len(names))
	for _, n := range names {
		t, err := template.ParseFS(assets, "templates/layout.html.tmpl", "templates/"+n+".html.tmpl")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", n, err)
		}
		pages[n] = t
	}
	return pages, nil
}

// render writes a page; formTargets widen form-action for its forms.
func (a *App) render(w http.ResponseWriter, r *http.Request, status int, page string, data map[string]any, formTargets ...string) {
	if data == nil {
		data = map[string]any{}
	}
	data["RequestID"] = requestID(r.Context())
	var b strings.Builder
	if err := a.pages[page].ExecuteTemplate(&b, "layout", data); err != nil {
		a.d.Log.ErrorContext(r.Context(), "render page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if len(formTargets) > 0 {
		w.Header().Set("Content-Security-Policy", a.csp(formTargets))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// origin returns scheme://host of u, or "".
func origin(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return ""
	}
	return p.Scheme + "://" + p.Host
}

// appOrigins are the CSP sources of the apps under the root domain, where
// a form's redirect may go (next after logout).
func (a *App) appOrigins() []string {
	if a.cfg.cookieDomain() == "" {
		return []string{origin(a.cfg.LoginURL)}
	}
	return []string{"https://" + a.cfg.RootDomain, "https://*." + a.cfg.RootDomain}
}

// providers lists a tenant's providers; lookup finds one by type.
func (a *App) providers(ctx context.Context, tenant string) ([]Provider, error) {
	ps, err := a.d.Providers(ctx, tenant)
	if err != nil {
		return nil, &appError{status: http.StatusServiceUnavailable, code: "store_unavailable", msg: "The login service is unavailable; try again shortly.", err: err}
	}
	return ps, nil
}

func (a *App) lookup(ctx context.Context, tenant, typ string) (Provider, error) {
	ps, err := a.providers(ctx, tenant)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(ps, func(p Provider) bool { return p.Type() == typ })
	if i < 0 {
		return nil, &appError{status: http.StatusBadRequest, code: "provider_unknown", msg: "That sign-in provider is not configured."}
	}
	return ps[i], nil
}

// tenantParam returns the tenant a request names, or the default one.
func (a *App) tenantParam(v string) (string, error) {
	if v == "" {
		return a.cfg.Tenant, nil
	}
	if authz.ValidateTenant(v) != nil {
		return "", &appError{status: http.StatusBadRequest, code: "tenant_invalid", msg: "The tenant is not valid."}
	}
	return v, nil
}
