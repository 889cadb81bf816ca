package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/usher-dev/usher/authz"
)

// sessionDoc is a login session. Its only later change is
// UpdateSessionGroups; a revocation and the last use live in documents of
// their own (session_revocations, session_usage), so that no concurrent
// update of the session can undo a revocation or lose a rotated IdP
// refresh token (FerretDB does not apply concurrent updates of one
// document atomically). Only the hash of the session handle is stored.
type sessionDoc struct {
	ID      string `bson:"_id"`
	Tenant  string `bson:"tenant"`
	Issuer  string `bson:"issuer"`
	Subject string `bson:"subject"`
	Email   string `bson:"email"`
	// EmailKey is the email lower-cased, what a search by email matches.
	EmailKey   string    `bson:"email_key"`
	Name       string    `bson:"name,omitempty"`
	Seats      []string  `bson:"seats"`
	Groups     []string  `bson:"groups"`
	Hash       string    `bson:"hash,omitempty"` // hex SHA-256 of the whole handle
	Provider   string    `bson:"provider,omitempty"`
	CreatedAt  time.Time `bson:"created_at"`
	LastSeenAt time.Time `bson:"last_seen_at"`
	ExpiresAt  time.Time `bson:"expires_at"`
	ClientID   string    `bson:"client_id,omitempty"`
	// IDPRefresh and IDToken arrive sealed by the login app.
	IDPRefresh      string     `bson:"idp_refresh,omitempty"`
	IDToken         string     `bson:"id_token,omitempty"`
	GroupsCheckedAt *time.Time `bson:"groups_checked_at,omitempty"`
}

// sessionRevocationDoc revokes a session. It is only ever inserted, under
// the session's id: the first revocation's time stays.
type sessionRevocationDoc struct {
	ID        string    `bson:"_id"`
	Tenant    string    `bson:"tenant"`
	RevokedAt time.Time `bson:"revoked_at"`
}

type sessionUsageDoc struct {
	ID         string    `bson:"_id"`
	LastSeenAt time.Time `bson:"last_seen_at"`
}

// maxSessionIDLen bounds a session id: real ones have 16 characters.
const maxSessionIDLen = 64

func emailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func (d sessionDoc) session() (authz.Session, error) {
	var h authz.KeyHash
	if d.Hash != "" {
		var err error
		if h, err = authz.ParseKeyHash(d.Hash); err != nil {
			return authz.Session{}, fmt.Errorf("session %s: stored %w", d.ID, err)
		}
	}
	return authz.Session{
		ID: d.ID, Tenant: d.Tenant, Issuer: d.Issuer, Subject: d.Subject, Email: d.Email, Name: d.Name,
		Seats: d.Seats, Groups: d.Groups, Hash: h, Provider: d.Provider,
		CreatedAt: d.CreatedAt.UTC(), LastSeenAt: d.LastSeenAt.UTC(), ExpiresAt: d.ExpiresAt.UTC(),
		ClientID: d.ClientID, IDPRefresh: d.IDPRefresh, IDToken: d.IDToken, GroupsCheckedAt: timeVal(d.GroupsCheckedAt),
	}, nil
}

