// Not a step: the read-through cache in front of the store that the
// authenticate and authorise steps read keys, seats, signing keys, group
// indexes and verified tokens through.

package authz

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
)

// CacheConfig bounds the in-process caches.
type CacheConfig struct {
	// TTL is how long an entry is used without asking the store again. The
	// change feed purges changed entries long before; the TTL only bounds
	// how long a missed change can live.
	TTL time.Duration
	// StaleMax is how much longer than TTL an entry may still be used while
	// the store is failing. Zero serves nothing stale; the token cache
	// never serves stale, whatever this says.
	StaleMax time.Duration
	// NegativeTTL is how long "no such record" is remembered.
	NegativeTTL time.Duration
	// MaxCost bounds each cache's memory, in approximate bytes.
	MaxCost int64
	// LoadTimeout bounds one store read made to fill the cache.
	LoadTimeout time.Duration
	// MaxLoads bounds the store reads one cache has in flight; zero means
	// DefaultMaxLoads. See admit.
	MaxLoads int
}

// DefaultMaxLoads is the bound on one cache's store reads in flight when
// [CacheConfig.MaxLoads] is zero: below the MongoDB driver's default pool
// of 100 connections.
const DefaultMaxLoads = 64

// DefaultCacheConfig returns the defaults documented in the README.
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{
		TTL:         60 * time.Second,
		StaleMax:    5 * time.Minute,
		NegativeTTL: 5 * time.Second,
		MaxCost:     64 << 20,
		LoadTimeout: 2 * time.Second,
		MaxLoads:    DefaultMaxLoads,
	}
}

// Validate reports every problem with c, naming the config field.
func (c CacheConfig) Validate() error {
	var errs []error
	if c.TTL <= 0 {
		errs = append(errs, errors.New("cache.ttl: must be positive"))
	}
	if c.StaleMax < 0 {
		errs = append(errs, errors.New("cache.stale_max: must not be negative"))
	}
	if c.NegativeTTL <= 0 || c.NegativeTTL > c.TTL {
		errs = append(errs, errors.New("cache.negative_ttl: must be positive and at most cache.ttl"))
	}
	if c.MaxCost < 1<<20 {
		errs = append(errs, errors.New("cache.max_cost: must be at least 1048576 (1 MiB)"))
	}
	if c.LoadTimeout <= 0 {
		errs = append(errs, errors.New("cache.load_timeout: must be positive"))
	}
	if c.MaxLoads < 0 {
		errs = append(errs, errors.New("cache.max_loads: must not be negative (0 is the default, 64)"))
	}
	return errors.Join(errs...)
}

// CacheStats counts the outcomes of one cache; metrics read them.
type CacheStats struct {
	Hits       atomic.Uint64 // fresh entry used
	Misses     atomic.Uint64 // no fresh entry
	Stale      atomic.Uint64 // stale entry used because the store failed
	Loads      atomic.Uint64 // store reads
	LoadErrors atomic.Uint64 // store reads that failed
	Shed       atomic.Uint64 // loads refused: too many in flight or waiting
	// Entries is how many entries the cache holds (fresh, stale and
	// negative): each accepted set adds one, each entry leaving (evicted,
	// expired, replaced, purged, refused admission) takes one off.
	Entries atomic.Int64
}

// entry is one cached value, or the memory that there is none.
type entry[V any] struct {
	key        string // guards against hash collisions in the cache
	val        V
	absent     bool
	fetched    time.Time
	freshUntil time.Time
	// notAfter is the value's hard end, if it has one: from then on the
	// entry is never used, fresh or stale, and ended stands for it.
	notAfter time.Time
	ended    *entry[V]
}

// at returns e as it stands at now: e itself, or what stands for it once
// its hard end has passed.
func (e *entry[V]) at(now time.Time) *entry[V] {
	if e.ended != nil && !now.Before(e.notAfter) {
		return e.ended
	}
	return e
}

// cache is a read-through cache: bounded by cost, one load per key at a
// time, absence remembered briefly, and stale entries served for a bounded
// time while the store fails.
type cache[V any] struct {
	c  *ristretto.Cache[string, *entry[V]]
	sf singleflight.Group
	// closing is held shared by each load and exclusively by close.
	closing sync.RWMutex
	closed  bool
	gen     atomic.Uint64 // bumped by every purge; a load or stale entry older than a purge is not used
	cfg     CacheConfig
	now     func() time.Time
	stats   *CacheStats
	load    func(ctx context.Context, key string) (V, error)
	cost    func(V) int64
	// loadSlots and loadsWaiting bound the loads in flight; see admit.
	loadSlots    chan struct{}
	loadsWaiting atomic.Int64

	// What some caches' values need beyond the TTLs; set before first use.

	// negative, if set, reports whether a value is a remembered failure:
	// fresh for NegativeTTL, as an absent record is.
	negative func(V) bool
	// end, if set, returns a value's hard end (zero: none) and the value
	// that stands for it from then on: a verified token ends at its expiry
	// or its signing key's retirement and is then a token that failed. No
	// entry is used past its end, fresh or stale.
	end func(V) (time.Time, V)
	// neverStale: nothing is served stale, whatever cfg.StaleMax says; a
	// failed load is an error.
	neverStale bool
	// tracer, if set, wraps each store read in a span named span.
	tracer trace.Tracer
	span   string
}

