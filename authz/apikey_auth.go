// Step 3, authenticate an API key: read the key record by the id the key
// carries (cached), compare the key's digest with the stored one in
// constant time, then refuse a revoked or expired key. The key format
// itself is in apikey.go; what a key parses to is remembered by its digest.
// Uses are noted and written to the store in batches.

package authz

import (
	"context"
	"encoding/binary"
	"errors"
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
	if len(c.value) > maxAPIKeyLen {
		// What ParseAPIKey refuses too; checked before hashing, so that an
		// oversized header costs nothing.
		return principal{}, Deny(ReasonAPIKeyMalformed)
	}
	h := HashAPIKey(c.value)
	pk, known := a.parsedKeys.lookup(h)
	if !known {
		var err error
		if pk, err = ParseAPIKey(c.value); err != nil {
			return principal{}, Deny(ReasonAPIKeyMalformed)
		}
		// A key id the index does not know costs no key read: a flood of
		// made-up ids must not queue ahead of real keys. A key the digest
		// index knows has matched its record, so it exists.
		if d, denied := a.indexDenies(ctx, pk.Tenant, pk.ID); denied {
			return principal{}, d
		}
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
	if !h.Equal(k.Hash) || k.Tenant != pk.Tenant {
		return principal{}, Deny(ReasonAPIKeyInvalid)
	}
	if !known {
		// Only a key that matched its record is remembered: unknown or
		// forged keys cannot evict the keys in use.
		a.parsedKeys.remember(h, pk)
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

// parsedKeySlots is how many parsed keys the digest index holds: a slot per
// digest's low bits, overwritten on a collision, so its memory is bounded
// (a pointer a slot, and one small record per key in use).
const parsedKeySlots = 1 << 14

// parsedKeys remembers what well-formed keys that authenticated parse to,
// indexed by the key's SHA-256, which every check computes anyway to compare
// with the stored digest. A hit skips decoding ~150 base62 digits; it holds
// only the parse result, a function of the key string, never the key's
// record: the record is read through the key cache on every request, so a
// revocation or purge of the key id applies as before.
type parsedKeys [parsedKeySlots]atomic.Pointer[parsedKey]

type parsedKey struct {
	hash KeyHash
	ParsedAPIKey
}

func (t *parsedKeys) slot(h KeyHash) *atomic.Pointer[parsedKey] {
	return &t[binary.LittleEndian.Uint64(h[:8])%parsedKeySlots]
}

// lookup returns the parse of the key whose digest is h, if remembered.
func (t *parsedKeys) lookup(h KeyHash) (ParsedAPIKey, bool) {
	if p := t.slot(h).Load(); p != nil && p.hash.Equal(h) {
		return p.ParsedAPIKey, true
	}
	return ParsedAPIKey{}, false
}

// remember stores the parse of the key whose digest is h.
func (t *parsedKeys) remember(h KeyHash, pk ParsedAPIKey) {
	t.slot(h).Store(&parsedKey{hash: h, ParsedAPIKey: pk})
}

// usageGranularity is how often one key's use is noted at most; notes are
// written to the store in batches, never once per request.
const usageGranularity = time.Second

// usageBatch collects "last used" times (of API keys, or sessions' "last
// seen") until they are flushed to the store with touch.
type usageBatch struct {
	touch   func(context.Context, map[string]time.Time) error
	what    string
	mu      sync.Mutex
	pending map[string]time.Time
}

func newUsageBatch(what string, touch func(context.Context, map[string]time.Time) error) *usageBatch {
	return &usageBatch{touch: touch, what: what, pending: map[string]time.Time{}}
}

// note records a use of id at now, keeping the latest.
func (u *usageBatch) note(id string, now time.Time) {
	u.mu.Lock()
	if now.After(u.pending[id]) {
		u.pending[id] = now
	}
	u.mu.Unlock()
}

// pendingFor returns the latest use of id not yet flushed.
func (u *usageBatch) pendingFor(id string) time.Time {
	if u == nil {
		return time.Time{}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.pending[id]
}

// flush writes the times noted since the last flush. On failure they are
// kept for the next one (merged with any noted meanwhile).
func (u *usageBatch) flush(ctx context.Context) error {
	if u == nil {
		return nil
	}
	u.mu.Lock()
	batch := u.pending
	u.pending = make(map[string]time.Time, len(batch))
	u.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := u.touch(ctx, batch); err != nil {
		for id, t := range batch {
			u.note(id, t)
		}
		return fmt.Errorf("record %s use: %w", u.what, err)
	}
	return nil
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
	a.usage.note(k.ID, now)
}

// FlushUsage writes the "last used" times of API keys and the "last seen"
// times of sessions noted since the last flush. On failure the times are
// kept for the next flush.
func (a *Authorizer) FlushUsage(ctx context.Context) error {
	return errors.Join(a.usage.flush(ctx), a.sessionUsage.flush(ctx))
}
