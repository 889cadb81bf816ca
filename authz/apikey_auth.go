// Step 3, authenticate an API key: read the key record by the id the key
// carries (cached), compare the key's digest with the stored one in
// constant time, then refuse a revoked or expired key. The key format
// itself is in apikey.go. Uses are noted and written to the store in
// batches.

package authz

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// keyInfo is a cached API key with the principal it authenticates.
type keyInfo struct {
	APIKey
	// principal is who the key authenticates; its consumed header is set
	// per request.
	principal principal
	lastUsed  atomic.Int64
}

func (k *keyInfo) cost() int64 {
	return int64(256 + len(k.principal.id.Subject) + k.principal.seats.cost())
}

func (a *Authorizer) loadKey(ctx context.Context, id string) (*keyInfo, error) {
	k, err := a.keyStore.APIKey(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load api key %s: %w", id, err)
	}
	if k.ID != id {
		return nil, fmt.Errorf("load api key %s: store returned key %s", id, k.ID)
	}
	seats := newSeatList(k.Tenant, slices.Clone(k.Seats))
	k.Seats = seats.names
	return &keyInfo{
		APIKey: k,
		principal: principal{
			id:       Identity{Subject: "apikey:" + k.ID, Tenant: k.Tenant, Method: AuthAPIKey, KeyID: k.ID},
			seats:    seats,
			allSeats: seats.joined,
		},
	}, nil
}

func (a *Authorizer) authenticateKey(ctx context.Context, c credential, now time.Time) (principal, Decision) {
	pk, err := ParseAPIKey(c.value)
	if err != nil {
		return principal{}, Deny(ReasonAPIKeyMalformed)
	}
	if d, denied := a.indexDenies(ctx, pk.Tenant, pk.ID); denied {
		return principal{}, d
	}
	e, err := a.keys.get(ctx, pk.ID, now)
	if err != nil {
		return principal{}, failureFrom(err, Decision{})
	}
	if e.absent {
		return principal{}, Deny(ReasonAPIKeyInvalid)
	}
	k := e.val
	// Compare the digest first and in constant time; only a caller holding
	// the key learns whether it expired or was revoked.
	if !HashAPIKey(c.value).Equal(k.Hash) || k.Tenant != pk.Tenant {
		return principal{}, Deny(ReasonAPIKeyInvalid)
	}
	if !k.RevokedAt.IsZero() {
		return principal{}, Deny(ReasonAPIKeyRevoked)
	}
	if !now.Before(k.ExpiresAt) {
		return principal{}, Deny(ReasonAPIKeyExpired)
	}
	a.markUsed(k, now)
	p := k.principal
	p.consumed = c.header
	return p, Decision{}
}

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
