package storetest

import (
	"net/url"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/usher-dev/usher/store"
)

// brokenChange is the _id of the record BreakChangeFeed plants: a string
// sorts above every sequence number, so the writers' read of the feed's
// position finds it and fails to decode it.
const brokenChange = "storetest-broken-change"

// BreakChangeFeed makes every change feed append of the embedded store s
// serves fail — after the write it records has reached the store, as when
// the store fails between two writes — by planting a record whose id no
// writer can read. Everything else works, including reading the feed.
// heal removes the record.
func BreakChangeFeed(t testing.TB, s *store.Store) (heal func()) {
	t.Helper()
	if s.Embedded() == nil {
		t.Fatal("BreakChangeFeed needs a store that runs the embedded server")
	}
	uri := "mongodb://" + strings.ReplaceAll(url.PathEscape(s.Embedded().Socket()), "/", "%2F") + "/" + store.DefaultDatabase
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(t.Context()) })
	col := client.Database(store.DefaultDatabase).Collection("changes")
	if _, err := col.InsertOne(t.Context(), bson.D{{Key: "_id", Value: brokenChange}}); err != nil {
		t.Fatalf("break the change feed: %v", err)
	}
	return func() {
		t.Helper()
		if _, err := col.DeleteOne(t.Context(), bson.D{{Key: "_id", Value: brokenChange}}); err != nil {
			t.Fatalf("heal the change feed: %v", err)
		}
	}
}
