package authz

import (
	"context"
	"time"
)

// changeBatch is how many changes one poll reads at most.
const changeBatch = 1000

// Apply purges what change makes stale from the caches.
func (a *Authorizer) Apply(ch Change) {
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
		a.tokens.purgeAll()
		if x, ok := a.external.(interface{ Apply(Change) }); ok {
			x.Apply(ch)
		}
	default:
		// A tenant change, or a kind this version does not know: forget
		// everything rather than risk keeping something stale.
		for _, c := range []interface{ purgeAll() }{a.keys, a.seats, a.signingKeys, a.groups, a.tokens} {
			c.purgeAll()
		}
		if x, ok := a.external.(interface{ Apply(Change) }); ok {
			x.Apply(ch)
		}
	}
}

// Follow applies the change feed to the caches every interval until ctx
// ends. It starts after the newest change at the time it is called, since
// the caches hold nothing older. Store errors are logged and retried on the
// next tick; no change is skipped, because the position only advances past
// changes applied.
func (a *Authorizer) Follow(ctx context.Context, feed ChangeFeed, interval time.Duration) error {
	var last int64
	for {
		var err error
		if last, err = feed.LastChange(ctx); err == nil {
			break
		}
		a.log.WarnContext(ctx, "change feed: cannot read its position; retrying", "err", err)
		if !sleep(ctx, interval) {
			return ctx.Err()
		}
	}
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
