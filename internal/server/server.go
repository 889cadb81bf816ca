package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
	"github.com/usher-dev/usher/idp"
	"github.com/usher-dev/usher/internal/config"
	"github.com/usher-dev/usher/internal/seal"
	"github.com/usher-dev/usher/internal/tracing"
	"github.com/usher-dev/usher/internal/wait"
	"github.com/usher-dev/usher/store"
)

// Deadlines of the store calls the server makes on its own (not those of
// a Check, which check_timeout and cache.load_timeout bound), so that one
// hung connection cannot hold start-up or a background loop forever.
const (
	// OpenTimeout bounds one attempt to open the store: connect, ping and
	// make sure the indexes exist. MongoDB is then tried again.
	OpenTimeout = 30 * time.Second
	// CallTimeout bounds each other call: the keyring check and the read
	// of the feed position at start-up, each usage flush and change-feed
	// prune, and the last flush and the store's close at shutdown. A loop
	// whose call runs out logs it and tries again on its next tick.
	CallTimeout = 10 * time.Second
)

// Deps is what [Run] needs besides the configuration.
type Deps struct {
	// Rules are the route rules to start with.
	Rules *authz.Rules
	// TLS is the gRPC server's TLS configuration; nil for plaintext.
	TLS *tls.Config
	// MasterKey opens the store's signing keys.
	MasterKey seal.Key
	// Reload asks for the rules file to be read again (SIGHUP). Values
	// that arrive before the authorizer exists wait in the channel; nil
	// means never.
	Reload <-chan os.Signal
	// Logger receives every log line.
	Logger *slog.Logger
	// Tracer, if set, traces Checks, their store reads and IdP fetches
	// (internal/tracing); nil is off.
	Tracer trace.Tracer
}

// A ConfigError is a start-up failure the operator fixes in the
// configuration, such as a master key that does not open the store's
// signing keys.
type ConfigError struct{ Err error }

func (e ConfigError) Error() string { return e.Err.Error() }
func (e ConfigError) Unwrap() error { return e.Err }

// Run serves until ctx ends, then shuts down gracefully. It starts, in
// order: the listeners (so that /healthz answers and Checks deny with
// store_unavailable while MongoDB is awaited), the store, the keyring
// check, the authorizer and its caches, the feed position, the usage
// flusher, the feed follower and pruner, rules reloading, and finally
// readiness. At shutdown it stops them in reverse: it drains in-flight
// Checks (up to shutdown_timeout, then cancels them and waits for their
// handlers), stops the background loops, flushes usage, closes the
// caches, the store and the listeners. Told to stop while starting, it
// stops what it started and returns nil.
func Run(ctx context.Context, cfg config.Config, d Deps) error {
	s := newServer(cfg, d)
	return s.run(ctx, s.components())
}

// server is one serving process. Each component's start sets the fields
// the later ones use.
type server struct {
	cfg  config.Config
	deps Deps
	log  *slog.Logger
	// openTimeout and callTimeout are OpenTimeout and CallTimeout; tests
	// shorten them.
	openTimeout, callTimeout time.Duration
	// httpLimits are defaultHTTPLimits; tests shorten them.
	httpLimits httpLimits

	ready    atomic.Bool
	gate     gate
	decider  envoy.Decider // what Checks ask: the gate
	metrics  *metrics
	health   *health.Server
	grpc     *grpc.Server
	http     *http.Server
	grpcAddr net.Addr
	httpAddr net.Addr
	// httpCheck is HTTP check mode's server; nil when http_check_addr is
	// empty.
	httpCheck *http.Server
	// login is the login app's server; nil unless login is enabled and
	// this server has the login role.
	login     *http.Server
	loginAddr net.Addr
	checkAddr net.Addr
	serving   sync.WaitGroup // the listeners' Serve loops
	failed    chan error     // a listener's failure
	drained   sync.Once

	st    *store.Store
	authz *authz.Authorizer
	pos   int64
}

func newServer(cfg config.Config, d Deps) *server {
	s := &server{cfg: cfg, deps: d, log: d.Logger, openTimeout: OpenTimeout, callTimeout: CallTimeout,
		httpLimits: defaultHTTPLimits, failed: make(chan error, 3)}
	s.decider = &s.gate
	s.metrics = newMetrics(&s.ready)
	return s
}

// components is the start order; shutdown is its reverse.
func (s *server) components() []component {
	return []component{
		{name: "listeners", start: s.listen, stop: s.closeListeners},
		{name: "store", start: s.openStore, stop: s.closeStore},
		{name: "keyring", start: s.checkKeyring},
		{name: "authorizer", start: s.newAuthorizer, stop: func(context.Context) { s.authz.Close() }},
		{name: "feed position", start: s.readPosition},
		{name: "key index", start: s.loadKeyIndex},
		s.usageFlusher(),
		background("feed follower", s.follow),
		background("feed pruner", func(ctx context.Context) { s.prune(ctx, s.st) }),
		background("rules reload", s.reloadRules),
		{name: "login app", start: s.startLogin, stop: s.stopLogin},
		{name: "ready", start: s.serve, stop: s.drain},
	}
}

func (s *server) run(ctx context.Context, comps []component) error {
	stopAll, err := startAll(ctx, comps, s.log)
	if err != nil {
		return s.startFailed(ctx, err)
	}
	var runErr error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down: draining in-flight Checks")
	case runErr = <-s.failed:
		s.log.Error("server failed; shutting down", "err", runErr)
	}
	stopAll()
	s.log.Info("stopped")
	return runErr
}

// startFailed is Run's result when start-up fails: nil if it failed
// because Run was told to stop (while waiting for MongoDB, say).
func (s *server) startFailed(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	s.log.Info("stopped before start-up finished", "err", err)
	return nil
}

