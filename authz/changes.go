package authz

import (
	"context"
	"time"

	"github.com/usher-dev/usher/internal/wait"
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
	case ChangeSession:
		// A signed-out or revoked session, or a refresh family: its cookie
		// and the access tokens naming it (sid) stop at once.
		if a.sessions != nil {
			a.sessions.purge(ch.Key)
		}
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
		if a.sessions != nil {
			a.sessions.purgeAll()
		}
	}
}

// Position returns the feed's newest sequence number: where a Follow of an
// authorizer that has cached nothing yet starts. Read it before the
// authorizer serves, so that no change made meanwhile is missed.
func Position(ctx context.Context, feed ChangeFeed) (int64, error) {
	return feed.LastChange(ctx)
}

// gapPatience is how long Follow waits before it reads a hole in the feed
// again. appendChange inserts change n+1 only once n is stored, so a hole
// is either a change pruned before this server read it (it never comes
// back) or, on MongoDB, a change committed while the read was scanning
// past its place (it is there when read again). One short wait tells them
// apart without purging every cache for a change that was merely late.
const gapPatience = 100 * time.Millisecond

// feedReadTimeout bounds one read of the feed: a hung connection must not
// stop change propagation. It is five polling intervals, and at least a
// second so that a slow but working store still answers.
func feedReadTimeout(interval time.Duration) time.Duration {
	return max(time.Second, 5*interval)
}

// Follow applies the change feed, from after position from, to the caches
// every interval until ctx ends. Store errors, and reads that take longer
// than five intervals (at least a second), are logged and retried on the
// next tick; the position only advances past changes applied. Every
// sequence number must follow the one before: where one is missing, Follow
// waits gapPatience and reads again, and if the hole is still there (the
// change was pruned while this server could not read it) it purges every
// cache, since what changed is unknown, and goes on from the newest change
// it read.
func (a *Authorizer) Follow(ctx context.Context, feed ChangeFeed, interval time.Duration, from int64) error {
	last := from
	failing := false
	holeAfter := int64(-1) // the position after which a hole was seen, waiting to be read again
	for {
		if !wait.Sleep(ctx, interval) {
			return ctx.Err()
		}
		for {
			readCtx, cancel := context.WithTimeout(ctx, feedReadTimeout(interval))
			changes, err := feed.ChangesAfter(readCtx, last, changeBatch)
			cancel()
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
			n := 0
			for n < len(changes) && changes[n].Seq == last+1 {
				a.Apply(changes[n])
				a.observeLag(changes[n])
				last = changes[n].Seq
				n++
			}
			if n < len(changes) {
				if holeAfter != last {
					holeAfter = last
					if !wait.Sleep(ctx, gapPatience) {
						return ctx.Err()
					}
					continue
				}
				a.log.WarnContext(ctx, "change feed: changes were pruned before this server read them; purging every cache",
					"after", last, "next", changes[n].Seq)
				a.Apply(Change{Kind: "gap"})
				for _, ch := range changes[n:] {
					a.Apply(ch)
					a.observeLag(ch)
				}
				last = changes[len(changes)-1].Seq
			}
			holeAfter = -1
			if len(changes) < changeBatch {
				break
			}
		}
	}
}

// observeLag reports how long after its write a change was applied here.
func (a *Authorizer) observeLag(ch Change) {
	if a.changeLag != nil && !ch.At.IsZero() {
		a.changeLag(max(a.now().Sub(ch.At), 0))
	}
}
