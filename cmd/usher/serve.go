package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
	"github.com/usher-dev/usher/idp"
	"github.com/usher-dev/usher/internal/seal"
	"github.com/usher-dev/usher/store"
)

func newServeCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "serve",
		Short: "run the ext_authz gRPC server (and /healthz, /readyz, /metrics) on the embedded store or MongoDB",
		Long: `serve answers Envoy's envoy.service.auth.v3.Authorization/Check over gRPC.

Configuration comes from defaults, then --config (YAML), then USHER_*
environment variables, then flags; each later source wins. Every problem in
the configuration is reported before anything listens, and serve exits 2.

SIGTERM or SIGINT drains in-flight Checks and stops cleanly. SIGHUP reloads
the rules file.`,
		Args: args(),
	}
	load := configFlags(c.Flags())
	c.RunE = func(c *cobra.Command, _ []string) error {
		cfg, err := load(e.getenv)
		if err != nil {
			return usageError{err}
		}
		deps, err := cfg.open(e.getenv)
		if err != nil {
			return usageError{err}
		}
		return serve(c.Context(), cfg, deps, newLogger(cfg, e.stderr))
	}
	return c
}

// serveDeps is what the configuration names, read before anything
// listens.
type serveDeps struct {
	rules  *authz.Rules
	tls    *tls.Config
	master seal.Key
}

// open reads the files the configuration names, reporting every problem.
func (c *serveConfig) open(getenv func(string) string) (serveDeps, error) {
	var errs []error
	d := serveDeps{rules: authz.DenyAllRules()}
	if c.Rules != "" {
		r, err := loadRules(c.Rules)
		if err != nil {
			errs = append(errs, err)
		} else {
			d.rules = r
		}
	}
	var err error
	if d.tls, err = c.TLS.load(); err != nil {
		errs = append(errs, err)
	}
	if d.master, err = loadMasterKey(getenv, c.MasterKeyFile); err != nil {
		errs = append(errs, err)
	}
	return d, errors.Join(errs...)
}

func loadRules(path string) (*authz.Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return authz.ParseRules(path, data)
}

func (t tlsConfig) load() (*tls.Config, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.client_ca_file: %s holds no PEM certificate", t.ClientCAFile)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

func newLogger(cfg serveConfig, w io.Writer) *slog.Logger {
	level, _ := parseLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// gate decides with the authorizer once the store is open, and denies with
// store_unavailable until then.
type gate struct {
	a atomic.Pointer[authz.Authorizer]
}

func (g *gate) Check(ctx context.Context, r *authz.Request) authz.Decision {
	if a := g.a.Load(); a != nil {
		return a.Check(ctx, r)
	}
	return authz.Failure(authz.ReasonStoreUnavailable, errors.New("store not reached yet"))
}

// serve runs until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg serveConfig, deps serveDeps, log *slog.Logger) error {
	rules, tlsConf := deps.rules, deps.tls
	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("grpc_addr: %w", err)
	}
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		_ = grpcLis.Close()
		return fmt.Errorf("http_addr: %w", err)
	}

	var g gate
	var ready atomic.Bool
	m := newMetrics(&ready)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)

	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
	}
	if tlsConf != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConf)))
	}
	gs := grpc.NewServer(append(opts, envoy.ServerOptions()...)...)
	authv3.RegisterAuthorizationServer(gs, &envoy.Server{
		Decider: &g, Timeout: cfg.CheckTimeout, Realm: cfg.Realm,
		Logger: log.With("component", "check"), Observe: m.observe,
	})
	healthpb.RegisterHealthServer(gs, hs)
	httpSrv := &http.Server{
		Handler:           m.mux(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	var wg sync.WaitGroup
	serveErr := make(chan error, 2)
	wg.Go(func() {
		if err := gs.Serve(grpcLis); err != nil {
			serveErr <- fmt.Errorf("grpc server: %w", err)
		}
	})
	wg.Go(func() {
		if err := httpSrv.Serve(httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("http server: %w", err)
		}
	})
	log.InfoContext(ctx, "usher listening", "grpc_addr", grpcLis.Addr().String(), "http_addr", httpLis.Addr().String(), "tls", tlsConf != nil)

	stopServers := func() {
		hs.Shutdown()
		ready.Store(false)
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(cfg.ShutdownTimeout):
			log.Warn("shutdown: in-flight Checks did not finish in time; closing")
			gs.Stop()
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		_ = httpSrv.Shutdown(sctx)
		wg.Wait()
	}

	st, err := openServeStore(ctx, cfg, deps.master, log)
	if err != nil {
		stopServers()
		if ctx.Err() != nil {
			log.Info("stopped before the store answered")
			return nil // told to stop while waiting for the store
		}
		return err
	}
	if err := checkKeyring(ctx, st, deps.master, log); err != nil {
		stopServers()
		_ = st.Close(context.WithoutCancel(ctx))
		return err
	}
	a, err := authz.New(authz.Config{
		Rules: rules, Keys: st, Seats: st, Usage: st,
		SigningKeys: st,
		Token:       cfg.JWT.authz(),
		External: idp.New(idp.Config{
			Lookup: trustLookup(st),
			Leeway: cfg.JWT.Leeway,
			Logger: log.With("component", "idp"),
		}),
		SeatLister:     st,
		Cache:          cfg.Cache.authz(),
		KeepCredential: cfg.KeepCredential,
		Logger:         log.With("component", "authz"),
	})
	if err != nil {
		stopServers()
		_ = st.Close(context.WithoutCancel(ctx))
		return err
	}
	m.watchCaches(a)
	pos, err := authz.Position(ctx, st)
	if err != nil {
		stopServers()
		a.Close()
		_ = st.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("read the change feed's position: %w", err)
	}
	g.a.Store(a)
	ready.Store(true)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	log.InfoContext(ctx, "usher ready", "store", st.Where, "rules", cfg.Rules, "rule_count", rules.Len())

	bgCtx, stopBg := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Go(func() { _ = a.Follow(bgCtx, st, cfg.ChangesInterval, pos) })
	bg.Go(func() { every(bgCtx, cfg.UsageFlushInterval, func() { flushUsage(bgCtx, a, log) }) })
	bg.Go(func() {
		// The feed stays short: on the embedded store every poll reads it.
		every(bgCtx, cfg.ChangesRetention/6, func() {
			if _, err := st.PruneChanges(bgCtx, time.Now().Add(-cfg.ChangesRetention)); err != nil {
				log.WarnContext(bgCtx, "prune change feed", "err", err)
			}
		})
	})
	bg.Go(func() { reloadOnHUP(bgCtx, cfg.Rules, a, log) })

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight Checks")
	case runErr = <-serveErr:
		log.Error("server failed; shutting down", "err", runErr)
	}
	stopServers()
	stopBg()
	bg.Wait()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	flushUsage(fctx, a, log)
	a.Close()
	if err := st.Close(fctx); err != nil {
		log.Error("close store", "err", err)
	}
	log.Info("stopped")
	return runErr
}

