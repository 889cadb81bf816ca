// The decision's entry point: [Config], [New] and the caches, and [Check],
// which runs the steps in order (normalise, route, authenticate, authorise,
// answer) and maps lookup errors to denials. Each step lives in its own
// files; doc.go lists them.

package authz

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Config wires an [Authorizer].
type Config struct {
	// ChangeLag, if set, is told for each change the feed applies how
	// long after its write it was applied (usher_changes_lag_seconds).
	ChangeLag func(time.Duration)
	// Tracer, if set, puts each store read that fills a cache in a span
	// of its own (a child of the Check's span); nil traces nothing.
	Tracer trace.Tracer
	Rules  *Rules
	Keys   KeyLookup
	Seats  SeatLookup
	// Usage records when keys were last used; nil records nothing.
	Usage KeyUsage
	// SigningKeys is the tenants' keyrings. Nil: usher's own tokens are
	// not accepted.
	SigningKeys SigningKeyLookup
	// Token says what usher's own access tokens look like.
	Token TokenConfig
	// External verifies tokens of IdPs that tenants trust; SeatLister
	// (required with it) maps their groups to seats. Nil: IdP tokens are
	// not accepted.
	External   ExternalVerifier
	SeatLister SeatLister
	Cache      CacheConfig
	// KeyIndex lists the API keys that exist, for an in-memory index
	// that answers unknown key ids without reading them (key_index.go);
	// call [Authorizer.LoadKeyIndex] before serving. Nil: no index.
	KeyIndex KeyIndexSource
	// Sessions finds login sessions: the session cookie's (with Cookie
	// enabled) and those usher access tokens name in their "sid" claim.
	// Nil: no cookie, and a token's sid is not checked.
	Sessions SessionLookup
	// SessionUsage records when sessions were last used (in batches, at
	// each FlushUsage), which slides their idle expiry on every server.
	// Nil records nothing: the idle expiry then slides only while a
	// session stays in this server's cache.
	SessionUsage SessionUsage
	// Cookie turns the session cookie on as the third credential.
	Cookie CookieConfig
	// KeepCredential leaves the credential usher verified in the request
	// that goes upstream. By default it is removed. Credentials usher did
	// not verify are removed either way.
	KeepCredential bool
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Authorizer decides requests. It is safe for concurrent use.
type Authorizer struct {
	tracer          trace.Tracer
	changeLag       func(time.Duration)
	rules           atomic.Pointer[Rules]
	keyStore        KeyLookup
	seatStore       SeatLookup
	signingKeyStore SigningKeyLookup
	external        ExternalVerifier
	seatLister      SeatLister
	tokenCfg        TokenConfig
	claimNames      []string
	keys            *cache[*keyInfo]
	parsedKeys      *parsedKeys
	seats           *cache[*cachedSeat]
	signingKeys     *cache[*SigningKey]
	tokens          *cache[*tokenInfo]
	groups          *cache[*groupIndex]
	usage           *usageBatch
	sessionStore    SessionLookup
	sessions        *cache[*sessionInfo]
	parsedSessions  *parsedKeys
	sessionUsage    *usageBatch
	cookie          CookieConfig
	cookieJoins     *cookieJoins
	loginBase       string // the login URL without a trailing '/'
	index           *keyIndex
	keepCredential  bool
	now             func() time.Time
	log             *slog.Logger
}

// New returns an Authorizer for cfg.
func New(cfg Config) (*Authorizer, error) {
	if cfg.Keys == nil || cfg.Seats == nil {
		return nil, errors.New("authz: Keys and Seats are required")
	}
	if cfg.External != nil && cfg.SeatLister == nil {
		return nil, errors.New("authz: SeatLister is required with External")
	}
	if cfg.Token == (TokenConfig{}) {
		cfg.Token = DefaultTokenConfig()
	}
	if cfg.Cookie.Enabled && cfg.Sessions == nil {
		return nil, errSessionsRequired
	}
	if err := errors.Join(cfg.Cache.Validate(), cfg.Token.Validate(), cfg.Cookie.Validate()); err != nil {
		return nil, err
	}
	a := &Authorizer{
		keyStore:        cfg.Keys,
		seatStore:       cfg.Seats,
		signingKeyStore: cfg.SigningKeys,
		external:        cfg.External,
		seatLister:      cfg.SeatLister,
		tokenCfg:        cfg.Token,
		claimNames:      append(slices.Clone(accessClaimNames), "groups", "memberOf", "roles"),
		parsedKeys:      new(parsedKeys),
		sessionStore:    cfg.Sessions,
		cookie:          cfg.Cookie.withDefaults(),
		tracer:          cfg.Tracer,
		changeLag:       cfg.ChangeLag,
		loginBase:       strings.TrimRight(cfg.Cookie.LoginURL, "/"),
		keepCredential:  cfg.KeepCredential,
		now:             cfg.Now,
		log:             cfg.Logger,
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	rules := cfg.Rules
	if rules == nil {
		rules = DenyAllRules()
	}
	a.rules.Store(rules)
	if cfg.KeyIndex != nil {
		a.index = newKeyIndex(cfg.KeyIndex, cfg.Cache.LoadTimeout)
	}
	if cfg.Usage != nil {
		a.usage = newUsageBatch("api key", cfg.Usage.TouchAPIKeys)
	}
	if cfg.Cookie.Enabled {
		a.cookieJoins = newCookieJoins()
	}
	if cfg.Sessions != nil {
		a.parsedSessions = new(parsedKeys)
		if cfg.SessionUsage != nil {
			a.sessionUsage = newUsageBatch("session", cfg.SessionUsage.TouchSessions)
		}
	}
	if err := a.newCaches(cfg.Cache); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *Authorizer) newCaches(cfg CacheConfig) error {
	var err error
	if a.keys, err = newCache(cfg, a.now, a.loadKey, (*keyInfo).cost); err != nil {
		return err
	}
	if a.seats, err = newCache(cfg, a.now, a.loadSeat, (*cachedSeat).cost); err != nil {
		return err
	}
	if a.signingKeys, err = newCache(cfg, a.now, a.loadSigningKey, func(*SigningKey) int64 { return 256 }); err != nil {
		return err
	}
	if a.groups, err = newCache(cfg, a.now, a.loadGroupIndex, (*groupIndex).cost); err != nil {
		return err
	}
	if a.tokens, err = newCache(cfg, a.now, nil, (*tokenInfo).cost); err != nil {
		return err
	}
	if a.sessionStore != nil {
		if a.sessions, err = newCache(cfg, a.now, a.loadSession, (*sessionInfo).cost); err != nil {
			return err
		}
	}
	if a.tracer != nil {
		for _, c := range []struct {
			set  func(trace.Tracer, string)
			name string
		}{
			{a.keys.traceWith, "usher.store.apikey"}, {a.seats.traceWith, "usher.store.seat"},
			{a.signingKeys.traceWith, "usher.store.signing_key"}, {a.groups.traceWith, "usher.store.seats_by_group"},
		} {
			c.set(a.tracer, c.name)
		}
		if a.sessions != nil {
			a.sessions.traceWith(a.tracer, "usher.store.session")
		}
	}
	// Nothing about a token is served stale: a failed re-verification
	// denies. A verified token is used until its end (exp, or its signing
	// key's retirement) but verified again at least every cache.ttl, so a
	// revoked signing key or issuer whose change record a server missed
	// stops working within the TTL, as API keys do.
	a.tokens.neverStale = true
	a.tokens.negative = (*tokenInfo).failed
	a.tokens.end = func(t *tokenInfo) (time.Time, *tokenInfo) { return t.end(a.tokenCfg.Leeway) }
	return nil
}

// Close releases the caches.
func (a *Authorizer) Close() {
	for _, c := range []interface{ close() }{a.keys, a.seats, a.signingKeys, a.groups, a.tokens, a.sessions} {
		c.close()
	}
}

// SetRules replaces the route rules; requests already deciding keep the
// rules they started with.
func (a *Authorizer) SetRules(r *Rules) { a.rules.Store(r) }

// KeyCacheStats and SeatCacheStats expose the caches' counters.
func (a *Authorizer) KeyCacheStats() *CacheStats { return a.keys.stats }

// SeatCacheStats exposes the seat cache's counters.
func (a *Authorizer) SeatCacheStats() *CacheStats { return a.seats.stats }

// TokenCacheStats exposes the token cache's counters: its loads are token
// verifications.
func (a *Authorizer) TokenCacheStats() *CacheStats { return a.tokens.stats }

// SessionCacheStats returns the session cache's counters, nil when the
// session cookie is off.
func (a *Authorizer) SessionCacheStats() *CacheStats {
	if a.sessions == nil {
		return nil
	}
	return a.sessions.stats
}

// Check decides r. It never panics on any input and never allows on error:
// a context error denies with a timeout, a store failure with a 503.
func (a *Authorizer) Check(ctx context.Context, r *Request) Decision {
	if nominatesReserved(r.Headers["connection"]) {
		return Deny(ReasonRequestInvalid)
	}
	ck := a.scanSessionCookies(r.Headers)
	d, verified := a.decide(ctx, r, &ck)
	if !d.Allowed() {
		return a.redirectToLogin(r, d)
	}
	// A method override (a header or a _method query parameter) makes some
	// upstreams run another method: the request must be allowed as that
	// method too, and the answer is that method's, so the identity headers
	// describe the rule the upstream's handler was checked against. The
	// credential is the same either way.
	m, ok := methodOverride(r)
	if !ok {
		return Deny(ReasonRequestInvalid)
	}
	if m != "" && m != upperMethod(r.Method) {
		o := *r
		o.Method = m
		od, _ := a.decide(ctx, &o, &ck)
		if !od.Allowed() {
			return od
		}
		d = od
	}
	d.Remove = a.removals(r.Headers, &d, verified, &ck)
	return d
}

// redirectToLogin turns a 401 of a browser navigation without a usable
// session into a 302 to the login app, when there is one to go to.
func (a *Authorizer) redirectToLogin(r *Request, d Decision) Decision {
	if a.loginBase == "" || !a.cookie.Enabled || !loginRedirects(d.Reason) || !isNavigation(r) {
		return d
	}
	d.Status, d.Location = 302, a.loginLocation(r)
	return d
}

// decide runs the steps for one method: the request's own, or one that a
// method-override header names. On allow it also returns the header of the
// credential it verified ("" on a public route).
func (a *Authorizer) decide(ctx context.Context, r *Request, ck *sessionCookies) (Decision, string) {
	path, err := NormalizePath(r.Path)
	if err != nil {
		return Deny(ReasonPathInvalid), ""
	}
	host, ok := normalizeHost(r.Host)
	if !ok {
		return Deny(ReasonRequestInvalid), ""
	}
	pol, err := a.rules.Load().policyFor(host, upperMethod(r.Method), path, r.ContextExtensions)
	if err != nil {
		return Failure(ReasonConfigInvalid, err), ""
	}
	switch pol.access {
	case AccessPublic:
		return Decision{Status: 200, Reason: ReasonPublic, Rule: pol.name}, ""
	case AccessAuthenticated, AccessPermission:
	default:
		d := Deny(ReasonNoRoute)
		d.Rule = pol.name
		return d, ""
	}

	now := a.now()
	p, d := a.authenticate(ctx, r, now, ck)
	if d.Status != 0 {
		d.Rule = pol.name
		return d, ""
	}
	d = Decision{Identity: p.id, Rule: pol.name}
	if p.id.Method == AuthCookie && !safeMethod(upperMethod(r.Method)) && a.crossSite(r.Headers) {
		d.Status, d.Reason = StatusFor(ReasonCSRF), ReasonCSRF
		return d, ""
	}
	if tenantMismatch(pol, r.Headers, p.id.Tenant) {
		d.Status, d.Reason = StatusFor(ReasonTenantMismatch), ReasonTenantMismatch
		return d, ""
	}
	if pol.access == AccessAuthenticated {
		d.Status, d.Reason, d.Seats = 200, ReasonAllowed, p.allSeats
		return d, p.consumed
	}

	space, reason := spaceFor(pol, r.Headers)
	d.Permission, d.Space = pol.permission, space
	if reason != "" {
		d.Status, d.Reason = StatusFor(reason), reason
		return d, ""
	}
	seats, allowed, err := a.permitted(ctx, p, space, pol.permission, now)
	if err != nil {
		return failureFrom(err, d), ""
	}
	d.Seats = seats
	if !allowed {
		d.Status, d.Reason = StatusFor(ReasonPermissionDenied), ReasonPermissionDenied
		return d, ""
	}
	d.Status, d.Reason = 200, ReasonAllowed
	return d, p.consumed
}

// failureFrom turns an error from a lookup into a denial that keeps the
// facts already known.
func failureFrom(err error, d Decision) Decision {
	var reason Reason
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		reason = ReasonTimeout
	case errors.Is(err, context.Canceled):
		reason = ReasonCanceled
	case errors.Is(err, errIssuerFailed):
		reason = ReasonIssuerUnavailable
	case errors.Is(err, errStoreFailed):
		reason = ReasonStoreUnavailable
	default:
		reason = ReasonInternal
	}
	d.Status, d.Reason, d.Cause = StatusFor(reason), reason, err
	return d
}