func newCache[V any](cfg CacheConfig, now func() time.Time, load func(context.Context, string) (V, error), cost func(V) int64) (*cache[V], error) {
	stats := new(CacheStats)
	c, err := ristretto.NewCache(&ristretto.Config[string, *entry[V]]{
		NumCounters: max(cfg.MaxCost/100, 1000), // ~10 counters per expected entry of ~1 KB
		MaxCost:     cfg.MaxCost,
		BufferItems: 64,
		OnExit: func(e *entry[V]) {
			if e != nil { // ristretto also calls it for keys it did not hold
				stats.Entries.Add(-1)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("create cache: %w", err)
	}
	slots := cfg.MaxLoads
	if slots == 0 {
		slots = DefaultMaxLoads
	}
	return &cache[V]{c: c, cfg: cfg, now: now, stats: stats, load: load, cost: cost,
		loadSlots: make(chan struct{}, slots)}, nil
}

// errStoreFailed marks a load error that no stale entry could cover.
var errStoreFailed = errors.New("store failed")

// lookup returns the entry for key if a fresh one is cached, or what
// stands for it once its hard end has passed. now is the caller's clock
// reading (one per request).
func (c *cache[V]) lookup(key string, now time.Time) (*entry[V], bool) {
	e, ok := c.c.Get(key)
	if !ok || e.key != key {
		return nil, false
	}
	if ended := e.at(now); ended != e {
		// Known without the store: an expired token stays expired.
		c.stats.Hits.Add(1)
		return ended, true
	}
	if c.fresh(e, now) {
		c.stats.Hits.Add(1)
		return e, true
	}
	return nil, false
}

// get returns the entry for key, loading it with the cache's loader on a
// miss. Its errors are the caller's context error or wrap errStoreFailed.
func (c *cache[V]) get(ctx context.Context, key string, now time.Time) (*entry[V], error) {
	if e, ok := c.lookup(key, now); ok {
		return e, nil
	}
	return c.getWith(ctx, key, c.load)
}

// loader reads one value from the store.
type loader[V any] func(context.Context, string) (V, error)

// getWith loads key with fn after a miss: once for all callers waiting on
// the same key, serving a stale entry if the load fails and staleOK allows
// it.
func (c *cache[V]) getWith(ctx context.Context, key string, fn loader[V]) (*entry[V], error) {
	// Read the purge count before the entry: a purge after this point
	// means old may predate a change, so it is not served stale.
	gen := c.gen.Load()
	old, ok := c.c.Get(key)
	if ok && old.key != key {
		old, ok = nil, false
	}
	c.stats.Misses.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch := c.sf.DoChan(key, func() (e any, err error) {
		// A load outlives the Check that started it; close waits for it,
		// and a load that starts after close writes nothing.
		c.closing.RLock()
		defer c.closing.RUnlock()
		if c.closed {
			return nil, fmt.Errorf("%w: the cache is closed", errStoreFailed)
		}
		// singleflight re-panics a panic of the load on a goroutine of its
		// own, which would end the process; make it a failed load instead.
		defer func() {
			if p := recover(); p != nil {
				c.stats.LoadErrors.Add(1)
				e, err = nil, fmt.Errorf("%w: panic: %v", errStoreFailed, p)
			}
		}()
		// The load is shared by every caller waiting on key, so no single
		// caller's cancellation may end it; it has its own deadline.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.LoadTimeout)
		defer cancel()
		if d, ok := ctx.Deadline(); ok {
			lctx = context.WithValue(lctx, answerByKey{}, d)
		}
		release, err := c.admit(lctx)
		if err != nil {
			return nil, err
		}
		defer release()
		return c.fill(lctx, key, fn)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		now := c.now()
		if res.Err == nil {
			return res.Val.(*entry[V]).at(now), nil
		}
		if ok && c.staleOK(old, gen, now) {
			c.stats.Stale.Add(1)
			return old, nil
		}
		return nil, res.Err
	}
}

type answerByKey struct{}

// AnswerBy returns the deadline of the Check that started a load, if it
// has one. A load outlives that Check and runs under a deadline of its
// own (LoadTimeout), so that the callers sharing it are not cut short by
// the first; a loader may still use this to stop waiting for something it
// can do without (an identity provider's key refresh, when the keys it
// has still verify) in time for the Check to answer.
func AnswerBy(ctx context.Context) (time.Time, bool) {
	d, ok := ctx.Value(answerByKey{}).(time.Time)
	return d, ok
}

// staleOK reports whether old, read when the purge count was gen, may be
// served in place of a failed load at now: the cache serves stale entries,
// nothing was purged since old was read, old is within the stale bound
// and before its hard end.
func (c *cache[V]) staleOK(old *entry[V], gen uint64, now time.Time) bool {
	return !c.neverStale &&
		c.gen.Load() == gen &&
		now.Sub(old.fetched) < c.cfg.TTL+c.cfg.StaleMax &&
		old.at(now) == old
}

func (c *cache[V]) fresh(e *entry[V], now time.Time) bool { return now.Before(e.freshUntil) }

func (c *cache[V]) fill(ctx context.Context, key string, fn loader[V]) (*entry[V], error) {
	gen := c.gen.Load()
	c.stats.Loads.Add(1)
	v, err := c.traced(ctx, key, fn)
	now := c.now()
	e := &entry[V]{key: key, val: v, fetched: now}
	switch {
	case errors.Is(err, ErrNotFound):
		e.absent = true
	case err != nil:
		c.stats.LoadErrors.Add(1)
		return nil, fmt.Errorf("%w: %w", errStoreFailed, err)
	}
	fresh, cost := c.cfg.NegativeTTL, int64(64)
	negative := e.absent || c.negative != nil && c.negative(v)
	if !e.absent {
		cost = c.cost(v)
	}
	if !negative {
		fresh = c.cfg.TTL
		if c.end != nil {
			if end, ended := c.end(v); !end.IsZero() {
				e.notAfter, e.ended = end, &entry[V]{key: key, val: ended, fetched: now}
			}
		}
	}
	e.freshUntil = now.Add(fresh)
	if c.gen.Load() != gen {
		// A purge ran while loading: what was read may predate the change,
		// so use it for the requests waiting now but do not keep it.
		return e, nil
	}
	// The cache keeps an entry for the stale bound beyond its freshness,
	// to serve it while the store fails. An entry with a hard end is kept
	// for its whole TTL, also past its end, to answer what stands for it.
	life := fresh
	if !negative && !c.neverStale {
		life += c.cfg.StaleMax
	}
	if c.c.SetWithTTL(key, e, cost+int64(len(key)), life) {
		c.stats.Entries.Add(1)
	}
	// Make the entry visible before this load ends, so that the next
	// request hits instead of loading again.
	c.c.Wait()
	if c.gen.Load() != gen {
		// A purge raced with the set: drop what may now be stale.
		c.c.Del(key)
	}
	return e, nil
}

// purge forgets key. Loads running now will not be kept.
func (c *cache[V]) purge(key string) {
	c.gen.Add(1)
	c.c.Del(key)
}

// purgeAll forgets everything.
func (c *cache[V]) purgeAll() {
	c.gen.Add(1)
	c.c.Clear()
}

// close releases the cache once the loads in flight (each bounded by
// LoadTimeout) have ended: a load outlives the Check that started it, and
// must not write into a closed cache.
func (c *cache[V]) close() {
	if c == nil {
		return
	}
	c.closing.Lock()
	defer c.closing.Unlock()
	if !c.closed {
		c.closed = true
		c.c.Close()
	}
}

// loadQueueFactor is how many loads may wait for a slot per slot.
const loadQueueFactor = 16

// admit takes one of the cache's load slots for a load. A load outlives
// the Checks waiting on it (it has its own deadline), so a flood of
// distinct keys would otherwise leave ever more reads in flight against
// the store, and a new key's read would queue behind them. Beyond
// MaxLoads, a load waits for a slot within its deadline, and at most
// loadQueueFactor×MaxLoads of them wait: beyond that, a load fails at
// once, and its callers get a stale entry or a 503.
func (c *cache[V]) admit(ctx context.Context) (release func(), err error) {
	release = func() { <-c.loadSlots }
	select {
	case c.loadSlots <- struct{}{}:
		return release, nil
	default:
	}
	if c.loadsWaiting.Add(1) > int64(loadQueueFactor*cap(c.loadSlots)) {
		c.loadsWaiting.Add(-1)
		c.stats.Shed.Add(1)
		return nil, fmt.Errorf("%w: %d loads in flight and more waiting", errStoreFailed, cap(c.loadSlots))
	}
	defer c.loadsWaiting.Add(-1)
	select {
	case c.loadSlots <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		c.stats.Shed.Add(1)
		return nil, fmt.Errorf("%w: no load slot free within the load timeout", errStoreFailed)
	}
}

// traceWith makes each store read of c a span called name.
func (c *cache[V]) traceWith(t trace.Tracer, name string) { c.tracer, c.span = t, name }

// traced runs the load fn, in a span of its own when tracing is on. The
// span names the cache, never the key (an id at most, but nothing of a
// credential goes into traces).
func (c *cache[V]) traced(ctx context.Context, key string, fn loader[V]) (V, error) {
	if c.tracer == nil {
		return fn(ctx, key)
	}
	ctx, span := c.tracer.Start(ctx, c.span, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	v, err := fn(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		span.SetAttributes(attribute.Bool("usher.found", false))
	case err != nil:
		span.SetStatus(codes.Error, "store read failed")
	}
	return v, err
}
