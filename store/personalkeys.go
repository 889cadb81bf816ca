package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/usher-dev/usher/login"
)

// A person's own API keys (login.APIKeys), as the login app's /api/keys
// and /keys manage them: ordinary keys whose owner names the person. The
// methods below only add an owner filter to what the operators' commands
// do; nothing about how a key is stored or checked changes.

// CreatePersonalKey stores a person's new key as CreateAPIKey does. A name
// already held by a usable key is login.ErrKeyNameTaken, without the
// holder's id.
func (s *Store) CreatePersonalKey(ctx context.Context, k login.APIKey) (login.APIKey, error) {
	if k.Owner == "" {
		return login.APIKey{}, errors.New("personal api key: owner is required")
	}
	got, err := s.CreateAPIKey(ctx, APIKey{ID: k.ID, Tenant: k.Tenant, Name: k.Name, Owner: k.Owner, Seats: k.Seats,
		Hash: k.Hash, ExpiresAt: k.ExpiresAt})
	if errors.Is(err, ErrExists) {
		return login.APIKey{}, login.ErrKeyNameTaken
	}
	if err != nil {
		return login.APIKey{}, err
	}
	return personalKey(got), nil
}

// PersonalKeys lists the keys of tenant whose owner is exactly owner, by
// id, revoked and expired ones included.
func (s *Store) PersonalKeys(ctx context.Context, tenant, owner string) ([]login.APIKey, error) {
	if owner == "" {
		return nil, errors.New("personal api keys: owner is required")
	}
	keys, err := s.findKeys(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "owner", Value: owner}}, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]login.APIKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, personalKey(k))
	}
	return out, nil
}

// RevokePersonalKey revokes the key with id when it is owner's key in
// tenant (as RevokeAPIKey); another owner's key, or no key, is
// ErrNotFound alike.
func (s *Store) RevokePersonalKey(ctx context.Context, tenant, owner, id string) error {
	k, err := s.keyWithSuccessor(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil || owner == "" || k.Tenant != tenant || k.Owner != owner {
		return fmt.Errorf("api key %s of %s: %w", id, owner, ErrNotFound)
	}
	_, err = s.RevokeAPIKey(ctx, tenant, id)
	return err
}

func personalKey(k APIKey) login.APIKey {
	return login.APIKey{ID: k.ID, Tenant: k.Tenant, Name: k.Name, Owner: k.Owner, Seats: k.Seats,
		CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, LastUsed: k.LastUsed}
}
