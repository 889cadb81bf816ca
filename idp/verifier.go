package idp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/usher-dev/usher/authz"
)

// Trust says that a tenant accepts an issuer's tokens for an audience, and
// where in them the user's groups are.
type Trust struct {
	Tenant      string
	Issuer      string
	Audience    string
	GroupsClaim string
	// TokenType, if set, is the typ header the tokens must carry (at+jwt
	// for RFC 9068 access tokens; "application/" may prefix it, any case).
	TokenType string
	// ClientIDs, if set, are the clients whose tokens are accepted: of the
	// token's azp and client_id claims, at least one must be present and
	// every one present must be in the list.
	ClientIDs []string
	// MatchGroupNames lets a group named like a seat give that seat;
	// otherwise only the seat's group aliases match.
	MatchGroupNames bool
}

// Lookup reads every tenant's trusts. There are few: the verifier keeps
// them all in memory, so that a token naming an issuer nobody trusts costs
// no store read.
type Lookup interface {
	Trusts(ctx context.Context) ([]Trust, error)
}

// LookupFunc adapts a function to Lookup.
type LookupFunc func(ctx context.Context) ([]Trust, error)

// Trusts implements Lookup.
func (f LookupFunc) Trusts(ctx context.Context) ([]Trust, error) { return f(ctx) }

