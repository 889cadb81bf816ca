package authz

import (
	"context"

	"sync"
	"time"
)

// usageGranularity is how often one key's use is noted at most; notes are
// written to the store in batches, never once per request.
const usageGranularity = time.Second

// usageBatch collects "last used" times until they are flushed.
type usageBatch struct {
	store   KeyUsage
	mu      sync.Mutex
	pending map[string]time.Time
}

func (a *Authorizer) markUsed(k *keyInfo, now time.Time) {
	if a.usage == nil {
		return
	}
	last := k.lastUsed.Load()
	t := now.UnixNano()
	if t-last < int64(usageGranularity) || !k.lastUsed.CompareAndSwap(last, t) {
		return
	}
	a.usage.mu.Lock()
	if now.After(a.usage.pending[k.ID]) {
		a.usage.pending[k.ID] = now
	}
	a.usage.mu.Unlock()
}

// FlushUsage writes the "last used" times noted since the last flush. On
// failure the times are kept for the next flush.
func (a *Authorizer) FlushUsage(ctx context.Context) error {
	if a.usage == nil {
		return nil
	}
	u := a.usage
	u.mu.Lock()
	batch := u.pending
	u.pending = make(map[string]time.Time, len(batch))
	u.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := u.store.TouchAPIKeys(ctx, batch); err != nil {
		u.mu.Lock()
		for id, t := range batch {
			if t.After(u.pending[id]) {
				u.pending[id] = t
			}
		}
		u.mu.Unlock()
		return err
	}
	return nil
}
