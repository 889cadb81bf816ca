package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
)

// refreshDoc is a refresh token, stored by its hash and never updated.
type refreshDoc struct {
	ID        string    `bson:"_id"` // hex SHA-256 of the token
	Family    string    `bson:"family"`
	Tenant    string    `bson:"tenant"`
	CreatedAt time.Time `bson:"created_at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// consumedDoc marks a refresh token consumed. It is inserted under the
// token's hash: of concurrent claims exactly one insert succeeds, on
// MongoDB and on FerretDB, where a "set consumed_at if unset" update can
// have several winners.
type consumedDoc struct {
	ID         string    `bson:"_id"`
	ConsumedAt time.Time `bson:"consumed_at"`
}

func (d refreshDoc) token() (login.RefreshToken, error) {
	h, err := authz.ParseKeyHash(d.ID)
	if err != nil {
		return login.RefreshToken{}, fmt.Errorf("refresh token: stored %w", err)
	}
	return login.RefreshToken{Hash: h, Family: d.Family, Tenant: d.Tenant,
		CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC()}, nil
}

// CreateRefreshToken stores a refresh token by its hash. A zero CreatedAt
// is the store's now. A hash already stored is ErrExists.
func (s *Store) CreateRefreshToken(ctx context.Context, t login.RefreshToken) error {
	var errs []error
	if err := authz.ValidateTenant(t.Tenant); err != nil {
		errs = append(errs, err)
	}
	if t.Hash == (authz.KeyHash{}) || t.Family == "" {
		errs = append(errs, errors.New("refresh token: hash and family are required"))
	}
	if t.ExpiresAt.IsZero() {
		errs = append(errs, errors.New("refresh token expiry: required"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	created := t.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	d := refreshDoc{ID: t.Hash.String(), Family: t.Family, Tenant: t.Tenant, CreatedAt: ms(created), ExpiresAt: ms(t.ExpiresAt)}
	return s.insert(ctx, colRefreshTokens, d, "refresh token of session "+t.Family)
}

// ClaimRefreshToken consumes the token with that hash at now. Exactly one
// claim of a token wins, however many run at once on however many
// servers; every other answers Won false with the winner's ConsumedAt. An
// unknown hash is an error wrapping ErrNotFound. It does not look at the
// token's expiry or its family's revocation: the caller does, with the
// returned Token.
func (s *Store) ClaimRefreshToken(ctx context.Context, hash authz.KeyHash, now time.Time) (login.Refresh, error) {
	id := hash.String()
	var d refreshDoc
	if err := s.db.Collection(colRefreshTokens).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		return login.Refresh{}, notFound(err, "refresh token")
	}
	tok, err := d.token()
	if err != nil {
		return login.Refresh{}, err
	}
	at := ms(now)
	col := s.db.Collection(colRefreshConsumed)
	_, err = col.InsertOne(ctx, consumedDoc{ID: id, ConsumedAt: at})
	switch {
	case err == nil:
		return login.Refresh{Token: tok, ConsumedAt: at, Won: true}, nil
	case !mongo.IsDuplicateKeyError(err):
		return login.Refresh{}, fmt.Errorf("claim refresh token of session %s: %w", tok.Family, err)
	}
	var first consumedDoc
	if err := col.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&first); err != nil {
		return login.Refresh{}, fmt.Errorf("claim refresh token of session %s: read its consumption: %w", tok.Family, err)
	}
	return login.Refresh{Token: tok, ConsumedAt: first.ConsumedAt.UTC()}, nil
}
