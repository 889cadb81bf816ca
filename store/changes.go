package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/wait"
)

type changeDoc struct {
	Seq    int64     `bson:"_id"`
	Kind   string    `bson:"kind"`
	Tenant string    `bson:"tenant"`
	Key    string    `bson:"key"`
	At     time.Time `bson:"at"`
}

// maxSeqAttempts bounds the retries of a change append that loses the race
// for a sequence number to other writers; each retry waits a random,
// growing moment so that a crowd of writers spreads out.
const maxSeqAttempts = 200

// appendChange records that a record changed. Each change takes the next
// sequence number by inserting it as the document's _id: the unique index
// lets exactly one writer have each number, on MongoDB and on FerretDB
// (whose concurrent updates of one document are not atomic, so a counter
// document could hand one number to two writers). A writer only tries n+1
// once it knows n exists (it read it as the highest, or lost n to another
// writer), so readers never see a later number before an earlier one.
func (s *Store) appendChange(ctx context.Context, kind authz.ChangeKind, tenant, key string) error {
	col := s.db.Collection(colChanges)
	last, err := s.LastChange(ctx)
	if err != nil {
		return err
	}
	for attempt := range maxSeqAttempts {
		if attempt > 0 {
			backoff(ctx, attempt)
		}
		_, err = col.InsertOne(ctx, changeDoc{Seq: last + 1, Kind: string(kind), Tenant: tenant, Key: key, At: ms(s.now())})
		if err == nil {
			return nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("record change: %w", err)
		}
		// last+1 exists: skip to the highest now, which is at least that.
		if last, err = s.LastChange(ctx); err != nil {
			return err
		}
	}
	return errors.New("record change: too many concurrent writers; try again")
}

// unrecorded wraps the failure to record the change of a write that is
// stored: servers that cached what it changed keep it until their cache
// TTL ends, unless the write is repeated, which records the change.
func unrecorded(what string, err error) error {
	return fmt.Errorf("%s, but recording the change failed, so running servers may keep what they cached for up to their cache TTL; repeat it to record the change: %w", what, err)
}

// LastChange returns the highest change sequence number, or 0.
func (s *Store) LastChange(ctx context.Context) (int64, error) {
	var d changeDoc
	err := s.db.Collection(colChanges).FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read change feed position: %w", err)
	}
	return d.Seq, nil
}

// ChangesAfter returns up to limit changes with sequence numbers above
// after, in order.
func (s *Store) ChangesAfter(ctx context.Context, after int64, limit int) ([]authz.Change, error) {
	cur, err := s.db.Collection(colChanges).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("read change feed: %w", err)
	}
	var docs []changeDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("read change feed: %w", err)
	}
	out := make([]authz.Change, len(docs))
	for i, d := range docs {
		out[i] = authz.Change{Seq: d.Seq, Kind: authz.ChangeKind(d.Kind), Tenant: d.Tenant, Key: d.Key, At: d.At.UTC()}
	}
	return out, nil
}

// PruneChanges deletes the changes before the oldest one stamped at or
// after before, always keeping the newest so that the sequence never
// restarts. It cuts the feed by sequence number, never by the stamps
// alone: a writer whose clock runs behind stamps a new change as old, and
// deleting it while keeping its neighbours would leave a hole that makes
// every follower purge its caches. A writer whose clock runs ahead only
// keeps more of the feed for a while.
func (s *Store) PruneChanges(ctx context.Context, before time.Time) (int64, error) {
	last, err := s.LastChange(ctx)
	if err != nil || last == 0 {
		return 0, err
	}
	keep := last
	var oldest changeDoc
	err = s.db.Collection(colChanges).FindOne(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$gte", Value: ms(before)}}}},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: 1}})).Decode(&oldest)
	switch {
	case err == nil:
		keep = min(keep, oldest.Seq)
	case !errors.Is(err, mongo.ErrNoDocuments):
		return 0, fmt.Errorf("prune change feed: %w", err)
	}
	res, err := s.db.Collection(colChanges).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: keep}}}})
	if err != nil {
		return 0, fmt.Errorf("prune change feed: %w", err)
	}
	return res.DeletedCount, nil
}

// backoff sleeps a random moment that grows with attempt, up to 10ms.
func backoff(ctx context.Context, attempt int) {
	d := time.Duration(rand.Int64N(int64(min(attempt, 10)) * int64(time.Millisecond))) //nolint:gosec // jitter, not a secret
	wait.Sleep(ctx, d)
}
