package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/usher-dev/usher/authz"
)

// MaxKeyLifetime is the longest an API key may live.
const MaxKeyLifetime = 365 * 24 * time.Hour

// APIKey is a stored API key: everything but the plaintext, which is never
// stored.
type APIKey struct {
	ID        string        `json:"id"`
	Tenant    string        `json:"tenant"`
	Name      string        `json:"name"`
	Owner     string        `json:"owner,omitempty"`
	Seats     []string      `json:"seats"`
	Hash      authz.KeyHash `json:"-"`
	CreatedAt time.Time     `json:"created_at"`
	ExpiresAt time.Time     `json:"expires_at"`
	RevokedAt time.Time     `json:"revoked_at,omitzero"`
	LastUsed  time.Time     `json:"last_used_at,omitzero"`
	// SupersededBy is the id of the key that replaced this one in a
	// rotation.
	SupersededBy string `json:"superseded_by,omitempty"`
}

// State says whether k can be used at now: "active", "expired" or
// "revoked".
func (k APIKey) State(now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return "revoked"
	case !now.Before(k.ExpiresAt):
		return "expired"
	}
	return "active"
}

type apiKeyDoc struct {
	ID           string     `bson:"_id"`
	Tenant       string     `bson:"tenant"`
	Name         string     `bson:"name"`
	Owner        string     `bson:"owner,omitempty"`
	Seats        []string   `bson:"seats"`
	Hash         string     `bson:"hash"` // hex SHA-256 of the whole key
	CreatedAt    time.Time  `bson:"created_at"`
	ExpiresAt    time.Time  `bson:"expires_at"`
	RevokedAt    *time.Time `bson:"revoked_at,omitempty"`
	LastUsed     *time.Time `bson:"last_used_at,omitempty"`
	SupersededBy string     `bson:"superseded_by,omitempty"`
}

func (d apiKeyDoc) key() (APIKey, error) {
	h, err := authz.ParseKeyHash(d.Hash)
	if err != nil {
		return APIKey{}, fmt.Errorf("api key %s: stored %w", d.ID, err)
	}
	return APIKey{
		ID: d.ID, Tenant: d.Tenant, Name: d.Name, Owner: d.Owner, Seats: d.Seats, Hash: h,
		CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC(),
		RevokedAt: timeVal(d.RevokedAt), LastUsed: timeVal(d.LastUsed), SupersededBy: d.SupersededBy,
	}, nil
}

// CreateAPIKey stores a new key. Its tenant and seats must exist, its
// expiry must lie within MaxKeyLifetime, and no other usable key of the
// tenant may have its name.
func (s *Store) CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error) {
	now := s.now()
	if err := validateKey(k, now); err != nil {
		return APIKey{}, err
	}
	if err := s.checkKeyRefs(ctx, k); err != nil {
		return APIKey{}, err
	}
	if err := s.checkNameFree(ctx, k.Tenant, k.Name, now); err != nil {
		return APIKey{}, err
	}
	return s.insertKey(ctx, k, now)
}

func (s *Store) insertKey(ctx context.Context, k APIKey, now time.Time) (APIKey, error) {
	seats := slices.Clone(k.Seats)
	slices.Sort(seats)
	d := apiKeyDoc{
		ID: k.ID, Tenant: k.Tenant, Name: k.Name, Owner: k.Owner, Seats: slices.Compact(seats),
		Hash: k.Hash.String(), CreatedAt: ms(now), ExpiresAt: ms(k.ExpiresAt),
	}
	if err := s.insert(ctx, colAPIKeys, d, "api key "+k.ID); err != nil {
		return APIKey{}, err
	}
	if err := s.appendChange(ctx, authz.ChangeAPIKey, k.Tenant, k.ID); err != nil {
		return APIKey{}, err
	}
	return d.key()
}

func validateKey(k APIKey, now time.Time) error {
	var errs []error
	if err := authz.ValidateTenant(k.Tenant); err != nil {
		errs = append(errs, err)
	}
	if err := authz.ValidateName("key", k.Name); err != nil {
		errs = append(errs, err)
	}
	if len(k.Owner) > 256 {
		errs = append(errs, errors.New("owner: at most 256 characters"))
	}
	if k.ID == "" || k.Hash == (authz.KeyHash{}) {
		errs = append(errs, errors.New("api key: id and hash are required"))
	}
	for _, seat := range k.Seats {
		if err := authz.ValidateName("seat", seat); err != nil {
			errs = append(errs, err)
		}
	}
	switch {
	case !k.ExpiresAt.After(now):
		errs = append(errs, errors.New("expiry: must be in the future"))
	case k.ExpiresAt.Sub(now) > MaxKeyLifetime+time.Minute:
		errs = append(errs, fmt.Errorf("expiry: at most %s (one year) from now", "8760h"))
	}
	return errors.Join(errs...)
}

func (s *Store) checkKeyRefs(ctx context.Context, k APIKey) error {
	if _, err := s.Tenant(ctx, k.Tenant); err != nil {
		return err
	}
	for _, seat := range k.Seats {
		if _, err := s.Seat(ctx, k.Tenant, seat); err != nil {
			return fmt.Errorf("%w (create the seat first)", err)
		}
	}
	return nil
}

func (s *Store) checkNameFree(ctx context.Context, tenant, name string, now time.Time) error {
	keys, err := s.keysNamed(ctx, tenant, name)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.State(now) == "active" {
			return fmt.Errorf("api key named %s in tenant %s (id %s): %w; rotate or revoke it, or choose another name", name, tenant, k.ID, ErrExists)
		}
	}
	return nil
}

