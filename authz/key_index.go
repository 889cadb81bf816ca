// Not a step: the index of the API keys that exist, which the authenticate
// step consults before the key cache, so that a key id the store does not
// hold (a flood of made-up keys, a key of a tenant that does not exist)
// costs no read of a key.

package authz

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// KeyIndexSource is what the key index reads from the store: the tenant
// and id of every API key, and the change feed that keeps the index
// current.
type KeyIndexSource interface {
	ChangeFeed
	// APIKeyIDs calls fn with the tenant and id of every stored API key,
	// revoked and expired ones included, and stops at fn's first error.
	APIKeyIDs(ctx context.Context, fn func(tenant, id string) error) error
}

// LoadKeyIndex lists every API key id into the key index, which Check
// consults from then on. Call it before serving (after [Position], so that
// the index starts no earlier than the follower); without it, or without
// [Config.KeyIndex], every unknown key id costs a store read.
func (a *Authorizer) LoadKeyIndex(ctx context.Context) error {
	if a.index == nil {
		return nil
	}
	return a.index.load(ctx)
}

// indexSyncGap is the least time between two rounds of the index reading
// the feed for a miss: a flood of unknown key ids costs at most one feed
// read per gap, whatever its size, and a key created a moment ago is found
// within about a gap and one read.
const indexSyncGap = 20 * time.Millisecond

// indexReloadTimeout bounds one listing of every key id.
const indexReloadTimeout = 5 * time.Minute

// keyIndexShards spreads the set over locks, so that parallel Checks do
// not contend on one.
const keyIndexShards = 64

// keyIndex is the set of (tenant, key id) pairs the store holds, as 64-bit
// hashes: 11 to 21 bytes a key (README, BenchmarkKeyIndexMemory). It only grows: keys are never deleted, and a
// pair that no longer existed would only cost the read it did before. A
// hash collision likewise only costs a read.
//
// It is kept current by the change feed twice over: the follower adds the
// keys it applies ([Authorizer.Apply]), and a pair the index lacks, which
// may be a key created a moment ago by another process (the CLI) whose
// change the follower has not read yet, waits for a round that starts
// after the question and reads the feed from the index's position. Every
// miss waiting meanwhile shares the round, and rounds are at least
// indexSyncGap apart, so a flood's misses cost one feed read per gap and
// never a key read. A gap in the feed (changes pruned before the index
// read them) lists every key again.
type keyIndex struct {
	src     KeyIndexSource
	seed    maphash.Seed
	timeout time.Duration // of a round that reads the feed
	loaded  atomic.Bool   // consulted only once listed
	shards  [keyIndexShards]indexShard

	mu        sync.Mutex // guards what follows
	pos       int64      // every change up to it is in the set
	reload    bool       // the feed had a gap: the next round lists again
	next      *indexRound
	running   bool // a goroutine runs rounds while misses wait
	lastStart time.Time
}

// indexShard is an open-addressing set of nonzero hashes with linear
// probing: 8 bytes a slot, at most 3/4 full. (A Go map of uint64 to
// struct{} takes twice the memory: its slots are padded to 16 bytes.)
type indexShard struct {
	mu    sync.RWMutex
	slots []uint64 // 0 is an empty slot; the length is a power of two
	n     int
	_     [24]byte // one shard per cache line
}

// slot is where probing for h starts: the low bits chose the shard.
func (s *indexShard) slot(h uint64) int { return int((h / keyIndexShards) & uint64(len(s.slots)-1)) }

func (s *indexShard) has(h uint64) bool {
	mask := len(s.slots) - 1
	for i := s.slot(h); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

func (s *indexShard) insert(h uint64) {
	if (s.n+1)*4 > len(s.slots)*3 {
		old := s.slots
		s.slots, s.n = make([]uint64, 2*len(old)), 0
		for _, v := range old {
			if v != 0 {
				s.insert(v)
			}
		}
	}
	mask := len(s.slots) - 1
	for i := s.slot(h); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return
		case 0:
			s.slots[i] = h
			s.n++
			return
		}
	}
}

// indexRound is one read of the feed that misses wait for.
type indexRound struct {
	done chan struct{}
	err  error
}

func newKeyIndex(src KeyIndexSource, timeout time.Duration) *keyIndex {
	x := &keyIndex{src: src, seed: maphash.MakeSeed(), timeout: timeout}
	for i := range x.shards {
		x.shards[i].slots = make([]uint64, 16)
	}
	return x
}

func (x *keyIndex) hash(tenant, id string) uint64 {
	return max(maphash.Comparable(x.seed, [2]string{tenant, id}), 1) // 0 marks an empty slot
}

func (x *keyIndex) shard(h uint64) *indexShard { return &x.shards[h%keyIndexShards] }

func (x *keyIndex) has(h uint64) bool {
	s := x.shard(h)
	s.mu.RLock()
	ok := s.has(h)
	s.mu.RUnlock()
	return ok
}

func (x *keyIndex) add(tenant, id string) {
	h := x.hash(tenant, id)
	s := x.shard(h)
	s.mu.Lock()
	s.insert(h)
	s.mu.Unlock()
}

