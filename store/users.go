package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
)

// userDoc is a person who logged in, one per (tenant, issuer, subject).
type userDoc struct {
	ID         string    `bson:"_id"` // see userID
	Tenant     string    `bson:"tenant"`
	Issuer     string    `bson:"issuer"`
	Subject    string    `bson:"subject"`
	Email      string    `bson:"email"`
	EmailKey   string    `bson:"email_key"` // lower-cased
	Name       string    `bson:"name,omitempty"`
	Groups     []string  `bson:"groups"`
	FirstLogin time.Time `bson:"first_login"`
	LastLogin  time.Time `bson:"last_login"`
}

// invitationDoc lets a person log in; one per (tenant, lower-cased email).
type invitationDoc struct {
	ID        string    `bson:"_id"` // tenant/email
	Tenant    string    `bson:"tenant"`
	Email     string    `bson:"email"` // lower-cased
	Seats     []string  `bson:"seats"`
	CreatedAt time.Time `bson:"created_at"`
}

// maxEmailLen is RFC 5321's bound on a forward path, a generous one for
// an address.
const maxEmailLen = 256

// userID is a user's _id. The issuer's length goes in front of it, so
// that no issuer and subject containing "/" can make the id of another
// pair (tenant names hold no "/").
func userID(tenant, issuer, subject string) string {
	return fmt.Sprintf("%s/%d:%s/%s", tenant, len(issuer), issuer, subject)
}

func (d userDoc) user() login.User {
	return login.User{Tenant: d.Tenant, Issuer: d.Issuer, Subject: d.Subject, Email: d.Email, Name: d.Name,
		Groups: d.Groups, FirstLogin: d.FirstLogin.UTC(), LastLogin: d.LastLogin.UTC()}
}

// UpsertUser records a login at u.LastLogin (zero: the store's now): it
// creates the user with FirstLogin at that time, or updates email, name,
// groups and LastLogin (which never moves back). It returns the stored
// user.
func (s *Store) UpsertUser(ctx context.Context, u login.User) (login.User, error) {
	var errs []error
	if err := authz.ValidateTenant(u.Tenant); err != nil {
		errs = append(errs, err)
	}
	if u.Issuer == "" || u.Subject == "" {
		errs = append(errs, errors.New("user: issuer and subject are required"))
	}
	if len(u.Email) > maxEmailLen {
		errs = append(errs, fmt.Errorf("user email: at most %d characters", maxEmailLen))
	}
	if err := errors.Join(errs...); err != nil {
		return login.User{}, err
	}
	at := u.LastLogin
	if at.IsZero() {
		at = s.now()
	}
	at = ms(at)
	id := userID(u.Tenant, u.Issuer, u.Subject)
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "email", Value: u.Email}, {Key: "email_key", Value: emailKey(u.Email)},
			{Key: "name", Value: u.Name}, {Key: "groups", Value: u.Groups}}},
		{Key: "$max", Value: bson.D{{Key: "last_login", Value: at}}},
		{Key: "$setOnInsert", Value: bson.D{{Key: "tenant", Value: u.Tenant}, {Key: "issuer", Value: u.Issuer},
			{Key: "subject", Value: u.Subject}, {Key: "first_login", Value: at}}},
	}
	col := s.db.Collection(colUsers)
	// Two first logins at once race to insert; the loser's duplicate key
	// error means the user now exists, so one retry updates it.
	var err error
	for range 2 {
		if _, err = col.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, update, options.UpdateOne().SetUpsert(true)); err == nil || !mongo.IsDuplicateKeyError(err) {
			break
		}
	}
	if err != nil {
		return login.User{}, fmt.Errorf("record login of %s: %w", u.Subject, err)
	}
	var d userDoc
	if err := col.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		return login.User{}, notFound(err, "user "+u.Subject)
	}
	return d.user(), nil
}