// Config wires a Verifier.
type Config struct {
	Lookup Lookup
	// Client reaches the providers; nil means NewClient(5s).
	Client *http.Client
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// RefetchEvery bounds how often a provider's keys are fetched because
	// a token names an unknown kid; zero means 30s.
	RefetchEvery time.Duration
	// RefreshEvery is how old a provider's key set may grow before it is
	// fetched again, so that a key the provider withdrew stops verifying;
	// zero means 1h.
	RefreshEvery time.Duration
	// KeysStaleMax is how long a provider's last good key set keeps
	// verifying after its last successful fetch while fetches fail: tokens
	// signed with a known key go on passing through an IdP outage that
	// long, and are refused 503 issuer_unavailable after it. A fetch that
	// succeeds replaces the set at once, so a key the provider withdrew
	// stops verifying then, however long the bound. Zero means
	// DefaultKeysStaleMax.
	KeysStaleMax time.Duration
	// TrustTTL is how long trust records are cached; changes purge them
	// sooner. Zero means 1m.
	TrustTTL time.Duration
	// TrustStaleMax is how much longer than TrustTTL the last trusts read
	// keep serving while reading them again fails (the store is down), so
	// a store outage does not refuse every IdP token at once. A change to
	// the trusts (Apply) ends it at once: what was read may predate the
	// change. Zero means 5m, as cache.stale_max.
	TrustStaleMax time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

// Verifier verifies IdP tokens for the tenants that trust their issuer. It
// is safe for concurrent use.
type Verifier struct {
	cfg Config
	sf  singleflight.Group

	mu        sync.Mutex
	trusts    map[string][]Trust // by issuer: every trust, read at once
	fetched   time.Time          // when trusts was read; zero: read again
	readAt    time.Time          // the last successful read, for metrics
	gen       uint64             // bumped by Apply: a read that began before is not kept
	providers map[string]*provider
}

// DefaultKeysStaleMax is the default KeysStaleMax: a day. Provider outages
// last minutes to hours, and a day leaves room for the longest and for a
// person to notice; it also bounds how long a key the provider withdrew
// keeps verifying when usher cannot reach the key set to learn of it
// (its egress blocked, perhaps by whoever stole the key). Providers
// publish keys weeks before and after they sign with them, so a day-old
// set holds the keys tokens are signed with.
const DefaultKeysStaleMax = 24 * time.Hour

// discoveryRetry is how long a failed discovery is remembered before the
// next attempt.
const discoveryRetry = 5 * time.Second

// provider is an issuer's discovered provider, or its failed discovery.
// After an issuer change it is discovered again (stale), but a provider
// that worked keeps serving, with its last good keys, until that succeeds:
// an unrelated trust change during an outage must not drop the keys.
type provider struct {
	verifier *oidc.IDTokenVerifier
	keys     *keySet
	algs     []string
	stale    bool  // an issuer change came: discover again
	err      error // discovery failed at failedAt (and no provider worked before)
	failedAt time.Time
}

// New returns a Verifier.
func New(cfg Config) *Verifier {
	if cfg.Client == nil {
		cfg.Client = NewClient(5 * time.Second)
	}
	if cfg.RefetchEvery == 0 {
		cfg.RefetchEvery = 30 * time.Second
	}
	if cfg.RefreshEvery == 0 {
		cfg.RefreshEvery = time.Hour
	}
	if cfg.KeysStaleMax == 0 {
		cfg.KeysStaleMax = DefaultKeysStaleMax
	}
	if cfg.TrustTTL == 0 {
		cfg.TrustTTL = time.Minute
	}
	if cfg.TrustStaleMax == 0 {
		cfg.TrustStaleMax = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Verifier{cfg: cfg, providers: map[string]*provider{}}
}

// Apply forgets what an issuer change makes stale: the trusts, and the
// discovery of the issuer that changed (its keys are kept until a new
// discovery works).
func (v *Verifier) Apply(ch authz.Change) {
	if ch.Kind != authz.ChangeIssuer {
		return
	}
	v.mu.Lock()
	v.gen++
	v.fetched = time.Time{}
	if p, ok := v.providers[ch.Key]; ok {
		if p.err != nil {
			delete(v.providers, ch.Key)
		} else {
			q := *p
			q.stale, q.failedAt = true, time.Time{}
			v.providers[ch.Key] = &q
		}
	}
	v.mu.Unlock()
}

func tokenErr(r authz.Reason, format string, args ...any) error {
	return &authz.TokenError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// TrustsReadAt returns when the trusted issuers were last read
// successfully; zero before the first read. Metrics export it, so an alert
// can fire while the verifier serves the last good trusts.
func (v *Verifier) TrustsReadAt() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.readAt
}

// ClockOffset returns the largest offset, in either direction, between
// this host's clock and a trusted provider's, as the Date header of each
// provider's last key set answer tells (this clock minus the provider's),
// and whether any provider told one. An offset near jwt.leeway means
// fresh tokens are refused as not yet valid, or expired ones accepted late.
func (v *Verifier) ClockOffset() (time.Duration, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var worst time.Duration
	known := false
	for _, p := range v.providers {
		if p.keys == nil || !p.keys.offsetKnown.Load() {
			continue
		}
		d := time.Duration(p.keys.offset.Load())
		if !known || d.Abs() > worst.Abs() {
			worst, known = d, true
		}
	}
	return worst, known
}

// Verify implements authz.ExternalVerifier.
func (v *Verifier) Verify(ctx context.Context, token, issuer string) (authz.ExternalToken, error) {
	trusts, err := v.trustsOf(ctx, issuer)
	if err != nil {
		return authz.ExternalToken{}, err
	}
	if len(trusts) == 0 {
		return authz.ExternalToken{}, tokenErr(authz.ReasonIssuerUnknown, "no tenant trusts issuer %q", issuer)
	}
	p, err := v.provider(ctx, issuer)
	if err != nil {
		return authz.ExternalToken{}, err
	}
	vctx, out := withOutcome(ctx)
	idt, err := p.verifier.Verify(vctx, token)
	if err != nil {
		return authz.ExternalToken{}, v.reason(err, out)
	}
	// Verified: the claims may be read now.
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return authz.ExternalToken{}, tokenErr(authz.ReasonTokenMalformed, "claims: %v", err)
	}
	if err := v.checkTimes(claims); err != nil {
		return authz.ExternalToken{}, err
	}
	trust, err := pickTrust(trusts, idt.Audience)
	if err != nil {
		return authz.ExternalToken{}, err
	}
	if err := checkKind(token, claims, trust); err != nil {
		return authz.ExternalToken{}, err
	}
	if idt.Subject == "" {
		return authz.ExternalToken{}, tokenErr(authz.ReasonTokenClaimsInvalid, "sub missing")
	}
	x := authz.ExternalToken{Tenant: trust.Tenant, Issuer: issuer, Subject: idt.Subject, Expires: idt.Expiry,
		GroupsMatchSeatNames: trust.MatchGroupNames, KeysValidUntil: out.keysUntil}
	// Only a verified email: some IdPs let users set theirs, and an
	// upstream keying accounts by email would hand them another's.
	if email, ok := claims["email"].(string); ok && claims["email_verified"] == true {
		x.Email = email
	}
	x.Groups, x.Overage, err = groupsOf(claims, trust.GroupsClaim)
	if err != nil {
		return authz.ExternalToken{}, err
	}
	return x, nil
}

// reason maps a go-oidc verification error to a reason. go-oidc reports
// most errors as text; the key set tells what it saw through out.
func (v *Verifier) reason(err error, out *outcome) error {
	var expired *oidc.TokenExpiredError
	switch {
	case out.unavailable != nil:
		return fmt.Errorf("keys: %w", out.unavailable)
	case !out.verified:
		return tokenErr(authz.ReasonTokenInvalid, "%v", err)
	case errors.As(err, &expired) && expired.Expiry.IsZero():
		return tokenErr(authz.ReasonTokenClaimsInvalid, "exp missing")
	case errors.As(err, &expired):
		return tokenErr(authz.ReasonTokenExpired, "%v", err)
	case strings.Contains(err.Error(), "before the nbf"):
		return tokenErr(authz.ReasonTokenNotYetValid, "%v", err)
	case strings.Contains(err.Error(), "unmarshal claims"):
		return tokenErr(authz.ReasonTokenMalformed, "%v", err)
	}
	return tokenErr(authz.ReasonTokenClaimsInvalid, "%v", err)
}

// checkTimes requires exp and holds nbf and iat to the leeway (go-oidc
// allows nbf five minutes and does not look at iat).
func (v *Verifier) checkTimes(claims map[string]any) error {
	now := v.cfg.Now().Add(v.cfg.Leeway)
	if _, ok := claims["exp"].(float64); !ok {
		return tokenErr(authz.ReasonTokenClaimsInvalid, "exp missing or not a number")
	}
	for _, name := range []string{"nbf", "iat"} {
		raw, present := claims[name]
		if !present {
			continue
		}
		t, ok := raw.(float64)
		if !ok {
			return tokenErr(authz.ReasonTokenClaimsInvalid, "%s is not a number", name)
		}
		if time.Unix(int64(t), 0).After(now) {
			return tokenErr(authz.ReasonTokenNotYetValid, "%s is in the future", name)
		}
	}
	return nil
}

// checkKind holds a verified token to its trust's token type and clients:
// an IdP's ID tokens, or another app's access tokens, can carry the same
// issuer and audience as the access tokens the tenant means to accept.
func checkKind(token string, claims map[string]any, t Trust) error {
	if t.TokenType != "" {
		typ, err := headerType(token)
		if err != nil {
			return tokenErr(authz.ReasonTokenMalformed, "header: %v", err)
		}
		if !sameType(typ, t.TokenType) {
			return tokenErr(authz.ReasonTokenInvalid, "typ %q, want %q", typ, t.TokenType)
		}
	}
	if len(t.ClientIDs) > 0 {
		seen := false
		for _, name := range []string{"azp", "client_id"} {
			raw, present := claims[name]
			if !present {
				continue
			}
			id, ok := raw.(string)
			if !ok || !slices.Contains(t.ClientIDs, id) {
				return tokenErr(authz.ReasonTokenClaimsInvalid, "%s %v is not an allowed client", name, raw)
			}
			seen = true
		}
		if !seen {
			return tokenErr(authz.ReasonTokenClaimsInvalid, "neither azp nor client_id names the client")
		}
	}
	return nil
}

// headerType reads the typ of a token whose signature was verified (the
// header is signed).
func headerType(token string) (string, error) {
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", err
	}
	var h struct {
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", err
	}
	return h.Typ, nil
}

