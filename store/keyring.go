package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/usher-dev/usher/authz"
)

// signingSecretLen is the length of a signing secret: HS256 wants at least
// the hash size.
const signingSecretLen = 32

// SigningKey is one key of a tenant's keyring, without its secret.
type SigningKey struct {
	ID        string    `json:"kid"`
	Tenant    string    `json:"tenant"`
	CreatedAt time.Time `json:"created_at"`
	// RetireAt is when the key stops verifying; zero for the active key.
	RetireAt  time.Time `json:"retire_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// State says what the key does at now: "active" (signs and verifies),
// "verifying" (until RetireAt), "retired" or "revoked".
func (k SigningKey) State(now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return "revoked"
	case k.RetireAt.IsZero():
		return "active"
	case now.Before(k.RetireAt):
		return "verifying"
	}
	return "retired"
}

// signingKeyDoc is written once; its only later change is revoked_at, so
// that no concurrent write can undo a revocation (FerretDB does not apply
// concurrent updates of one document atomically). A key's retirement is
// read from the keys made after it: each new key records when the keys
// before it stop verifying.
type signingKeyDoc struct {
	ID               string     `bson:"_id"`
	Tenant           string     `bson:"tenant"`
	Secret           string     `bson:"secret"` // sealed with the master key
	CreatedAt        time.Time  `bson:"created_at"`
	RevokedAt        *time.Time `bson:"revoked_at,omitempty"`
	RetirePreviousAt *time.Time `bson:"retire_previous_at,omitempty"`
}

// keyring derives each key's retirement: the earliest retire_previous_at
// of the keys made after it. docs are in creation order.
func keyring(docs []signingKeyDoc) []SigningKey {
	out := make([]SigningKey, len(docs))
	var retire time.Time
	for i := len(docs) - 1; i >= 0; i-- {
		d := docs[i]
		out[i] = SigningKey{ID: d.ID, Tenant: d.Tenant, CreatedAt: d.CreatedAt.UTC(), RetireAt: retire, RevokedAt: timeVal(d.RevokedAt)}
		if rp := timeVal(d.RetirePreviousAt); !rp.IsZero() && (retire.IsZero() || rp.Before(retire)) {
			retire = rp
		}
	}
	return out
}

// sealAAD binds a sealed secret to its key: it cannot be moved to another
// key or tenant.
func sealAAD(tenant, kid string) []byte { return []byte("signing_key/" + tenant + "/" + kid) }

// RotateSigningKey makes a new active key for tenant and retires the
// previous key(s) after retireAfter: until then they still verify the
// tokens they signed. It needs the master key.
func (s *Store) RotateSigningKey(ctx context.Context, tenant string, retireAfter time.Duration) (SigningKey, []SigningKey, error) {
	if retireAfter < 0 {
		return SigningKey{}, nil, errors.New("retire after: must not be negative")
	}
	if _, err := s.Tenant(ctx, tenant); err != nil {
		return SigningKey{}, nil, err
	}
	// One master key seals the whole store: refuse to seal a new key with
	// another one.
	if _, err := s.CheckKeyring(ctx); err != nil {
		return SigningKey{}, nil, err
	}
	kid, err := authz.NewKeyID()
	if err != nil {
		return SigningKey{}, nil, err
	}
	secret := make([]byte, signingSecretLen)
	if _, err := rand.Read(secret); err != nil {
		return SigningKey{}, nil, fmt.Errorf("generate signing secret: %w", err)
	}
	sealed, err := s.master.Seal(secret, sealAAD(tenant, kid))
	if err != nil {
		return SigningKey{}, nil, err
	}
	now := ms(s.now())
	retireAt := ms(now.Add(retireAfter))
	before, err := s.SigningKeys(ctx, tenant)
	if err != nil {
		return SigningKey{}, nil, err
	}
	// Keys are ordered by creation: a new key must sort after every key
	// before it, also within one millisecond.
	if n := len(before); n > 0 && !now.After(before[n-1].CreatedAt) {
		now = before[n-1].CreatedAt.Add(time.Millisecond)
	}
	d := signingKeyDoc{ID: kid, Tenant: tenant, Secret: sealed, CreatedAt: now, RetirePreviousAt: &retireAt}
	if err := s.insert(ctx, colSigningKeys, d, "signing key "+kid); err != nil {
		return SigningKey{}, nil, err
	}
	if err := s.appendChange(ctx, authz.ChangeSigningKey, tenant, kid); err != nil {
		return SigningKey{}, nil, err
	}
	var retiring []SigningKey
	for _, k := range before {
		if k.State(ms(s.now())) != "active" {
			continue
		}
		// Servers cache the key with no retirement: tell them.
		if err := s.appendChange(ctx, authz.ChangeSigningKey, tenant, k.ID); err != nil {
			return SigningKey{}, nil, err
		}
		k.RetireAt = retireAt
		retiring = append(retiring, k)
	}
	return SigningKey{ID: kid, Tenant: tenant, CreatedAt: now}, retiring, nil
}

// SigningKeys lists a tenant's keys, oldest first, without secrets.
func (s *Store) SigningKeys(ctx context.Context, tenant string) ([]SigningKey, error) {
	docs, err := s.keyringDocs(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return keyring(docs), nil
}

func (s *Store) keyringDocs(ctx context.Context, tenant string) ([]signingKeyDoc, error) {
	cur, err := s.db.Collection(colSigningKeys).Find(ctx, bson.D{{Key: "tenant", Value: tenant}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	var docs []signingKeyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return docs, nil
}

// SigningKey returns a key with its secret opened, or ErrNotFound. It
// implements authz.SigningKeyLookup.
func (s *Store) SigningKey(ctx context.Context, kid string) (authz.SigningKey, error) {
	var d signingKeyDoc
	if err := s.db.Collection(colSigningKeys).FindOne(ctx, bson.D{{Key: "_id", Value: kid}}).Decode(&d); err != nil {
		return authz.SigningKey{}, notFound(err, "signing key "+kid)
	}
	return s.openInKeyring(ctx, d, func(k SigningKey) bool { return k.ID == kid })
}

// openInKeyring opens the key of d's tenant that pick chooses, with its
// retirement derived from the whole keyring.
func (s *Store) openInKeyring(ctx context.Context, d signingKeyDoc, pick func(SigningKey) bool) (authz.SigningKey, error) {
	docs, err := s.keyringDocs(ctx, d.Tenant)
	if err != nil {
		return authz.SigningKey{}, err
	}
	for i, k := range keyring(docs) {
		if !pick(k) {
			continue
		}
		secret, err := s.master.Open(docs[i].Secret, sealAAD(k.Tenant, k.ID))
		if err != nil {
			return authz.SigningKey{}, fmt.Errorf("signing key %s of tenant %s: %w", k.ID, k.Tenant, err)
		}
		return authz.SigningKey{ID: k.ID, Tenant: k.Tenant, Secret: secret, CreatedAt: k.CreatedAt,
			RetireAt: k.RetireAt, RevokedAt: k.RevokedAt}, nil
	}
	return authz.SigningKey{}, fmt.Errorf("signing key of tenant %s: %w", d.Tenant, ErrNotFound)
}

// ActiveSigningKey returns the tenant's key for signing, with its secret:
// the newest key, unless it was revoked.
func (s *Store) ActiveSigningKey(ctx context.Context, tenant string) (authz.SigningKey, error) {
	now := s.now()
	k, err := s.openInKeyring(ctx, signingKeyDoc{Tenant: tenant}, func(k SigningKey) bool { return k.State(now) == "active" })
	if errors.Is(err, ErrNotFound) {
		return authz.SigningKey{}, fmt.Errorf("tenant %s has no active signing key (create one with: usher key rotate --tenant %s): %w", tenant, tenant, ErrNotFound)
	}
	return k, err
}

// RevokeSigningKey revokes a key at once: every token it signed is refused.
func (s *Store) RevokeSigningKey(ctx context.Context, tenant, kid string) (SigningKey, error) {
	now := ms(s.now())
	_, err := s.db.Collection(colSigningKeys).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: kid}, {Key: "tenant", Value: tenant}, {Key: "revoked_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: now}}}})
	if err != nil {
		return SigningKey{}, fmt.Errorf("revoke signing key %s: %w", kid, err)
	}
	keys, err := s.SigningKeys(ctx, tenant)
	if err != nil {
		return SigningKey{}, err
	}
	for _, k := range keys {
		if k.ID == kid {
			if err := s.appendChange(ctx, authz.ChangeSigningKey, tenant, kid); err != nil {
				return SigningKey{}, err
			}
			return k, nil
		}
	}
	return SigningKey{}, fmt.Errorf("signing key %s in tenant %s: %w", kid, tenant, ErrNotFound)
}

// CheckKeyring reports whether the master key opens every signing key in
// the store, and how many there are. With keys in the store and no master
// key it fails, saying what to set.
func (s *Store) CheckKeyring(ctx context.Context) (int, error) {
	cur, err := s.db.Collection(colSigningKeys).Find(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("read keyring: %w", err)
	}
	var docs []signingKeyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return 0, fmt.Errorf("read keyring: %w", err)
	}
	for _, d := range docs {
		if _, err := s.master.Open(d.Secret, sealAAD(d.Tenant, d.ID)); err != nil {
			return len(docs), fmt.Errorf("the store holds %d signing key(s); signing key %s of tenant %s: %w", len(docs), d.ID, d.Tenant, err)
		}
	}
	return len(docs), nil
}