// APIKey returns what a decision needs of a key, or ErrNotFound. It
// implements authz.KeyLookup.
func (s *Store) APIKey(ctx context.Context, id string) (authz.APIKey, error) {
	k, err := s.APIKeyRecord(ctx, id)
	if err != nil {
		return authz.APIKey{}, err
	}
	return authz.APIKey{ID: k.ID, Tenant: k.Tenant, Name: k.Name, Hash: k.Hash, Seats: k.Seats,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt}, nil
}

// APIKeyRecord returns a stored key or ErrNotFound.
func (s *Store) APIKeyRecord(ctx context.Context, id string) (APIKey, error) {
	var d apiKeyDoc
	if err := s.db.Collection(colAPIKeys).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		return APIKey{}, notFound(err, "api key "+id)
	}
	return d.key()
}

// APIKeys lists a tenant's keys, by id.
func (s *Store) APIKeys(ctx context.Context, tenant string) ([]APIKey, error) {
	return s.findKeys(ctx, bson.D{{Key: "tenant", Value: tenant}})
}

func (s *Store) keysNamed(ctx context.Context, tenant, name string) ([]APIKey, error) {
	return s.findKeys(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "name", Value: name}})
}

func (s *Store) findKeys(ctx context.Context, filter bson.D) ([]APIKey, error) {
	var docs []apiKeyDoc
	if err := s.findAll(ctx, colAPIKeys, filter, &docs); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	out := make([]APIKey, 0, len(docs))
	for _, d := range docs {
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// ResolveAPIKeys finds the keys that ref names in tenant: the key with that
// id, else the keys with that name, newest first.
func (s *Store) ResolveAPIKeys(ctx context.Context, tenant, ref string) ([]APIKey, error) {
	k, err := s.APIKeyRecord(ctx, ref)
	switch {
	case err == nil && k.Tenant == tenant:
		return []APIKey{k}, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return nil, err
	}
	keys, err := s.keysNamed(ctx, tenant, ref)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("api key %q in tenant %s (neither an id nor a name): %w", ref, tenant, ErrNotFound)
	}
	slices.SortFunc(keys, func(a, b APIKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return keys, nil
}

// RevokeAPIKey revokes a key at once. Revoking a revoked key keeps its
// first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, tenant, id string) (APIKey, error) {
	now := ms(s.now())
	_, err := s.db.Collection(colAPIKeys).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}, {Key: "revoked_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: now}}}})
	if err != nil {
		return APIKey{}, fmt.Errorf("revoke api key %s: %w", id, err)
	}
	k, err := s.APIKeyRecord(ctx, id)
	if err != nil || k.Tenant != tenant {
		return APIKey{}, fmt.Errorf("api key %s in tenant %s: %w", id, tenant, ErrNotFound)
	}
	if err := s.appendChange(ctx, authz.ChangeAPIKey, tenant, id); err != nil {
		return APIKey{}, err
	}
	return k, nil
}

// RotateAPIKey stores next as the successor of the key old and ends old
// after grace: its expiry moves to now+grace (never later than it was), or
// it is revoked at once when grace is zero. next takes old's tenant, name,
// owner and seats.
func (s *Store) RotateAPIKey(ctx context.Context, old APIKey, next APIKey, grace time.Duration) (APIKey, APIKey, error) {
	now := s.now()
	if old.State(now) != "active" {
		return APIKey{}, APIKey{}, fmt.Errorf("api key %s is %s; only an active key can be rotated", old.ID, old.State(now))
	}
	if old.SupersededBy != "" {
		return APIKey{}, APIKey{}, fmt.Errorf("api key %s was already rotated to %s; rotate that one", old.ID, old.SupersededBy)
	}
	if grace < 0 || grace > MaxKeyLifetime {
		return APIKey{}, APIKey{}, errors.New("grace: must be between 0 and one year")
	}
	next.Tenant, next.Name, next.Owner, next.Seats = old.Tenant, old.Name, old.Owner, old.Seats
	if err := validateKey(next, now); err != nil {
		return APIKey{}, APIKey{}, err
	}
	if err := s.checkKeyRefs(ctx, next); err != nil {
		return APIKey{}, APIKey{}, err
	}
	created, err := s.insertKey(ctx, next, now)
	if err != nil {
		return APIKey{}, APIKey{}, err
	}
	set := bson.D{{Key: "superseded_by", Value: created.ID}}
	if grace == 0 {
		set = append(set, bson.E{Key: "revoked_at", Value: ms(now)})
	} else if end := now.Add(grace); end.Before(old.ExpiresAt) {
		set = append(set, bson.E{Key: "expires_at", Value: ms(end)})
	}
	if _, err := s.db.Collection(colAPIKeys).UpdateOne(ctx, bson.D{{Key: "_id", Value: old.ID}},
		bson.D{{Key: "$set", Value: set}}); err != nil {
		return created, APIKey{}, fmt.Errorf("end old api key %s (the new key %s exists; revoke the old one by id): %w", old.ID, created.ID, err)
	}
	if err := s.appendChange(ctx, authz.ChangeAPIKey, old.Tenant, old.ID); err != nil {
		return created, APIKey{}, err
	}
	ended, err := s.APIKeyRecord(ctx, old.ID)
	return created, ended, err
}

// TouchAPIKeys records last-used times in one unordered bulk write. A time
// never moves back.
func (s *Store) TouchAPIKeys(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(used))
	for id, t := range used {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: id}}).
			SetUpdate(bson.D{{Key: "$max", Value: bson.D{{Key: "last_used_at", Value: ms(t)}}}}))
	}
	if _, err := s.db.Collection(colAPIKeys).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
		return fmt.Errorf("record api key use: %w", err)
	}
	return nil
}
