package envoy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineCtx is its parent with the per-Check deadline, made lazily: the
// timer and the Done channel of context.WithDeadline only exist once
// something asks for Done (a store read does; a decision from the cache
// does not), so a cached Check costs no timer and no registration with the
// gRPC stream's context. Err and Deadline answer without them.
type deadlineCtx struct {
	context.Context // the parent; Value goes to it

	deadline time.Time
	once     sync.Once
	started  atomic.Bool
	inner    context.Context
	cancel   context.CancelFunc
}

// canceled is what a released deadlineCtx that never started reads as.
var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func (c *deadlineCtx) init(parent context.Context, timeout time.Duration) {
	c.Context = parent
	c.deadline = time.Now().Add(timeout)
	if d, ok := parent.Deadline(); ok && d.Before(c.deadline) {
		c.deadline = d
	}
}

func (c *deadlineCtx) start() {
	c.once.Do(func() {
		c.inner, c.cancel = context.WithDeadline(c.Context, c.deadline)
		c.started.Store(true)
	})
}

// release ends the context, as a CancelFunc does.
func (c *deadlineCtx) release() {
	c.once.Do(func() {
		c.inner, c.cancel = canceled, func() {}
		c.started.Store(true)
	})
	c.cancel()
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Done() <-chan struct{} {
	c.start()
	return c.inner.Done()
}

func (c *deadlineCtx) Err() error {
	if c.started.Load() {
		return c.inner.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// AfterFunc lets a context derived from this one be cancelled with it
// without a goroutine of its own (context.AfterFunc's fast path).
func (c *deadlineCtx) AfterFunc(f func()) (stop func() bool) {
	c.start()
	return context.AfterFunc(c.inner, f)
}
