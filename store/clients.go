package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
)

// clientDoc is an OAuth client an operator registered for a tenant. Only
// public clients exist: there is no secret to store.
type clientDoc struct {
	ID        string    `bson:"_id"`
	Tenant    string    `bson:"tenant"`
	Name      string    `bson:"name"`
	Public    bool      `bson:"public"`
	CreatedAt time.Time `bson:"created_at"`
}

func (d clientDoc) client() login.Client {
	return login.Client{ID: d.ID, Tenant: d.Tenant, Name: d.Name, Public: d.Public, CreatedAt: d.CreatedAt.UTC()}
}

// maxClientName caps a client's display name.
const maxClientName = 100

// ValidateClientID says whether id can name an OAuth client: 3 to 64
// characters of a-z, 0-9, '-' and '_', starting with a letter.
func ValidateClientID(id string) error {
	if len(id) < 3 || len(id) > 64 || id[0] < 'a' || id[0] > 'z' {
		return fmt.Errorf("client id %q: 3 to 64 characters starting with a lower-case letter", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("client id %q: only a-z, 0-9, '-' and '_'", id)
		}
	}
	return nil
}

// AddClient registers a public client for a tenant. The built-in
// client's id, and an id in use, are ErrExists.
func (s *Store) AddClient(ctx context.Context, c login.Client) error {
	var errs []error
	if err := authz.ValidateTenant(c.Tenant); err != nil {
		errs = append(errs, err)
	}
	if err := ValidateClientID(c.ID); err != nil {
		errs = append(errs, err)
	}
	if c.Name == "" || len(c.Name) > maxClientName {
		errs = append(errs, fmt.Errorf("client name: 1 to %d characters", maxClientName))
	}
	if !c.Public {
		errs = append(errs, errors.New("client: only public clients (no secret) are supported"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.ID == login.BuiltinClientID {
		return fmt.Errorf("client %s is built in: %w", c.ID, ErrExists)
	}
	created := c.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	return s.insert(ctx, colClients, clientDoc{ID: c.ID, Tenant: c.Tenant, Name: c.Name, Public: true, CreatedAt: ms(created)}, "client "+c.ID)
}

// Client finds a client by id; the built-in one always exists.
func (s *Store) Client(ctx context.Context, id string) (login.Client, error) {
	if id == login.BuiltinClientID {
		return login.BuiltinClient, nil
	}
	var d clientDoc
	if err := s.db.Collection(colClients).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		return login.Client{}, notFound(err, "client "+id)
	}
	return d.client(), nil
}

// ListClients lists the built-in client, then a tenant's clients (every
// tenant's when tenant is empty) by id.
func (s *Store) ListClients(ctx context.Context, tenant string) ([]login.Client, error) {
	filter := bson.D{}
	if tenant != "" {
		filter = bson.D{{Key: "tenant", Value: tenant}}
	}
	var docs []clientDoc
	if err := s.findAll(ctx, colClients, filter, &docs); err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	out := make([]login.Client, 0, len(docs)+1)
	out = append(out, login.BuiltinClient)
	for _, d := range docs {
		out = append(out, d.client())
	}
	return out, nil
}

// RemoveClient removes a tenant's client. Logins it already made stay
// until they are revoked or expire; no new ones start.
func (s *Store) RemoveClient(ctx context.Context, tenant, id string) error {
	if id == login.BuiltinClientID {
		return errors.New("client usher-cli is built in and cannot be removed")
	}
	res, err := s.db.Collection(colClients).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}})
	if err != nil {
		return fmt.Errorf("remove client %s: %w", id, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("client %s in tenant %s: %w", id, tenant, ErrNotFound)
	}
	return nil
}

// Compile-time checks that Store keeps the login app's contracts.
var (
	_ login.DeviceCodes = (*Store)(nil)
	_ login.Clients     = (*Store)(nil)
)
