package storetest

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/wait"
	"github.com/usher-dev/usher/store"
)

// ErrInjected is the error a Faulty store returns while failing.
var ErrInjected = errors.New("injected store failure")

// Faulty is the real store with the faults a real store cannot be made to
// show on demand — failing, slow, panicking — on the lookups a decision
// makes, and a change feed whose reads hang. It counts those lookups and
// reads. Everything else is the real store.
type Faulty struct {
	*store.Store
	// Fail fails every lookup (key reads, seat reads, seat listings);
	// FailKey, FailSeat and FailSeats fail one kind alone.
	Fail      atomic.Bool
	FailKey   atomic.Bool
	FailSeat  atomic.Bool
	FailSeats atomic.Bool
	Panic     atomic.Bool
	Delay     atomic.Int64 // nanoseconds
	KeyReads  atomic.Int64
	SeatReads atomic.Int64
	SeatLists atomic.Int64
	// HangFeed is how many of the next change feed reads hang until their
	// context ends, as on a connection that stopped answering.
	HangFeed  atomic.Int64
	FeedReads atomic.Int64
	// KeyReadsInFlight counts the key reads running now, and
	// MaxKeyReadsInFlight the most that ever ran at once.
	KeyReadsInFlight    atomic.Int64
	MaxKeyReadsInFlight atomic.Int64
}

// fault applies the faults set for a lookup whose own switch is only.
func (f *Faulty) fault(ctx context.Context, only *atomic.Bool) error {
	if d := time.Duration(f.Delay.Load()); d > 0 && !wait.Sleep(ctx, d) {
		return ctx.Err()
	}
	if f.Panic.Load() {
		panic("injected panic")
	}
	if f.Fail.Load() || only.Load() {
		return ErrInjected
	}
	return nil
}

// APIKey implements authz.KeyLookup with the faults.
func (f *Faulty) APIKey(ctx context.Context, id string) (authz.APIKey, error) {
	f.KeyReads.Add(1)
	n := f.KeyReadsInFlight.Add(1)
	defer f.KeyReadsInFlight.Add(-1)
	for m := f.MaxKeyReadsInFlight.Load(); n > m && !f.MaxKeyReadsInFlight.CompareAndSwap(m, n); {
		m = f.MaxKeyReadsInFlight.Load()
	}
	if err := f.fault(ctx, &f.FailKey); err != nil {
		return authz.APIKey{}, err
	}
	return f.Store.APIKey(ctx, id)
}

// ChangesAfter implements authz.ChangeFeed, hanging while HangFeed says.
func (f *Faulty) ChangesAfter(ctx context.Context, after int64, limit int) ([]authz.Change, error) {
	f.FeedReads.Add(1)
	for n := f.HangFeed.Load(); n > 0; n = f.HangFeed.Load() {
		if f.HangFeed.CompareAndSwap(n, n-1) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	return f.Store.ChangesAfter(ctx, after, limit)
}

// Seat implements authz.SeatLookup with the faults.
func (f *Faulty) Seat(ctx context.Context, tenant, name string) (authz.Seat, error) {
	f.SeatReads.Add(1)
	if err := f.fault(ctx, &f.FailSeat); err != nil {
		return authz.Seat{}, err
	}
	return f.Store.Seat(ctx, tenant, name)
}

// Seats implements authz.SeatLister with the faults: a tenant's seat
// listing, which maps IdP groups to seats.
func (f *Faulty) Seats(ctx context.Context, tenant string) ([]authz.Seat, error) {
	f.SeatLists.Add(1)
	if err := f.fault(ctx, &f.FailSeats); err != nil {
		return nil, err
	}
	return f.Store.Seats(ctx, tenant)
}