// CreateSession inserts a new session. An id already used, even by a
// session since revoked, is ErrExists: ids are never reused. A zero
// CreatedAt is the store's now; a zero LastSeenAt is CreatedAt.
func (s *Store) CreateSession(ctx context.Context, sess authz.Session) error {
	var errs []error
	if err := authz.ValidateTenant(sess.Tenant); err != nil {
		errs = append(errs, err)
	}
	if sess.ID == "" || len(sess.ID) > maxSessionIDLen {
		errs = append(errs, fmt.Errorf("session id: 1 to %d characters", maxSessionIDLen))
	}
	if sess.ExpiresAt.IsZero() {
		errs = append(errs, errors.New("session expiry: required"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	created := sess.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	seen := sess.LastSeenAt
	if seen.IsZero() {
		seen = created
	}
	d := sessionDoc{
		ID: sess.ID, Tenant: sess.Tenant, Issuer: sess.Issuer, Subject: sess.Subject,
		Email: sess.Email, EmailKey: emailKey(sess.Email), Name: sess.Name, Seats: sess.Seats, Groups: sess.Groups,
		Provider: sess.Provider, CreatedAt: ms(created), LastSeenAt: ms(seen), ExpiresAt: ms(sess.ExpiresAt),
		ClientID: sess.ClientID, IDPRefresh: sess.IDPRefresh, IDToken: sess.IDToken,
	}
	if sess.Hash != (authz.KeyHash{}) {
		d.Hash = sess.Hash.String()
	}
	if !sess.GroupsCheckedAt.IsZero() {
		t := ms(sess.GroupsCheckedAt)
		d.GroupsCheckedAt = &t
	}
	// A revocation marker left by an id's earlier life would revoke the
	// new session; ids are never reused, so refuse the id.
	if err := s.db.Collection(colSessionRevocations).FindOne(ctx, bson.D{{Key: "_id", Value: sess.ID}}).Err(); err == nil {
		return fmt.Errorf("session %s: %w", sess.ID, ErrExists)
	} else if !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("create session %s: %w", sess.ID, err)
	}
	return s.insert(ctx, colSessions, d, "session "+sess.ID)
}

// Session returns a session with its last use and revocation, or an error
// wrapping ErrNotFound. It implements authz.SessionLookup.
func (s *Store) Session(ctx context.Context, id string) (authz.Session, error) {
	var d sessionDoc
	if err := s.db.Collection(colSessions).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		return authz.Session{}, notFound(err, "session "+id)
	}
	out, err := s.sessionsOf(ctx, []sessionDoc{d})
	if err != nil {
		return authz.Session{}, err
	}
	return out[0], nil
}

// sessionsOf completes docs with their last use and revocation.
func (s *Store) sessionsOf(ctx context.Context, docs []sessionDoc) ([]authz.Session, error) {
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	in := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}
	var used []sessionUsageDoc
	if err := s.findAll(ctx, colSessionUsage, in, &used); err != nil {
		return nil, fmt.Errorf("read session use: %w", err)
	}
	seen := make(map[string]time.Time, len(used))
	for _, u := range used {
		seen[u.ID] = u.LastSeenAt.UTC()
	}
	var revs []sessionRevocationDoc
	if err := s.findAll(ctx, colSessionRevocations, in, &revs); err != nil {
		return nil, fmt.Errorf("read session revocations: %w", err)
	}
	revoked := make(map[string]time.Time, len(revs))
	for _, r := range revs {
		revoked[r.ID] = r.RevokedAt.UTC()
	}
	out := make([]authz.Session, 0, len(docs))
	for _, d := range docs {
		sess, err := d.session()
		if err != nil {
			return nil, err
		}
		if t := seen[d.ID]; t.After(sess.LastSeenAt) {
			sess.LastSeenAt = t
		}
		sess.RevokedAt = revoked[d.ID]
		out = append(out, sess)
	}
	return out, nil
}

// UpdateSessionGroups records groups and seats re-read from the IdP at at,
// and idpRefresh (sealed) when the IdP rotated its refresh token; an
// empty idpRefresh keeps the stored one. It appends a ChangeSession so
// that servers drop the seats they cached.
func (s *Store) UpdateSessionGroups(ctx context.Context, id string, groups, seats []string, idpRefresh string, at time.Time) error {
	set := bson.D{{Key: "groups", Value: groups}, {Key: "seats", Value: seats}, {Key: "groups_checked_at", Value: ms(at)}}
	if idpRefresh != "" {
		set = append(set, bson.E{Key: "idp_refresh", Value: idpRefresh})
	}
	var d sessionDoc
	err := s.db.Collection(colSessions).FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: set}}).Decode(&d)
	if err != nil {
		return notFound(err, "update session "+id)
	}
	if err := s.appendChange(ctx, authz.ChangeSession, d.Tenant, id); err != nil {
		return unrecorded("updated session "+id, err)
	}
	return nil
}