// sameType compares media types as RFC 7515 §4.1.9 says for typ: case
// insensitive, "application/" optional.
func sameType(a, b string) bool {
	trim := func(s string) string {
		s = strings.ToLower(s)
		return strings.TrimPrefix(s, "application/")
	}
	return trim(a) == trim(b)
}

// pickTrust finds the one tenant whose configured audience the token
// carries.
func pickTrust(trusts []Trust, aud []string) (Trust, error) {
	var found []Trust
	for _, t := range trusts {
		if slices.Contains(aud, t.Audience) {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Trust{}, tokenErr(authz.ReasonTokenClaimsInvalid, "audience %q is not one this issuer is trusted for", aud)
	}
	tenants := make([]string, len(found))
	for i, t := range found {
		tenants[i] = t.Tenant
	}
	return Trust{}, tokenErr(authz.ReasonTokenClaimsInvalid, "audience %q is trusted by several tenants (%s)", aud, strings.Join(tenants, ", "))
}

// groupsOf reads the groups at a claim path. An Entra "overage" (the
// groups left out, named in _claim_names instead) is reported as such: the
// caller gives it no seats.
func groupsOf(claims map[string]any, path string) ([]string, bool, error) {
	if names, ok := claims["_claim_names"].(map[string]any); ok {
		head, _, _ := strings.Cut(path, ".")
		if _, over := names[head]; over {
			return nil, true, nil
		}
		if _, over := names["groups"]; over {
			return nil, true, nil
		}
	}
	var cur any = claims
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		if cur, ok = m[part]; !ok {
			return nil, false, nil
		}
	}
	switch val := cur.(type) {
	case string:
		return []string{val}, false, nil
	case []any:
		out := make([]string, 0, len(val))
		for _, g := range val {
			s, ok := g.(string)
			if !ok {
				return nil, false, tokenErr(authz.ReasonTokenClaimsInvalid, "groups claim %s holds a non-string", path)
			}
			out = append(out, s)
		}
		return out, false, nil
	case nil:
		return nil, false, nil
	}
	return nil, false, tokenErr(authz.ReasonTokenClaimsInvalid, "groups claim %s is neither a string nor a list", path)
}

