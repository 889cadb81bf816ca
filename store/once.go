package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// onceDoc marks (kind, key) used. Its _id is the kind and a hash of the
// key: keys can be secrets (authorization codes), and only their digest
// is stored.
type onceDoc struct {
	ID        string    `bson:"_id"` // kind/hex(SHA-256(key))
	Kind      string    `bson:"kind"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// maxOnceKindLen bounds a mark's kind, which names what is used once.
const maxOnceKindLen = 64

// MarkOnce reports whether this is the first mark of (kind, key), on any
// server: the mark is an insert under a unique _id, which has exactly one
// winner on MongoDB and on FerretDB. A mark stays until PruneOnceMarks
// drops it after expires; until then every later MarkOnce answers false.
func (s *Store) MarkOnce(ctx context.Context, kind, key string, expires time.Time) (bool, error) {
	if kind == "" || len(kind) > maxOnceKindLen || key == "" {
		return false, fmt.Errorf("mark once: kind (1 to %d characters) and key are required", maxOnceKindLen)
	}
	sum := sha256.Sum256([]byte(key))
	_, err := s.db.Collection(colOnceMarks).InsertOne(ctx, onceDoc{ID: kind + "/" + hex.EncodeToString(sum[:]), Kind: kind, ExpiresAt: ms(expires)})
	switch {
	case err == nil:
		return true, nil
	case mongo.IsDuplicateKeyError(err):
		return false, nil
	}
	return false, fmt.Errorf("mark %s once: %w", kind, err)
}

// PruneOnceMarks deletes the marks that expired before before and returns
// how many it deleted.
func (s *Store) PruneOnceMarks(ctx context.Context, before time.Time) (int64, error) {
	if before.IsZero() {
		return 0, errors.New("prune once marks: a time is required")
	}
	res, err := s.db.Collection(colOnceMarks).DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: ms(before)}}}})
	if err != nil {
		return 0, fmt.Errorf("prune once marks: %w", err)
	}
	return res.DeletedCount, nil
}
