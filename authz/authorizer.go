package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Config wires an [Authorizer].
type Config struct {
	Rules *Rules
	Keys  KeyLookup
	Seats SeatLookup
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
	// KeepCredential leaves the credential in the request that goes
	// upstream. By default it is removed.
	KeepCredential bool
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Authorizer decides requests. It is safe for concurrent use.
type Authorizer struct {
	rules           atomic.Pointer[Rules]
	keyStore        KeyLookup
	seatStore       SeatLookup
	signingKeyStore SigningKeyLookup
	external        ExternalVerifier
	seatLister      SeatLister
	tokenCfg        TokenConfig
	claimNames      []string
	keys            *cache[*keyInfo]
	seats           *cache[*seatGrants]
	signingKeys     *cache[*SigningKey]
	tokens          *cache[*tokenInfo]
	groups          *cache[*groupIndex]
	usage           *usageBatch
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
	if err := errors.Join(cfg.Cache.Validate(), cfg.Token.Validate()); err != nil {
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
	if cfg.Usage != nil {
		a.usage = &usageBatch{store: cfg.Usage, pending: map[string]time.Time{}}
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
	if a.seats, err = newCache(cfg, a.now, a.loadSeat, (*seatGrants).cost); err != nil {
		return err
	}
	if a.signingKeys, err = newCache(cfg, a.now, a.loadSigningKey, func(*SigningKey) int64 { return 256 }); err != nil {
		return err
	}
	if a.groups, err = newCache(cfg, a.now, a.loadGroupIndex, (*groupIndex).cost); err != nil {
		return err
	}
	// Nothing about a token is served stale: a failed re-verification
	// denies.
	tcfg := cfg
	tcfg.StaleMax = 0
	if a.tokens, err = newCache(tcfg, a.now, nil, (*tokenInfo).cost); err != nil {
		return err
	}
	// Fresh until its exp, but at most cache.ttl: a token is verified again
	// at least that often, so a revoked signing key or issuer whose change
	// record a server missed stops working within the TTL, as API keys do.
	a.tokens.freshFor = func(t *tokenInfo, now time.Time) time.Duration {
		if t.reason != "" {
			return cfg.NegativeTTL
		}
		return min(t.expires.Add(a.tokenCfg.Leeway).Sub(now), cfg.TTL)
	}
	return nil
}

// Close releases the caches.
func (a *Authorizer) Close() {
	for _, c := range []interface{ close() }{a.keys, a.seats, a.signingKeys, a.groups, a.tokens} {
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

// keyInfo is a cached API key with what decisions derive from it.
type keyInfo struct {
	APIKey
	subject  string
	allSeats string   // Seats joined with ","
	seatKeys []string // seat cache keys, parallel to Seats
	lastUsed atomic.Int64
}

func (k *keyInfo) cost() int64 {
	n := 256 + len(k.subject) + 2*len(k.allSeats)
	for _, s := range k.seatKeys {
		n += 16 + len(s)
	}
	return int64(n)
}

func (a *Authorizer) loadKey(ctx context.Context, id string) (*keyInfo, error) {
	k, err := a.keyStore.APIKey(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load api key %s: %w", id, err)
	}
	if k.ID != id {
		return nil, fmt.Errorf("load api key %s: store returned key %s", id, k.ID)
	}
	seats := slices.Clone(k.Seats)
	slices.Sort(seats)
	seats = slices.Compact(seats)
	k.Seats = seats
	ki := &keyInfo{
		APIKey:   k,
		subject:  "apikey:" + k.ID,
		allSeats: strings.Join(seats, ","),
		seatKeys: make([]string, len(seats)),
	}
	for i, s := range seats {
		ki.seatKeys[i] = seatKey(k.Tenant, s)
	}
	return ki, nil
}

func seatKey(tenant, seat string) string { return tenant + "/" + seat }

func (a *Authorizer) loadSigningKey(ctx context.Context, kid string) (*SigningKey, error) {
	if a.signingKeyStore == nil {
		return nil, ErrNotFound
	}
	k, err := a.signingKeyStore.SigningKey(ctx, kid)
	if err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", kid, err)
	}
	if k.ID != kid {
		return nil, fmt.Errorf("load signing key %s: store returned key %s", kid, k.ID)
	}
	return &k, nil
}

// seatGrants is a cached seat: its permissions by space.
type seatGrants struct {
	name   string
	grants map[string][]string // space (or "*") → permissions
}

func (s *seatGrants) cost() int64 {
	n := 128
	for sp, ps := range s.grants {
		n += 48 + len(sp)
		for _, p := range ps {
			n += 16 + len(p)
		}
	}
	return int64(n)
}

func (a *Authorizer) loadSeat(ctx context.Context, key string) (*seatGrants, error) {
	tenant, name, _ := strings.Cut(key, "/")
	s, err := a.seatStore.Seat(ctx, tenant, name)
	if err != nil {
		return nil, fmt.Errorf("load seat %s: %w", key, err)
	}
	g := &seatGrants{name: s.Name, grants: make(map[string][]string, len(s.Grants))}
	for _, gr := range s.Grants {
		g.grants[gr.Space] = append(g.grants[gr.Space], gr.Permissions...)
	}
	return g, nil
}

// inSpace reports whether the seat grants anything in space, and whether it
// grants perm there.
func (s *seatGrants) inSpace(space, perm string) (any, allows bool) {
	for _, sp := range [2]string{space, "*"} {
		ps, ok := s.grants[sp]
		if !ok {
			continue
		}
		any = true
		for _, p := range ps {
			if p == perm || p == "*" {
				return true, true
			}
		}
	}
	return any, false
}

// principal is an authenticated caller.
type principal struct {
	id Identity
	// seats (with their cache keys) apply in every space: an API key's, or
	// an IdP token's groups.
	seats    []string
	seatKeys []string
	// spaceSeats, for usher's tokens, name one seat per space (or "*").
	spaceSeats map[string]seatRef
	allSeats   string
	consumed   string // the credential's header
}

// Check decides r. It never panics on any input and never allows on error:
// a context error denies with a timeout, a store failure with a 503.
func (a *Authorizer) Check(ctx context.Context, r *Request) Decision {
	d := a.decide(ctx, r)
	if !d.Allowed() {
		return d
	}
	// A method override (a header or a _method query parameter) makes some
	// upstreams run another method: the request must be allowed as that
	// method too, and the answer is that method's, so the identity headers
	// describe the rule the upstream's handler was checked against.
	m, ok := methodOverride(r)
	if !ok {
		return Deny(ReasonRequestInvalid)
	}
	if m != "" && m != upperMethod(r.Method) {
		o := *r
		o.Method = m
		od := a.decide(ctx, &o)
		if !od.Allowed() {
			return od
		}
		if od.Remove == nil {
			od.Remove = d.Remove // the credential the request's own method consumed
		}
		d = od
	}
	d.Remove = a.removals(r.Headers, &d)
	return d
}

func (a *Authorizer) decide(ctx context.Context, r *Request) Decision {
	path, err := NormalizePath(r.Path)
	if err != nil {
		return Deny(ReasonPathInvalid)
	}
	host, ok := normalizeHost(r.Host)
	if !ok {
		return Deny(ReasonRequestInvalid)
	}
	pol, err := a.rules.Load().policyFor(host, upperMethod(r.Method), path, r.ContextExtensions)
	if err != nil {
		return Failure(ReasonConfigInvalid, err)
	}
	switch pol.access {
	case AccessPublic:
		return Decision{Status: 200, Reason: ReasonPublic, Rule: pol.name}
	case AccessAuthenticated, AccessPermission:
	default:
		d := Deny(ReasonNoRoute)
		d.Rule = pol.name
		return d
	}

	now := a.now()
	p, d := a.authenticate(ctx, r, now)
	if d.Status != 0 {
		d.Rule = pol.name
		return d
	}
	d = Decision{Identity: p.id, Rule: pol.name}
	if tenantMismatch(pol, r.Headers, p.id.Tenant) {
		d.Status, d.Reason = StatusFor(ReasonTenantMismatch), ReasonTenantMismatch
		return d
	}
	if pol.access == AccessAuthenticated {
		d.Status, d.Reason, d.Seats = 200, ReasonAllowed, p.allSeats
		d.Remove = credentialRemoval(p.consumed, a.keepCredential)
		return d
	}

	space, reason := spaceFor(pol, r.Headers)
	d.Permission, d.Space = pol.permission, space
	if reason != "" {
		d.Status, d.Reason = StatusFor(reason), reason
		return d
	}
	seats, allowed, err := a.permitted(ctx, p, space, pol.permission, now)
	if err != nil {
		return failureFrom(err, d)
	}
	d.Seats = seats
	if !allowed {
		d.Status, d.Reason = StatusFor(ReasonPermissionDenied), ReasonPermissionDenied
		return d
	}
	d.Status, d.Reason = 200, ReasonAllowed
	d.Remove = credentialRemoval(p.consumed, a.keepCredential)
	return d
}

func spaceFor(pol policy, h map[string]string) (string, Reason) {
	var s string
	switch pol.space.kind {
	case spacePath:
		s = pol.pathSpace
	case spaceFixed:
		s = pol.space.value
	case spaceHeader:
		s = h[pol.space.value]
		if s == "" {
			return "", ReasonSpaceMissing
		}
	}
	if !validName(s) {
		return "", ReasonSpaceInvalid
	}
	return s, ""
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

// authenticate verifies the request's credential. A zero Decision status
// means success.
func (a *Authorizer) authenticate(ctx context.Context, r *Request, now time.Time) (principal, Decision) {
	c := findCredential(r.Headers)
	switch c.kind {
	case credNone:
		return principal{}, Deny(ReasonCredentialMissing)
	case credAPIKey:
		return a.authenticateKey(ctx, c, now)
	case credBearerJWT:
		return a.authenticateToken(ctx, c, now)
	default:
		return principal{}, Deny(c.reason)
	}
}

func (a *Authorizer) authenticateKey(ctx context.Context, c credential, now time.Time) (principal, Decision) {
	pk, err := ParseAPIKey(c.value)
	if err != nil {
		return principal{}, Deny(ReasonAPIKeyMalformed)
	}
	e, err := a.keys.get(ctx, pk.ID, now)
	if err != nil {
		return principal{}, failureFrom(err, Decision{})
	}
	if e.absent {
		return principal{}, Deny(ReasonAPIKeyInvalid)
	}
	k := e.val
	// Compare the digest first and in constant time; only a caller holding
	// the key learns whether it expired or was revoked.
	if !HashAPIKey(c.value).Equal(k.Hash) || k.Tenant != pk.Tenant {
		return principal{}, Deny(ReasonAPIKeyInvalid)
	}
	if !k.RevokedAt.IsZero() {
		return principal{}, Deny(ReasonAPIKeyRevoked)
	}
	if !now.Before(k.ExpiresAt) {
		return principal{}, Deny(ReasonAPIKeyExpired)
	}
	a.markUsed(k, now)
	return principal{
		id:       Identity{Subject: k.subject, Tenant: k.Tenant, Method: AuthAPIKey, KeyID: k.ID},
		seats:    k.Seats,
		seatKeys: k.seatKeys,
		allSeats: k.allSeats,
		consumed: c.header,
	}, Decision{}
}

// permitted reports whether any of p's seats grants perm in space, and the
// seats that grant anything there.
func (a *Authorizer) permitted(ctx context.Context, p principal, space, perm string, now time.Time) (string, bool, error) {
	if p.spaceSeats != nil {
		return a.permittedBySpace(ctx, p, space, perm, now)
	}
	var (
		allowed bool
		first   string
		many    []string
	)
	for i, key := range p.seatKeys {
		inSpace, ok, err := a.seatGrants(ctx, key, space, perm, now)
		if err != nil {
			return "", false, err
		}
		if !inSpace {
			continue
		}
		allowed = allowed || ok
		switch {
		case first == "":
			first = p.seats[i]
		case many == nil:
			many = []string{first, p.seats[i]}
		default:
			many = append(many, p.seats[i])
		}
	}
	if many != nil {
		return strings.Join(many, ","), allowed, nil
	}
	return first, allowed, nil
}

// permittedBySpace decides for an usher token: the seat its hash_perm
// names for the space (or for "*"), with that seat's current grants.
func (a *Authorizer) permittedBySpace(ctx context.Context, p principal, space, perm string, now time.Time) (string, bool, error) {
	var allowed bool
	var matter []string
	for _, sp := range [2]string{space, "*"} {
		ref, ok := p.spaceSeats[sp]
		if !ok || slices.Contains(matter, ref.name) {
			continue
		}
		inSpace, grants, err := a.seatGrants(ctx, ref.key, space, perm, now)
		if err != nil {
			return "", false, err
		}
		if inSpace {
			matter = append(matter, ref.name)
			allowed = allowed || grants
		}
	}
	switch len(matter) {
	case 0:
		return "", false, nil
	case 1:
		return matter[0], allowed, nil
	}
	slices.Sort(matter)
	return strings.Join(matter, ","), allowed, nil
}

// seatGrants reads a seat (cached) and reports whether it grants anything
// in space, and whether it grants perm there. A deleted seat grants
// nothing.
func (a *Authorizer) seatGrants(ctx context.Context, key, space, perm string, now time.Time) (inSpace, allows bool, err error) {
	e, err := a.seats.get(ctx, key, now)
	if err != nil {
		return false, false, err
	}
	if e.absent {
		return false, false, nil
	}
	inSpace, allows = e.val.inSpace(space, perm)
	return inSpace, allows, nil
}

var (
	removeAPIKey        = []string{HeaderAPIKey}
	removeAuthorization = []string{HeaderAuthorization}
)

func credentialRemoval(header string, keep bool) []string {
	if keep {
		return nil
	}
	switch header {
	case HeaderAPIKey:
		return removeAPIKey
	case HeaderAuthorization:
		return removeAuthorization
	}
	return nil
}

// removals adds to d.Remove every client-sent header that reads as an
// identity header, except those the decision sets (they are overwritten).
func (a *Authorizer) removals(h map[string]string, d *Decision) []string {
	out := d.Remove
	copied := false
	for name := range h {
		if !isIdentityHeader(name) || d.sets(name) {
			continue
		}
		if !copied {
			out = slices.Clip(out) // never append into a shared slice
			copied = true
		}
		out = append(out, name)
	}
	if copied {
		slices.Sort(out)
	}
	return out
}

// sets reports whether an allowed decision sets header name upstream.
func (d *Decision) sets(name string) bool {
	if d.Identity.Method == AuthNone {
		return false
	}
	switch name {
	case HeaderSubject, HeaderTenant, HeaderAuth:
		return true
	case HeaderEmail:
		return d.Identity.Email != ""
	case HeaderIssuer:
		return d.Identity.Issuer != ""
	case HeaderSpace:
		return d.Space != ""
	case HeaderSeats:
		return d.Seats != ""
	}
	return false
}

// IdentityHeaders calls set for each identity header an allowed decision
// sends upstream, in a fixed order.
func (d *Decision) IdentityHeaders(set func(name, value string)) {
	if !d.Allowed() || d.Identity.Method == AuthNone {
		return
	}
	set(HeaderSubject, d.Identity.Subject)
	set(HeaderTenant, d.Identity.Tenant)
	if d.Identity.Email != "" {
		set(HeaderEmail, d.Identity.Email)
	}
	set(HeaderAuth, string(d.Identity.Method))
	if d.Identity.Issuer != "" {
		set(HeaderIssuer, d.Identity.Issuer)
	}
	if d.Space != "" {
		set(HeaderSpace, d.Space)
	}
	if d.Seats != "" {
		set(HeaderSeats, d.Seats)
	}
}