// trustsOf returns the trusts of an issuer from the trusts in memory,
// reading them all again when they are older than TrustTTL or an issuer
// changed.
func (v *Verifier) trustsOf(ctx context.Context, issuer string) ([]Trust, error) {
	now := v.cfg.Now()
	v.mu.Lock()
	if !v.fetched.IsZero() && now.Sub(v.fetched) < v.cfg.TrustTTL {
		t := v.trusts[issuer]
		v.mu.Unlock()
		return t, nil
	}
	gen := v.gen
	v.mu.Unlock()
	all, err, _ := v.sf.Do("trusts", func() (any, error) { return v.cfg.Lookup.Trusts(ctx) })
	if err != nil {
		v.mu.Lock()
		defer v.mu.Unlock()
		// The last good trusts serve on through a failing read, for a
		// bound, unless a change came since they were read
		// (docs/security-catalogue.md row 114).
		if !v.fetched.IsZero() && v.gen == gen && now.Sub(v.fetched) < v.cfg.TrustTTL+v.cfg.TrustStaleMax {
			v.cfg.Logger.WarnContext(ctx, "reading the trusted issuers failed; serving the last ones read",
				"read_at", v.fetched, "err", err)
			return v.trusts[issuer], nil
		}
		return nil, fmt.Errorf("read the trusted issuers: %w", err)
	}
	byIssuer := map[string][]Trust{}
	for _, t := range all.([]Trust) {
		byIssuer[t.Issuer] = append(byIssuer[t.Issuer], t)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.readAt = now
	if v.gen == gen {
		// Keep it only if no change came while reading: it may predate one.
		v.trusts, v.fetched = byIssuer, now
	}
	return byIssuer[issuer], nil
}

// provider returns the discovered provider of a trusted issuer, running
// discovery once (and again after a failure, at most every 5s), shared by
// every request waiting for it. After an issuer change the provider is
// discovered again; until that works the one before serves.
func (v *Verifier) provider(ctx context.Context, issuer string) (*provider, error) {
	v.mu.Lock()
	prev, ok := v.providers[issuer]
	gen := v.gen
	v.mu.Unlock()
	switch {
	case ok && prev.err == nil && !prev.stale:
		return prev, nil
	case ok && v.cfg.Now().Sub(prev.failedAt) < discoveryRetry:
		return prev, prev.err
	case !ok || prev.err != nil:
		prev = nil
	}
	res, _, _ := v.sf.Do("discover "+issuer, func() (any, error) { return v.discover(ctx, issuer, prev), nil })
	p := res.(*provider)
	if p.err != nil && prev != nil {
		// Keep the provider that worked, and its last good keys.
		q := *prev
		q.failedAt = p.failedAt
		p = &q
	}
	v.mu.Lock()
	if v.gen == gen {
		v.providers[issuer] = p
	}
	v.mu.Unlock()
	return p, p.err
}

// discover runs discovery. When it names the key set and algorithms of
// prev, the provider that served before, prev's keys are kept.
func (v *Verifier) discover(ctx context.Context, issuer string, prev *provider) *provider {
	d, err := Discover(ctx, v.cfg.Client, issuer)
	if err != nil {
		msg := "identity provider discovery failed"
		if prev != nil {
			msg += "; its last good discovery and keys serve until it works"
		}
		v.cfg.Logger.WarnContext(ctx, msg, "issuer", issuer, "err", err)
		return &provider{err: err, failedAt: v.cfg.Now()}
	}
	if prev != nil && prev.keys.url == d.JWKSURL && slices.Equal(prev.algs, d.Algorithms) {
		return &provider{keys: prev.keys, algs: prev.algs, verifier: prev.verifier}
	}
	algs := make([]jose.SignatureAlgorithm, len(d.Algorithms))
	for i, a := range d.Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	ks := &keySet{url: d.JWKSURL, client: v.cfg.Client, algs: algs, now: v.cfg.Now,
		refetchEvery: v.cfg.RefetchEvery, refreshEvery: v.cfg.RefreshEvery, staleMax: v.cfg.KeysStaleMax,
		log: v.cfg.Logger.With("issuer", issuer)}
	leeway := v.cfg.Leeway
	return &provider{keys: ks, algs: d.Algorithms, verifier: oidc.NewVerifier(issuer, ks, &oidc.Config{
		SkipClientIDCheck:    true, // the audience is checked per tenant
		SupportedSigningAlgs: d.Algorithms,
		Now:                  func() time.Time { return v.cfg.Now().Add(-leeway) },
	})}
}