// openStore opens the store. The embedded store opens once or fails (a
// held lock is not worth waiting on); MongoDB is retried until it answers
// or ctx ends, while Checks deny with store_unavailable and /readyz says
// not ready.
func (s *server) openStore(ctx context.Context) error {
	opts := store.Options{URI: s.cfg.MongoURI, DataDir: s.cfg.DataDir, Serve: true, MasterKey: s.deps.MasterKey,
		Logger: s.log.With("component", "store")}
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		octx, cancel := context.WithTimeout(ctx, s.openTimeout)
		st, err := store.Open(octx, opts)
		cancel()
		if err == nil {
			s.st = st
			return nil
		}
		if s.cfg.MongoURI == "" || ctx.Err() != nil {
			return err
		}
		s.log.WarnContext(ctx, "store not reachable; retrying", "err", err, "retry_in", delay)
		if !wait.Sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

func (s *server) closeStore(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	if err := s.st.Close(ctx); err != nil {
		s.log.ErrorContext(ctx, "close store", "err", err)
	}
}

// checkKeyring refuses to serve when the store holds signing keys that the
// master key (or its absence) cannot open: tokens would be refused, and the
// operator should hear it now, not from every client.
func (s *server) checkKeyring(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	n, err := s.st.CheckKeyring(cctx)
	if err != nil {
		return ConfigError{err}
	}
	if n == 0 && s.deps.MasterKey.IsZero() {
		s.log.InfoContext(ctx, "no master key: usher's own access tokens need one, once `usher key rotate` has made a signing key")
	}
	return nil
}

func (s *server) newAuthorizer(context.Context) error {
	a, verifier, err := NewAuthorizer(s.cfg, s.st, s.deps.Rules, Hooks{Usage: s.st, Tracer: s.deps.Tracer,
		ChangeLag: s.metrics.observeChangeLag}, s.log)
	if err != nil {
		return err
	}
	s.authz = a
	s.metrics.watchCaches(a)
	s.metrics.watchEntries(a)
	s.metrics.watchTrusts(verifier)
	s.metrics.watchClock(verifier)
	return nil
}

// Hooks are what the server adds to an authorizer; the zero value adds
// nothing (`usher explain`).
type Hooks struct {
	// Usage records key use (nil: none is recorded).
	Usage authz.KeyUsage
	// Tracer traces store reads and IdP fetches (nil: off).
	Tracer trace.Tracer
	// ChangeLag observes how long changes take to be applied.
	ChangeLag func(time.Duration)
}

// NewAuthorizer builds the authorizer `usher serve` decides with, on st,
// and the IdP token verifier behind it. usage records key use; `usher
// explain` passes nil so that explaining changes nothing.
func NewAuthorizer(cfg config.Config, st *store.Store, rules *authz.Rules, h Hooks, log *slog.Logger) (*authz.Authorizer, *idp.Verifier, error) {
	usage, tr := h.Usage, h.Tracer
	client := idp.NewClient(5 * time.Second)
	client.Transport = tracing.Transport(client.Transport, tr)
	verifier := idp.New(idp.Config{
		Client:        client,
		Lookup:        trustLookup(st),
		Leeway:        cfg.JWT.Leeway,
		KeysStaleMax:  cfg.IdP.KeysStaleMax,
		TrustStaleMax: cfg.Cache.StaleMax,
		Logger:        log.With("component", "idp"),
	})
	acfg := authz.Config{
		Tracer:    tr,
		ChangeLag: h.ChangeLag,
		Rules:     rules, Keys: st, Seats: st, Usage: usage,
		SigningKeys:    st,
		Token:          cfg.JWT.Authz(),
		External:       verifier,
		SeatLister:     st,
		KeyIndex:       st,
		Cache:          cfg.Cache.Authz(),
		KeepCredential: cfg.KeepCredential,
		Logger:         log.With("component", "authz"),
	}
	if cfg.Login.Enabled {
		// The session cookie is the third credential, and usher tokens
		// minted from a login stop when its session is revoked.
		acfg.Sessions, acfg.Cookie = st, cfg.Login.Cookie()
		if su, ok := usage.(authz.SessionUsage); ok {
			acfg.SessionUsage = su
		}
	}
	a, err := authz.New(acfg)
	if err != nil {
		return nil, nil, err
	}
	return a, verifier, nil
}

// readPosition reads the change feed's position before serving, so that a
// change made while the caches fill is not missed.
func (s *server) readPosition(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	pos, err := authz.Position(pctx, s.st)
	if err != nil {
		return fmt.Errorf("read the change feed's position: %w", err)
	}
	s.pos = pos
	return nil
}

// loadKeyIndex lists every API key id into the authorizer's index, after
// the feed position is read (so that the index misses no key created
// meanwhile) and before serving: from then on an unknown key id costs no
// store read. Listing a million keys is one cursor over a projection, so
// it is bounded like opening the store.
func (s *server) loadKeyIndex(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, s.openTimeout)
	defer cancel()
	if err := s.authz.LoadKeyIndex(lctx); err != nil {
		return fmt.Errorf("load the API key index: %w", err)
	}
	return nil
}

// trustLookup reads the issuers tenants trust from the store.
func trustLookup(st *store.Store) idp.Lookup {
	return idp.LookupFunc(func(ctx context.Context) ([]idp.Trust, error) {
		is, err := st.AllIssuers(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]idp.Trust, len(is))
		for i, x := range is {
			out[i] = idp.Trust{Tenant: x.Tenant, Issuer: x.Issuer, Audience: x.Audience, GroupsClaim: x.GroupsClaim,
				TokenType: x.TokenType, ClientIDs: x.ClientIDs, MatchGroupNames: x.MatchGroupNames}
		}
		return out, nil
	})
}