// note records what ch says about keys: a key change adds its key, and a
// change of a kind this version does not know (or the follower's gap)
// lists every key again on the next round.
func (x *keyIndex) note(ch Change) {
	switch ch.Kind {
	case ChangeAPIKey:
		x.add(ch.Tenant, ch.Key)
	case ChangeSeat, ChangeSpace, ChangeTenant, ChangeSigningKey, ChangeIssuer, ChangeSession:
	default:
		x.mu.Lock()
		x.reload = true
		x.mu.Unlock()
		return
	}
	x.mu.Lock()
	if ch.Seq == x.pos+1 {
		x.pos = ch.Seq
	}
	x.mu.Unlock()
}

// load lists every key. The feed's position is read first: a key created
// while listing is listed or its change lies after the position.
func (x *keyIndex) load(ctx context.Context) error {
	x.mu.Lock()
	x.reload = false
	x.mu.Unlock()
	err := x.list(ctx)
	if err != nil {
		x.mu.Lock()
		x.reload = true
		x.mu.Unlock()
		return fmt.Errorf("%w: load key index: %w", errStoreFailed, err)
	}
	x.loaded.Store(true)
	return nil
}

func (x *keyIndex) list(ctx context.Context) error {
	pos, err := x.src.LastChange(ctx)
	if err != nil {
		return err
	}
	if err := x.src.APIKeyIDs(ctx, func(tenant, id string) error {
		x.add(tenant, id)
		return nil
	}); err != nil {
		return err
	}
	x.mu.Lock()
	x.pos = max(x.pos, pos)
	x.mu.Unlock()
	return nil
}

// known reports whether tenant has a key with id. A pair the index lacks is
// looked for again after a round of reading the feed that starts after
// the question. Its errors are ctx's or wrap errStoreFailed.
func (x *keyIndex) known(ctx context.Context, tenant, id string) (bool, error) {
	h := x.hash(tenant, id)
	if x.has(h) {
		return true, nil
	}
	if err := x.awaitRound(ctx); err != nil {
		return false, err
	}
	return x.has(h), nil
}

// awaitRound waits for a round that has not started yet: the next one.
func (x *keyIndex) awaitRound(ctx context.Context) error {
	x.mu.Lock()
	r := x.next
	if r == nil {
		r = &indexRound{done: make(chan struct{})}
		x.next = r
		if !x.running {
			x.running = true
			// The round is shared by every miss waiting on it, so no
			// single caller's cancellation may end it.
			go x.runRounds(context.WithoutCancel(ctx))
		}
	}
	x.mu.Unlock()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.done:
		return r.err
	}
}

// runRounds runs rounds, at least indexSyncGap apart, while misses wait
// for one; it is the only goroutine the index starts.
func (x *keyIndex) runRounds(ctx context.Context) {
	for {
		x.mu.Lock()
		wait := indexSyncGap - time.Since(x.lastStart)
		x.mu.Unlock()
		if wait > 0 {
			time.Sleep(wait)
		}
		x.mu.Lock()
		r := x.next
		x.next = nil
		if r == nil {
			x.running = false
			x.mu.Unlock()
			return
		}
		x.lastStart = time.Now()
		x.mu.Unlock()
		r.err = x.catchUp(ctx)
		close(r.done)
	}
}

// catchUp adds the keys of the changes after the index's position, or
// lists every key again after a gap.
func (x *keyIndex) catchUp(ctx context.Context) error {
	x.mu.Lock()
	pos, reload := x.pos, x.reload
	x.mu.Unlock()
	if !reload {
		var err error
		if reload, err = x.readFeed(ctx, pos); err != nil {
			return err
		}
	}
	if reload {
		ctx, cancel := context.WithTimeout(ctx, indexReloadTimeout)
		defer cancel()
		return x.load(ctx)
	}
	return nil
}

// readFeed notes the changes after pos, reporting a gap: changes pruned
// before the index read them, so that what was created meanwhile is
// unknown.
func (x *keyIndex) readFeed(ctx context.Context, pos int64) (gap bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, x.timeout)
	defer cancel()
	for {
		changes, err := x.src.ChangesAfter(ctx, pos, changeBatch)
		if err != nil {
			return false, fmt.Errorf("%w: key index: %w", errStoreFailed, err)
		}
		if len(changes) > 0 && changes[0].Seq != pos+1 {
			return true, nil
		}
		for _, ch := range changes {
			x.note(ch)
			pos = ch.Seq
		}
		if len(changes) < changeBatch {
			return false, nil
		}
	}
}

// indexDenies answers a key that the index says does not exist, with no
// read of a key. It answers nothing (false) for a key that may exist, or
// while no index is loaded.
func (a *Authorizer) indexDenies(ctx context.Context, tenant, id string) (Decision, bool) {
	x := a.index
	if x == nil || !x.loaded.Load() {
		return Decision{}, false
	}
	ok, err := x.known(ctx, tenant, id)
	switch {
	case err != nil:
		return failureFrom(err, Decision{}), true
	case !ok:
		return Deny(ReasonAPIKeyInvalid), true
	}
	return Decision{}, false
}
