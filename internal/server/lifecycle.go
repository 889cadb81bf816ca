package server

import (
	"context"
	"log/slog"
)

// A component is one step of start-up and what undoes it at shutdown.
// Components start in order; at shutdown, or when a later one fails to
// start, the started ones stop in reverse. A role added later (another
// listener, the login app) is one more component in [server.components].
type component struct {
	name  string
	start func(ctx context.Context) error
	// stop undoes start; nil when there is nothing to undo. Its ctx is
	// never cancelled: each stop bounds its own waits.
	stop func(ctx context.Context)
}

// startAll starts comps in order. If one fails, it stops those already
// started, in reverse, and returns the error. Otherwise it returns the
// function that stops every component in reverse.
func startAll(ctx context.Context, comps []component, log *slog.Logger) (stopAll func(), err error) {
	var started []component
	stopAll = func() {
		sctx := context.WithoutCancel(ctx)
		for i := len(started) - 1; i >= 0; i-- {
			if c := started[i]; c.stop != nil {
				log.DebugContext(sctx, "stopping", "component", c.name)
				c.stop(sctx)
			}
		}
	}
	for _, c := range comps {
		log.DebugContext(ctx, "starting", "component", c.name)
		if err := c.start(ctx); err != nil {
			stopAll()
			return nil, err
		}
		started = append(started, c)
	}
	return stopAll, nil
}

// background is a component that runs fn in a goroutine until it is
// stopped. fn's context is not the start context: it ends when the
// component stops, in its turn, not when shutdown begins.
func background(name string, fn func(ctx context.Context)) component {
	var stop func()
	return component{
		name: name,
		start: func(ctx context.Context) error {
			bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			done := make(chan struct{})
			go func() {
				defer close(done)
				fn(bctx)
			}()
			stop = func() {
				cancel()
				<-done
			}
			return nil
		},
		stop: func(context.Context) { stop() },
	}
}
