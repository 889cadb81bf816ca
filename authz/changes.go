package authz

import (
	"context"
	"time"
)

// changeBatch is how many changes one poll reads at most.
const changeBatch = 1000

// Apply purges what change makes stale from the caches, and adds a key it
// names to the key index.
func (a *Authorizer) Apply(ch Change) {
	if a.index != nil {
		a.index.note(ch)
	}
	switch ch.Kind {
	case ChangeAPIKey:
		a.keys.purge(ch.Key)
	case ChangeSeat:
		a.seats.purge(seatKey(ch.Tenant, ch.Key))
		a.groups.purge(ch.Tenant)
		// IdP tokens hold the seats their groups resolved to.
		a.tokens.purgeAll()
	case ChangeSpace:
		// Spaces are not cached: grants name them and checks read grants.
	case ChangeSigningKey:
		a.signingKeys.purge(ch.Key)
		a.tokens.purgeAll()
	case ChangeIssuer:
		// The verifier forgets the trust first: a verification starting
		// after the purge must not use it.
		if x, ok := a.external.(interface{ Apply(Change) }); ok {
			x.Apply(ch)
		}
		a.tokens.purgeAll()
	default:
		// A tenant change, or a kind this version does not know: forget
		// everything rather than risk keeping something stale.
		if x, ok := a.external.(interface{ Apply(Change) }); ok {
			x.Apply(Change{Kind: ChangeIssuer})
		}
		for _, c := range []interface{ purgeAll() }{a.keys, a.seats, a.signingKeys, a.groups, a.tokens} {
			c.purgeAll()
		}
	}
}

// Position returns the feed's newest sequence number: where a Follow of an
// authorizer that has cached nothing yet starts. Read it before the
// authorizer serves, so that no change made meanwhile is missed.
func Position(ctx context.Context, feed ChangeFeed) (int64, error) {
	return feed.LastChange(ctx)
}

// Follow applies the change feed, from after position from, to the caches
// every interval until ctx ends. Store errors are logged and retried on the
// next tick; the position only advances past changes applied. If the feed
// no longer holds the change after the position (it was pruned while this
// server could not read it), every cache is purged: what changed meanwhile
// is unknown.
func (a *Authorizer) Follow(ctx context.Context, feed ChangeFeed, interval time.Duration, from int64) error {
	last := from
	failing := false
	for {
		if !sleep(ctx, interval) {
			return ctx.Err()
		}
		for {
			changes, err := feed.ChangesAfter(ctx, last, changeBatch)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if !failing {
					a.log.WarnContext(ctx, "change feed: read failed; caches keep their TTL bound until it recovers", "err", err)
				}
				failing = true
				break
			}
			if failing {
				a.log.InfoContext(ctx, "change feed: reading again")
				failing = false
			}
			if len(changes) > 0 && changes[0].Seq != last+1 {
				a.log.WarnContext(ctx, "change feed: changes were pruned before this server read them; purging every cache",
					"after", last, "next", changes[0].Seq)
				a.Apply(Change{Kind: "gap"})
			}
			for _, ch := range changes {
				a.Apply(ch)
				last = ch.Seq
			}
			if len(changes) < changeBatch {
				break
			}
		}
	}
}

// sleep waits d or until ctx ends, reporting whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