// ListUsers lists a tenant's users by email (lower-cased), then issuer
// and subject.
func (s *Store) ListUsers(ctx context.Context, tenant string) ([]login.User, error) {
	var docs []userDoc
	if err := s.findAll(ctx, colUsers, bson.D{{Key: "tenant", Value: tenant}}, &docs); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]login.User, len(docs))
	for i, d := range docs {
		out[i] = d.user()
	}
	sortUsers(out)
	return out, nil
}

func sortUsers(us []login.User) {
	slices.SortFunc(us, func(a, b login.User) int {
		return cmp.Or(cmp.Compare(emailKey(a.Email), emailKey(b.Email)), cmp.Compare(a.Issuer, b.Issuer), cmp.Compare(a.Subject, b.Subject))
	})
}

// InviteUser creates or replaces an invitation, its email lower-cased.
// The tenant and every seat must exist. A zero CreatedAt is the store's
// now.
func (s *Store) InviteUser(ctx context.Context, inv login.Invitation) error {
	email := emailKey(inv.Email)
	var errs []error
	if err := authz.ValidateTenant(inv.Tenant); err != nil {
		errs = append(errs, err)
	}
	if email == "" || len(email) > maxEmailLen || !strings.Contains(email, "@") {
		errs = append(errs, fmt.Errorf("invitation email %q: an address of at most %d characters", inv.Email, maxEmailLen))
	}
	for _, seat := range inv.Seats {
		if err := authz.ValidateName("seat", seat); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if _, err := s.Tenant(ctx, inv.Tenant); err != nil {
		return err
	}
	for _, seat := range inv.Seats {
		if _, err := s.Seat(ctx, inv.Tenant, seat); err != nil {
			return fmt.Errorf("%w (create the seat first)", err)
		}
	}
	created := inv.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	d := invitationDoc{ID: inv.Tenant + "/" + email, Tenant: inv.Tenant, Email: email, Seats: inv.Seats, CreatedAt: ms(created)}
	var err error
	for range 2 { // as in UpsertUser
		if _, err = s.db.Collection(colInvitations).ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d,
			options.Replace().SetUpsert(true)); err == nil || !mongo.IsDuplicateKeyError(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("invite %s: %w", email, err)
	}
	return nil
}

// Invitation returns the invitation of email (in any case) in tenant, or
// an error wrapping ErrNotFound.
func (s *Store) Invitation(ctx context.Context, tenant, email string) (login.Invitation, error) {
	var d invitationDoc
	err := s.db.Collection(colInvitations).FindOne(ctx, bson.D{{Key: "_id", Value: tenant + "/" + emailKey(email)}}).Decode(&d)
	if err != nil {
		return login.Invitation{}, notFound(err, fmt.Sprintf("invitation of %s in tenant %s", email, tenant))
	}
	return login.Invitation{Tenant: d.Tenant, Email: d.Email, Seats: d.Seats, CreatedAt: d.CreatedAt.UTC()}, nil
}

// RemoveUser removes the invitation and the user records with that email
// (in any case) in tenant; an error wrapping ErrNotFound when there was
// neither. It does not revoke sessions.
func (s *Store) RemoveUser(ctx context.Context, tenant, email string) error {
	key := emailKey(email)
	if key == "" {
		return errors.New("remove user: email is required")
	}
	inv, err := s.db.Collection(colInvitations).DeleteOne(ctx, bson.D{{Key: "_id", Value: tenant + "/" + key}})
	if err != nil {
		return fmt.Errorf("remove invitation of %s: %w", email, err)
	}
	users, err := s.db.Collection(colUsers).DeleteMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "email_key", Value: key}})
	if err != nil {
		return fmt.Errorf("remove user %s: %w", email, err)
	}
	if inv.DeletedCount+users.DeletedCount == 0 {
		return fmt.Errorf("user or invitation %s in tenant %s: %w", email, tenant, ErrNotFound)
	}
	return nil
}
