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

// apiKeyDoc is written once. Its only later change is revoked_at: on
// FerretDB concurrent updates of one document can undo each other, so
// nothing else writes to it. Rotation inserts the successor, which names
// its predecessor (rotated_from, unique: exactly one successor) and when
// the predecessor ends; last use lives in api_key_usage.
type apiKeyDoc struct {
	ID          string     `bson:"_id"`
	Tenant      string     `bson:"tenant"`
	Name        string     `bson:"name"`
	Owner       string     `bson:"owner,omitempty"`
	Seats       []string   `bson:"seats"`
	Hash        string     `bson:"hash"` // hex SHA-256 of the whole key
	CreatedAt   time.Time  `bson:"created_at"`
	ExpiresAt   time.Time  `bson:"expires_at"`
	RevokedAt   *time.Time `bson:"revoked_at,omitempty"`
	RotatedFrom string     `bson:"rotated_from,omitempty"`
	// PreviousEndsAt is when the predecessor stops working: the end of
	// the grace period. PreviousRevoked says it was revoked at rotation
	// (no grace).
	PreviousEndsAt  *time.Time `bson:"previous_ends_at,omitempty"`
	PreviousRevoked bool       `bson:"previous_revoked,omitempty"`
	// RotationClosed marks no key but a revocation's claim on
	// rotated_from's successor slot (see closeRotation).
	RotationClosed bool `bson:"rotation_closed,omitempty"`
}

type usageDoc struct {
	ID       string    `bson:"_id"`
	LastUsed time.Time `bson:"last_used_at"`
}

// key returns the stored key as its successor (if any) leaves it.
func (d apiKeyDoc) key(successor *apiKeyDoc) (APIKey, error) {
	h, err := authz.ParseKeyHash(d.Hash)
	if err != nil {
		return APIKey{}, fmt.Errorf("api key %s: stored %w", d.ID, err)
	}
	k := APIKey{
		ID: d.ID, Tenant: d.Tenant, Name: d.Name, Owner: d.Owner, Seats: d.Seats, Hash: h,
		CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC(), RevokedAt: timeVal(d.RevokedAt),
	}
	if successor != nil {
		k.SupersededBy = successor.ID
		if successor.PreviousRevoked && (k.RevokedAt.IsZero() || successor.CreatedAt.Before(k.RevokedAt)) {
			k.RevokedAt = successor.CreatedAt.UTC()
		}
		if end := timeVal(successor.PreviousEndsAt); !end.IsZero() && end.Before(k.ExpiresAt) {
			k.ExpiresAt = end
		}
	}
	return k, nil
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
	if err := s.claimName(ctx, k.Tenant, k.Name, k.ID, now); err != nil {
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
	return d.key(nil)
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
	case k.ExpiresAt.Sub(now) > MaxKeyLifetime:
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

// nameDoc claims a key name in a tenant for the key that holds it. A name
// is free again once no key of that name is usable; taking it over then
// deletes the old claim by its holder and inserts a new one, and each step
// has exactly one winner among concurrent creators (a DeleteOne that
// deleted, an insert under the unique _id).
type nameDoc struct {
	ID        string    `bson:"_id"` // tenant/name
	KeyID     string    `bson:"key_id"`
	CreatedAt time.Time `bson:"created_at"`
}

// nameClaimPatience is how long a claim whose key was never stored (its
// creator died between the two inserts) blocks the name.
const nameClaimPatience = time.Minute

func (s *Store) claimName(ctx context.Context, tenant, name, keyID string, now time.Time) error {
	taken := func(holder string) error {
		return fmt.Errorf("api key named %s in tenant %s (id %s): %w; rotate or revoke it, or choose another name", name, tenant, holder, ErrExists)
	}
	inUse := func() (string, error) {
		keys, err := s.keysNamed(ctx, tenant, name)
		if err != nil {
			return "", err
		}
		for _, k := range keys {
			if k.State(now) == "active" {
				return k.ID, nil
			}
		}
		return "", nil
	}
	if holder, err := inUse(); err != nil || holder != "" {
		return firstErr(err, taken(holder))
	}
	id := tenant + "/" + name
	col := s.db.Collection(colKeyNames)
	var cur nameDoc
	switch err := col.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&cur); {
	case err == nil:
		_, herr := s.keyWithSuccessor(ctx, cur.KeyID)
		switch {
		case errors.Is(herr, ErrNotFound) && now.Sub(cur.CreatedAt) < nameClaimPatience:
			return taken(cur.KeyID + ", being created")
		case herr != nil && !errors.Is(herr, ErrNotFound):
			return herr
		}
		// Read after the claim: a key stored by the claim's holder since
		// the first look counts.
		if holder, err := inUse(); err != nil || holder != "" {
			return firstErr(err, taken(holder))
		}
		res, err := col.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "key_id", Value: cur.KeyID}})
		if err != nil {
			return fmt.Errorf("claim key name %s: %w", name, err)
		}
		if res.DeletedCount != 1 {
			return taken("another being created now")
		}
	case !errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("claim key name %s: %w", name, err)
	}
	if _, err := col.InsertOne(ctx, nameDoc{ID: id, KeyID: keyID, CreatedAt: ms(now)}); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return taken("another being created now")
		}
		return fmt.Errorf("claim key name %s: %w", name, err)
	}
	return nil
}

// firstErr returns err if it is set, else alt.
func firstErr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

// APIKey returns what a decision needs of a key, or ErrNotFound. It
// implements authz.KeyLookup.
func (s *Store) APIKey(ctx context.Context, id string) (authz.APIKey, error) {
	k, err := s.keyWithSuccessor(ctx, id)
	if err != nil {
		return authz.APIKey{}, err
	}
	return authz.APIKey{ID: k.ID, Tenant: k.Tenant, Name: k.Name, Hash: k.Hash, Seats: k.Seats,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt}, nil
}

