package server

import (
	"context"
	"time"

	"github.com/usher-dev/usher/internal/config"
)

// usageFlusher writes API keys' last-use times every usage_flush_interval
// and once more when it stops, after the last Check.
func (s *server) usageFlusher() component {
	c := background("usage flusher", func(ctx context.Context) {
		every(ctx, s.cfg.UsageFlushInterval, func() { s.flushUsage(ctx) })
	})
	stopLoop := c.stop
	c.stop = func(ctx context.Context) {
		stopLoop(ctx)
		s.flushUsage(ctx)
	}
	return c
}

func (s *server) flushUsage(ctx context.Context) {
	fctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	if err := s.authz.FlushUsage(fctx); err != nil {
		s.log.WarnContext(ctx, "record api key use; will retry", "err", err)
	}
}

// follow applies the change feed to the caches.
func (s *server) follow(ctx context.Context) {
	_ = s.authz.Follow(ctx, s.st, s.cfg.ChangesInterval, s.pos)
}

// pruner is the store's change-feed pruning.
type pruner interface {
	PruneChanges(ctx context.Context, before time.Time) (int64, error)
}

// prune keeps the change feed short (on the embedded store every poll
// reads it): every changes_retention/6 it drops what is older than
// changes_retention.
func (s *server) prune(ctx context.Context, p pruner) {
	every(ctx, s.cfg.ChangesRetention/6, func() {
		pctx, cancel := context.WithTimeout(ctx, s.callTimeout)
		defer cancel()
		if _, err := p.PruneChanges(pctx, time.Now().Add(-s.cfg.ChangesRetention)); err != nil {
			s.log.WarnContext(ctx, "prune change feed", "err", err)
		}
	})
}

// reloadRules reads the rules file again on each value from deps.Reload.
func (s *server) reloadRules(ctx context.Context) {
	path := s.cfg.Rules
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.deps.Reload:
		}
		if path == "" {
			s.log.InfoContext(ctx, "SIGHUP: no rules file to reload")
			continue
		}
		r, err := config.LoadRules(path)
		if err != nil {
			s.log.ErrorContext(ctx, "SIGHUP: rules not reloaded; keeping the current ones", "err", err)
			continue
		}
		s.authz.SetRules(r)
		s.log.InfoContext(ctx, "SIGHUP: rules reloaded", "rules", path, "rule_count", r.Len())
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
