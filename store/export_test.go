package store

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// SetSeatReadHook makes fn run between every seat writer's read of the
// current version and its insert of the next one.
func SetSeatReadHook(s *Store, fn func()) { s.seatRead = fn }

// RawDocuments returns every document of a collection as the store holds
// it, for tests that look at what is stored at rest.
func RawDocuments(ctx context.Context, s *Store, col string) ([]bson.Raw, error) {
	cur, err := s.db.Collection(col).Find(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	var out []bson.Raw
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RedactURI is redactURI, for its table test.
func RedactURI(uri string) string { return redactURI(uri) }
