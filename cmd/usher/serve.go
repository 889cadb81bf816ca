package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/usher-dev/usher/internal/config"
	srv "github.com/usher-dev/usher/internal/server"
	"github.com/usher-dev/usher/internal/tracing"
)

func newServeCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "serve",
		Short: "run the ext_authz gRPC server (and /healthz, /readyz, /metrics) on the embedded store or MongoDB",
		Long: `serve answers Envoy's envoy.service.auth.v3.Authorization/Check over gRPC.
With --http-check-addr it also answers the same decision over plain HTTP:
Envoy's http_service at /ext_authz, nginx auth_request, Traefik forwardAuth
and Caddy forward_auth at /auth (forwarded headers believed only from
--trusted-proxies).

Configuration comes from defaults, then --config (YAML), then USHER_*
environment variables, then flags; each later source wins. Every problem in
the configuration is reported before anything listens, and serve exits 2.

SIGTERM or SIGINT drains in-flight Checks and stops cleanly. SIGHUP reloads
the rules file.`,
		Args: args(),
	}
	load := config.Flags(c.Flags())
	c.RunE = func(c *cobra.Command, _ []string) error {
		// SIGHUP is taken before anything else, so that one sent while
		// serve starts (waiting for MongoDB, say) waits for the rules
		// to be reloadable instead of killing the process.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)

		cfg, err := load(e.getenv)
		if err != nil {
			return usageError{err}
		}
		files, err := cfg.Open(e.getenv)
		if err != nil {
			return usageError{err}
		}
		log := newLogger(cfg, e.stderr)
		tracer, stopTracing, err := tracing.Setup(c.Context(), e.getenv, versionString())
		if err != nil {
			return usageError{err}
		}
		defer func() {
			if err := stopTracing(context.WithoutCancel(c.Context())); err != nil {
				log.Warn("flush traces", "err", err)
			}
		}()
		err = srv.Run(c.Context(), cfg, srv.Deps{
			Rules: files.Rules, TLS: files.TLS, MasterKey: files.MasterKey,
			Reload: hup, Logger: log, Tracer: tracer,
		})
		if _, ok := errors.AsType[srv.ConfigError](err); ok {
			return usageError{err}
		}
		return err
	}
	return c
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	level, _ := config.ParseLevel(cfg.LogLevel)
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