// openServeStore opens the store. The embedded store opens once or fails
// (a held lock is not worth waiting on); MongoDB is retried until it
// answers or ctx ends, while Checks deny with store_unavailable and
// /readyz says not ready.
func openServeStore(ctx context.Context, cfg serveConfig, master seal.Key, log *slog.Logger) (*store.Store, error) {
	opts := store.Options{URI: cfg.MongoURI, DataDir: cfg.DataDir, Serve: true, MasterKey: master,
		Logger: log.With("component", "store")}
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		st, err := store.Open(octx, opts)
		cancel()
		if err == nil {
			return st, nil
		}
		if cfg.MongoURI == "" || ctx.Err() != nil {
			return nil, err
		}
		log.WarnContext(ctx, "store not reachable; retrying", "err", err, "retry_in", delay)
		if !sleepCtx(ctx, delay) {
			return nil, ctx.Err()
		}
	}
}

// checkKeyring refuses to serve when the store holds signing keys that the
// master key (or its absence) cannot open: tokens would be refused, and the
// operator should hear it now, not from every client.
func checkKeyring(ctx context.Context, st *store.Store, master seal.Key, log *slog.Logger) error {
	n, err := st.CheckKeyring(ctx)
	if err != nil {
		return usageError{err}
	}
	if n == 0 && master.IsZero() {
		log.InfoContext(ctx, "no master key: usher's own access tokens need one, once `usher key rotate` has made a signing key")
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
			out[i] = idp.Trust{Tenant: x.Tenant, Issuer: x.Issuer, Audience: x.Audience, GroupsClaim: x.GroupsClaim}
		}
		return out, nil
	})
}

func flushUsage(ctx context.Context, a *authz.Authorizer, log *slog.Logger) {
	if err := a.FlushUsage(ctx); err != nil {
		log.WarnContext(ctx, "record api key use; will retry", "err", err)
	}
}

func reloadOnHUP(ctx context.Context, path string, a *authz.Authorizer, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if path == "" {
			log.Info("SIGHUP: no rules file to reload")
			continue
		}
		r, err := loadRules(path)
		if err != nil {
			log.Error("SIGHUP: rules not reloaded; keeping the current ones", "err", err)
			continue
		}
		a.SetRules(r)
		log.Info("SIGHUP: rules reloaded", "rules", path, "rule_count", r.Len())
	}
}

// every calls fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
