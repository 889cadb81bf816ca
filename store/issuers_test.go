package store_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/usher-dev/usher/store"
)

// TestIssuerOptions: a trust keeps its token type, allowed clients and
// name-matching opt-in, and refuses malformed ones.
func TestIssuerOptions(t *testing.T) {
	s, _ := keyringFixture(t)
	ctx := t.Context()
	want := store.Issuer{Tenant: "acme", Issuer: "https://idp.example.com", Audience: "api://usher", GroupsClaim: "groups",
		TokenType: "at+jwt", ClientIDs: []string{"app-1", "app-2"}, MatchGroupNames: true}
	got, err := s.AddIssuer(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	want.CreatedAt = got.CreatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("added (-want +got):\n%s", diff)
	}
	list, err := s.Issuers(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.Issuer{want}, list); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}
	base := store.Issuer{Tenant: "globex", Issuer: "https://x.example", Audience: "a", GroupsClaim: "groups"}
	for _, tt := range []struct {
		name string
		edit func(*store.Issuer)
		want string
	}{
		{"token type with a space", func(is *store.Issuer) { is.TokenType = "at jwt" }, "token type"},
		{"token type too long", func(is *store.Issuer) { is.TokenType = strings.Repeat("a", 65) }, "token type"},
		{"empty client id", func(is *store.Issuer) { is.ClientIDs = []string{""} }, "client id"},
		{"client id with a space", func(is *store.Issuer) { is.ClientIDs = []string{"a b"} }, "client id"},
		{"client id twice", func(is *store.Issuer) { is.ClientIDs = []string{"a", "a"} }, "given twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := base
			tt.edit(&bad)
			if _, err := s.AddIssuer(ctx, bad); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AddIssuer: %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// TestOldIssuerRecordLoads: a trust stored before token_type, client_ids
// and match_group_names existed loads with no typ required, any client,
// and groups matched by alias only.
func TestOldIssuerRecordLoads(t *testing.T) {
	s, _ := keyringFixture(t)
	ctx := t.Context()
	uri := "mongodb://" + strings.ReplaceAll(url.PathEscape(s.Embedded().Socket()), "/", "%2F")
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(ctx) })
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	old := bson.D{{Key: "_id", Value: "acme https://old.example"}, {Key: "tenant", Value: "acme"},
		{Key: "issuer", Value: "https://old.example"}, {Key: "audience", Value: "api://usher"},
		{Key: "groups_claim", Value: "memberOf"}, {Key: "created_at", Value: created}}
	if _, err := client.Database(store.DefaultDatabase).Collection("issuers").InsertOne(ctx, old); err != nil {
		t.Fatal(err)
	}
	got, err := s.AllIssuers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Issuer{{Tenant: "acme", Issuer: "https://old.example", Audience: "api://usher", GroupsClaim: "memberOf", CreatedAt: created}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("old record (-want +got):\n%s", diff)
	}
}
