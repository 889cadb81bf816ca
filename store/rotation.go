package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/usher-dev/usher/authz"
)

// Rotation and revocation race for one thing: a key's successor slot,
// the unique rotated_from index. A rotation claims it by inserting the
// successor; a revocation claims it by inserting a marker that closes the
// key's rotation (closeRotation). An insert under a unique index has
// exactly one winner on MongoDB and on FerretDB (whose concurrent updates
// of one document are not atomic, so nothing here relies on them), and the
// claim and the successor are one document, so a revocation that loses
// the slot finds the successor stored and revokes it in turn. After a
// revocation and a rotation of one key settle, either both keys are
// revoked or the rotation failed: a revoked key never has a live successor
// that a concurrent rotation created.

// Revocation is what revoking one key did.
type Revocation struct {
	// Key is the key as stored after the revocation.
	Key APIKey
	// Already says the key was revoked before; Key.RevokedAt says when.
	Already bool
	// Raced says a rotation racing with the revocation created the key,
	// as the successor of a key being revoked; it was revoked too.
	Raced bool
	// Kept is the successor the key already had when a revocation by id
	// began, which it left as it is.
	Kept string
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

// RevokeAPIKey revokes the key with id at once, and any successor that a
// rotation racing with this revocation creates. A successor the key
// already had when the revocation began (a rotation in its grace period)
// is left alone: revoking the old key by id ends its grace early. Revoking
// a revoked key keeps its first revocation time and records a change
// again.
func (s *Store) RevokeAPIKey(ctx context.Context, tenant, id string) (APIKey, error) {
	k, err := s.keyWithSuccessor(ctx, id)
	if err != nil || k.Tenant != tenant {
		if err != nil && !errors.Is(err, ErrNotFound) {
			return APIKey{}, err
		}
		return APIKey{}, fmt.Errorf("api key %s in tenant %s: %w", id, tenant, ErrNotFound)
	}
	revs, err := s.revokeChain(ctx, k, revokeOpts{keepPrior: true, always: true}, map[string]bool{})
	if err != nil {
		return APIKey{}, err
	}
	return revs[0].Key, nil
}

// RevokeAPIKeyByRef revokes what ref names in tenant at once: the key with
// that id (as RevokeAPIKey, except that a revoked key is left as it is),
// else every key with that name, newest first, and every successor of
// those keys, however recent. It returns what it did to each key, also
// when it fails part way.
func (s *Store) RevokeAPIKeyByRef(ctx context.Context, tenant, ref string) ([]Revocation, error) {
	keys, err := s.ResolveAPIKeys(ctx, tenant, ref)
	if err != nil {
		return nil, err
	}
	byID := len(keys) == 1 && keys[0].ID == ref
	done := map[string]bool{}
	var out []Revocation
	for _, k := range keys {
		if done[k.ID] {
			continue
		}
		revs, err := s.revokeChain(ctx, k, revokeOpts{keepPrior: byID}, done)
		out = append(out, revs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

type revokeOpts struct {
	// keepPrior leaves alone a successor that the first key had when it
	// was read.
	keepPrior bool
	// always revokes and records a change even for a revoked key.
	always bool
}

// revokeChain revokes k, as read when the revocation began, closes its
// rotation and, if a successor holds it, revokes that successor the same
// way, down the chain. Keys in done are skipped; those revoked are added.
func (s *Store) revokeChain(ctx context.Context, k APIKey, o revokeOpts, done map[string]bool) ([]Revocation, error) {
	var out []Revocation
	for raced := false; ; raced = true {
		done[k.ID] = true
		already := !k.RevokedAt.IsZero()
		// Revoke before closing the rotation: a rotation that reads the
		// key after this is refused, one that read it before loses the
		// slot or is found in it.
		if !already || o.always {
			if err := s.setRevoked(ctx, k.Tenant, k.ID); err != nil {
				return out, err
			}
		}
		next, kept := "", ""
		if o.keepPrior && !raced && k.SupersededBy != "" {
			kept = k.SupersededBy
		} else {
			var err error
			if next, err = s.closeRotation(ctx, k.ID); err != nil {
				return out, err
			}
		}
		announce := !already || o.always
		if !announce {
			// A revocation whose change was lost (the store failed
			// between the two writes) is announced by the next one: a
			// retry repairs what the failed attempt left.
			recorded, err := s.changeRecorded(ctx, k.ID, k.RevokedAt)
			if err != nil {
				return out, err
			}
			announce = !recorded
		}
		if announce {
			if err := s.appendChange(ctx, authz.ChangeAPIKey, k.Tenant, k.ID); err != nil {
				return out, unrecorded("revoked api key "+k.ID, err)
			}
		}
		rec, err := s.APIKeyRecord(ctx, k.ID)
		if err != nil {
			return out, err
		}
		out = append(out, Revocation{Key: rec, Already: already, Raced: raced, Kept: kept})
		if next == "" || done[next] {
			return out, nil
		}
		// A successor is always of the key's tenant.
		if k, err = s.keyWithSuccessor(ctx, next); err != nil {
			return out, fmt.Errorf("revoke the successor of api key %s: %w", rec.ID, err)
		}
	}
}

// setRevoked sets a key's revocation time unless it has one. revoked_at is
// the only field ever updated on a key, so no concurrent write can undo
// it.
func (s *Store) setRevoked(ctx context.Context, tenant, id string) error {
	_, err := s.db.Collection(colAPIKeys).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}, {Key: "revoked_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: ms(s.now())}}}})
	if err != nil {
		return fmt.Errorf("revoke api key %s: %w", id, err)
	}
	return nil
}

// closeRotation claims id's successor slot for a revocation, so that no
// rotation of id can succeed from now on. It returns "" when the slot is
// closed (by this or another revocation), or the id of the successor that
// a rotation stored there first.
func (s *Store) closeRotation(ctx context.Context, id string) (string, error) {
	marker := bson.D{
		{Key: "_id", Value: "rotation-closed/" + id}, // a key id has no "/"
		{Key: "rotated_from", Value: id},
		{Key: "rotation_closed", Value: true},
		{Key: "created_at", Value: ms(s.now())},
	}
	_, err := s.db.Collection(colAPIKeys).InsertOne(ctx, marker)
	if err == nil {
		return "", nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return "", fmt.Errorf("revoke api key %s: close its rotation: %w", id, err)
	}
	// The slot is taken, and what took it is stored.
	holder, err := s.successor(ctx, id)
	switch {
	case err != nil:
		return "", fmt.Errorf("revoke api key %s: read its successor: %w", id, err)
	case holder == nil:
		return "", fmt.Errorf("revoke api key %s: its rotation is claimed but nothing holds the claim", id)
	case holder.RotationClosed:
		return "", nil
	}
	return holder.ID, nil
}

// RotationTarget picks the key that rotating ref replaces: the key with
// that id, or the tenant's one active key of that name that no rotation
// replaced yet.
func (s *Store) RotationTarget(ctx context.Context, tenant, ref string) (APIKey, error) {
	keys, err := s.ResolveAPIKeys(ctx, tenant, ref)
	if err != nil {
		return APIKey{}, err
	}
	if len(keys) == 1 && keys[0].ID == ref {
		return keys[0], nil
	}
	var current []APIKey
	now := s.now()
	for _, k := range keys {
		if k.SupersededBy == "" && k.State(now) == "active" {
			current = append(current, k)
		}
	}
	switch len(current) {
	case 1:
		return current[0], nil
	case 0:
		return APIKey{}, fmt.Errorf("api key %q in tenant %s: no active key of that name to rotate", ref, tenant)
	default:
		ids := make([]string, len(current))
		for i, k := range current {
			ids[i] = k.ID
		}
		return APIKey{}, errors.New("several active keys are named " + ref + " (" + strings.Join(ids, ", ") + "); rotate one by id")
	}
}

// RotateAPIKeyByRef rotates the key RotationTarget picks for ref, as
// RotateAPIKey does. A zero next.ExpiresAt gives the new key the old
// key's lifetime (at most MaxKeyLifetime) from now.
func (s *Store) RotateAPIKeyByRef(ctx context.Context, tenant, ref string, next APIKey, grace time.Duration) (created, ended APIKey, err error) {
	old, err := s.RotationTarget(ctx, tenant, ref)
	if err != nil {
		return APIKey{}, APIKey{}, err
	}
	if next.ExpiresAt.IsZero() {
		next.ExpiresAt = s.now().Add(min(old.ExpiresAt.Sub(old.CreatedAt), MaxKeyLifetime))
	}
	return s.RotateAPIKey(ctx, old, next, grace)
}

// RotateAPIKey stores next as the successor of the key old names (by id
// and tenant; its state is read from the store, not from the copy) and
// ends that key after grace: at now+grace (never later than its own
// expiry), or at once, as a revocation, when grace is zero. next takes
// the old key's tenant, name, owner and seats. A key has at most one
// successor: of concurrent rotations exactly one wins, because the
// successor's insert claims the predecessor under a unique index, and a
// rotation racing with a revocation of the key either loses that claim to
// the revocation or has its successor revoked too.
func (s *Store) RotateAPIKey(ctx context.Context, old APIKey, next APIKey, grace time.Duration) (APIKey, APIKey, error) {
	now := s.now()
	if grace < 0 || grace > MaxKeyLifetime {
		return APIKey{}, APIKey{}, errors.New("grace: must be between 0 and one year")
	}
	cur, err := s.keyWithSuccessor(ctx, old.ID)
	if err != nil || cur.Tenant != old.Tenant {
		return APIKey{}, APIKey{}, fmt.Errorf("api key %s in tenant %s: %w", old.ID, old.Tenant, ErrNotFound)
	}
	if cur.SupersededBy != "" {
		return APIKey{}, APIKey{}, fmt.Errorf("api key %s was already rotated to %s; rotate that one", cur.ID, cur.SupersededBy)
	}
	if st := cur.State(now); st != "active" {
		return APIKey{}, APIKey{}, fmt.Errorf("api key %s is %s; only an active key can be rotated", cur.ID, st)
	}
	next.Tenant, next.Name, next.Owner, next.Seats = cur.Tenant, cur.Name, cur.Owner, cur.Seats
	if err := validateKey(next, now); err != nil {
		return APIKey{}, APIKey{}, err
	}
	if err := s.checkKeyRefs(ctx, next); err != nil {
		return APIKey{}, APIKey{}, err
	}
	seats := slices.Clone(next.Seats)
	slices.Sort(seats)
	d := apiKeyDoc{
		ID: next.ID, Tenant: next.Tenant, Name: next.Name, Owner: next.Owner, Seats: slices.Compact(seats),
		Hash: next.Hash.String(), CreatedAt: ms(now), ExpiresAt: ms(next.ExpiresAt), RotatedFrom: cur.ID,
	}
	if grace == 0 {
		d.PreviousRevoked = true
	} else {
		end := ms(now.Add(grace))
		d.PreviousEndsAt = &end
	}
	if _, err := s.db.Collection(colAPIKeys).InsertOne(ctx, d); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			if holder, herr := s.successor(ctx, cur.ID); herr == nil && holder != nil && holder.RotationClosed {
				return APIKey{}, APIKey{}, fmt.Errorf("api key %s was revoked meanwhile; only an active key can be rotated", cur.ID)
			}
			return APIKey{}, APIKey{}, fmt.Errorf("api key %s was rotated by someone else meanwhile, or id %s is taken; list the keys and try again: %w", cur.ID, next.ID, ErrExists)
		}
		return APIKey{}, APIKey{}, fmt.Errorf("create api key %s: %w", next.ID, err)
	}
	for _, id := range []string{d.ID, cur.ID} {
		if err := s.appendChange(ctx, authz.ChangeAPIKey, cur.Tenant, id); err != nil {
			return APIKey{}, APIKey{}, s.undoRotation(ctx, d, cur, err)
		}
	}
	created, err := d.key(nil)
	if err != nil {
		return APIKey{}, APIKey{}, err
	}
	ended, err := s.APIKeyRecord(ctx, cur.ID)
	return created, ended, err
}

// undoTimeout bounds undoing a rotation whose change could not be
// recorded, which runs also when the rotation's own context has ended.
const undoTimeout = 5 * time.Second

// undoRotation removes the successor d of cur, stored by a rotation whose
// change could not be recorded, so that the failed rotation leaves cur as
// it was, and no key whose secret nobody was given: the caller retries
// the rotation. A successor a revocation has revoked meanwhile stays: the
// rotation then stands, revoked, as a revocation racing with it leaves
// it. cur's change is recorded if the store lets it, for servers that
// read cur while d stood (they deny it early, never allow it late; the
// cache TTL bounds even that). Removing d frees cur's successor slot: a
// concurrent revocation by id that kept d as cur's successor (revokeOpts.
// keepPrior) and a second rotation that read cur before it was revoked
// could then leave cur revoked with a live successor; that needs the
// store to fail between two writes while both race with this rotation.
func (s *Store) undoRotation(ctx context.Context, d apiKeyDoc, cur APIKey, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	res, err := s.db.Collection(colAPIKeys).DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "revoked_at", Value: nil}})
	switch {
	case err != nil:
		return fmt.Errorf("rotate api key %s: %w; undoing it failed too (%v): its new key %s is stored but nobody has its secret: "+
			"once the store answers, revoke %s and rotate or create again", cur.ID, cause, err, d.ID, d.ID)
	case res.DeletedCount == 0:
		return fmt.Errorf("rotate api key %s: %w; a revocation revoked its new key %s meanwhile", cur.ID, cause, d.ID)
	}
	_ = s.appendChange(ctx, authz.ChangeAPIKey, cur.Tenant, cur.ID)
	return fmt.Errorf("rotate api key %s: %w; the rotation was undone, try again", cur.ID, cause)
}

// changeRecorded says whether the change feed holds a change of the key id
// stamped at or after at.
func (s *Store) changeRecorded(ctx context.Context, id string, at time.Time) (bool, error) {
	err := s.db.Collection(colChanges).FindOne(ctx, bson.D{
		{Key: "kind", Value: string(authz.ChangeAPIKey)}, {Key: "key", Value: id},
		{Key: "at", Value: bson.D{{Key: "$gte", Value: ms(at)}}},
	}).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return false, nil
	}
	return false, fmt.Errorf("read the change feed for api key %s: %w", id, err)
}