// APIKeyIDs calls fn with the tenant and id of every stored key, revoked
// and expired ones included, reading only those two fields, one batch at a
// time; it stops at fn's first error. With the change feed it implements
// authz.KeyIndexSource.
func (s *Store) APIKeyIDs(ctx context.Context, fn func(tenant, id string) error) error {
	// A revocation's rotation marker (rotation.go) shares the collection
	// but is no key.
	cur, err := s.db.Collection(colAPIKeys).Find(ctx, bson.D{{Key: "rotation_closed", Value: bson.D{{Key: "$ne", Value: true}}}},
		options.Find().SetProjection(bson.D{{Key: "tenant", Value: 1}}))
	if err != nil {
		return fmt.Errorf("list api key ids: %w", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	for cur.Next(ctx) {
		var d struct {
			ID     string `bson:"_id"`
			Tenant string `bson:"tenant"`
		}
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("list api key ids: %w", err)
		}
		if d.Tenant == "" {
			continue // no key has no tenant
		}
		if err := fn(d.Tenant, d.ID); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("list api key ids: %w", err)
	}
	return nil
}

// keyWithSuccessor reads a key and the successor that ends it, if any.
func (s *Store) keyWithSuccessor(ctx context.Context, id string) (APIKey, error) {
	var d apiKeyDoc
	if err := s.db.Collection(colAPIKeys).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		return APIKey{}, notFound(err, "api key "+id)
	}
	succ, err := s.successor(ctx, id)
	if err != nil {
		return APIKey{}, fmt.Errorf("api key %s: %w", id, err)
	}
	if succ != nil && succ.RotationClosed {
		succ = nil
	}
	return d.key(succ)
}

// successor reads what holds id's successor slot: its successor, a
// revocation's marker, or nothing (nil).
func (s *Store) successor(ctx context.Context, id string) (*apiKeyDoc, error) {
	var succ apiKeyDoc
	err := s.db.Collection(colAPIKeys).FindOne(ctx, bson.D{{Key: "rotated_from", Value: id}}).Decode(&succ)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &succ, nil
}

// APIKeyRecord returns a stored key, with its last use, or ErrNotFound.
func (s *Store) APIKeyRecord(ctx context.Context, id string) (APIKey, error) {
	k, err := s.keyWithSuccessor(ctx, id)
	if err != nil {
		return APIKey{}, err
	}
	used, err := s.lastUsed(ctx, []string{id})
	if err != nil {
		return APIKey{}, err
	}
	k.LastUsed = used[id]
	return k, nil
}

func (s *Store) lastUsed(ctx context.Context, ids []string) (map[string]time.Time, error) {
	var docs []usageDoc
	if err := s.findAll(ctx, colUsage, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, &docs); err != nil {
		return nil, fmt.Errorf("read api key use: %w", err)
	}
	out := make(map[string]time.Time, len(docs))
	for _, d := range docs {
		out[d.ID] = d.LastUsed.UTC()
	}
	return out, nil
}

// APIKeys lists a tenant's keys, by id.
func (s *Store) APIKeys(ctx context.Context, tenant string) ([]APIKey, error) {
	return s.findKeys(ctx, bson.D{{Key: "tenant", Value: tenant}}, tenant)
}

func (s *Store) keysNamed(ctx context.Context, tenant, name string) ([]APIKey, error) {
	return s.findKeys(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "name", Value: name}}, tenant)
}

// findKeys lists the keys matching filter, with what their successors
// (always of the same tenant) and usage say.
func (s *Store) findKeys(ctx context.Context, filter bson.D, tenant string) ([]APIKey, error) {
	var docs []apiKeyDoc
	if err := s.findAll(ctx, colAPIKeys, filter, &docs); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	if len(docs) == 0 {
		return []APIKey{}, nil
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	var succs []apiKeyDoc
	if err := s.findAll(ctx, colAPIKeys, bson.D{{Key: "tenant", Value: tenant},
		{Key: "rotated_from", Value: bson.D{{Key: "$in", Value: ids}}}}, &succs); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	successor := make(map[string]*apiKeyDoc, len(succs))
	for i := range succs {
		if !succs[i].RotationClosed { // markers have no tenant; this is belt and braces
			successor[succs[i].RotatedFrom] = &succs[i]
		}
	}
	used, err := s.lastUsed(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]APIKey, 0, len(docs))
	for _, d := range docs {
		k, err := d.key(successor[d.ID])
		if err != nil {
			return nil, err
		}
		k.LastUsed = used[d.ID]
		out = append(out, k)
	}
	return out, nil
}

// TouchAPIKeys records last-used times in a collection of their own:
// never in the key's document, where a concurrent update could undo a
// revocation. A time never moves back.
func (s *Store) TouchAPIKeys(ctx context.Context, used map[string]time.Time) error {
	if err := s.touchMax(ctx, colUsage, "last_used_at", used); err != nil {
		return fmt.Errorf("record api key use: %w", err)
	}
	return nil
}

// touchMax raises field to each id's time in col, in one unordered bulk
// write of upserts; a time never moves back.
func (s *Store) touchMax(ctx context.Context, col, field string, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(used))
	for id, t := range used {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: id}}).
			SetUpdate(bson.D{{Key: "$max", Value: bson.D{{Key: field, Value: ms(t)}}}}).
			SetUpsert(true))
	}
	// Two servers upserting one id's first use race to insert it; the
	// loser's duplicate key error means the document now exists, so one
	// retry updates it.
	var err error
	for range 2 {
		if _, err = s.db.Collection(col).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err == nil || !mongo.IsDuplicateKeyError(err) {
			break
		}
	}
	return err
}