// RevokeSession revokes a session of tenant, and with it its refresh
// family, and appends a ChangeSession. A session of another tenant is not
// found. Revoking a revoked session keeps the first revocation's time and
// appends the change again, which records it if the first attempt could
// not.
func (s *Store) RevokeSession(ctx context.Context, tenant, id string) error {
	err := s.db.Collection(colSessions).FindOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if err != nil {
		return notFound(err, fmt.Sprintf("session %s in tenant %s", id, tenant))
	}
	if _, err := s.markRevoked(ctx, tenant, id); err != nil {
		return err
	}
	if err := s.appendChange(ctx, authz.ChangeSession, tenant, id); err != nil {
		return unrecorded("revoked session "+id, err)
	}
	return nil
}

// markRevoked inserts a session's revocation marker and reports whether
// this call revoked it (false: it was revoked already).
func (s *Store) markRevoked(ctx context.Context, tenant, id string) (bool, error) {
	_, err := s.db.Collection(colSessionRevocations).InsertOne(ctx,
		sessionRevocationDoc{ID: id, Tenant: tenant, RevokedAt: ms(s.now())})
	switch {
	case err == nil:
		return true, nil
	case mongo.IsDuplicateKeyError(err):
		return false, nil
	}
	return false, fmt.Errorf("revoke session %s: %w", id, err)
}

// RevokeUserSessions revokes every session of the person with that email
// (in any case) in tenant and returns how many this call revoked. It
// appends a ChangeSession for each session it revoked and for each one
// revoked before that has not expired, so that repeating it records what
// an earlier failure to append did not.
func (s *Store) RevokeUserSessions(ctx context.Context, tenant, email string) (int, error) {
	if emailKey(email) == "" {
		return 0, errors.New("revoke sessions: email is required")
	}
	var docs []sessionDoc
	err := s.findAll(ctx, colSessions, bson.D{{Key: "tenant", Value: tenant}, {Key: "email_key", Value: emailKey(email)}}, &docs)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of %s: %w", email, err)
	}
	n := 0
	now := s.now()
	for _, d := range docs {
		won, err := s.markRevoked(ctx, tenant, d.ID)
		if err != nil {
			return n, err
		}
		if won {
			n++
		}
		if !now.Before(d.ExpiresAt) && !won {
			continue
		}
		if err := s.appendChange(ctx, authz.ChangeSession, tenant, d.ID); err != nil {
			return n, unrecorded(fmt.Sprintf("revoked %d session(s) of %s", n, email), err)
		}
	}
	return n, nil
}

// ListSessions lists a tenant's sessions, of the person with that email
// (in any case) when email is not empty, newest first.
func (s *Store) ListSessions(ctx context.Context, tenant, email string) ([]authz.Session, error) {
	filter := bson.D{{Key: "tenant", Value: tenant}}
	if email != "" {
		filter = append(filter, bson.E{Key: "email_key", Value: emailKey(email)})
	}
	cur, err := s.db.Collection(colSessions).Find(ctx, filter,
		options.Find().SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}))
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	if len(docs) == 0 {
		return []authz.Session{}, nil
	}
	return s.sessionsOf(ctx, docs)
}

// TouchSessions records when sessions were last used, in one unordered
// bulk write to a collection of their own (see sessionDoc). A time never
// moves back. It implements authz.SessionUsage.
func (s *Store) TouchSessions(ctx context.Context, used map[string]time.Time) error {
	if err := s.touchMax(ctx, colSessionUsage, "last_seen_at", used); err != nil {
		return fmt.Errorf("record session use: %w", err)
	}
	return nil
}
