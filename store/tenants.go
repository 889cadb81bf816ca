package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/usher-dev/usher/authz"
)

// Tenant is an organisation using usher; everything else belongs to one.
type Tenant struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

type tenantDoc struct {
	Name      string    `bson:"_id"`
	CreatedAt time.Time `bson:"created_at"`
}

// Space is where permissions apply: a project, a workspace.
type Space struct {
	Tenant    string    `json:"tenant"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

type spaceDoc struct {
	ID        string    `bson:"_id"` // tenant/name: unique by construction
	Tenant    string    `bson:"tenant"`
	Name      string    `bson:"name"`
	CreatedAt time.Time `bson:"created_at"`
}

// CreateTenant creates a tenant; ErrExists if the name is taken.
func (s *Store) CreateTenant(ctx context.Context, name string) (Tenant, error) {
	if err := authz.ValidateTenant(name); err != nil {
		return Tenant{}, err
	}
	d := tenantDoc{Name: name, CreatedAt: ms(s.now())}
	if err := s.insert(ctx, colTenants, d, "tenant "+name); err != nil {
		return Tenant{}, err
	}
	if err := s.appendChange(ctx, authz.ChangeTenant, name, name); err != nil {
		return Tenant{}, err
	}
	return Tenant(d), nil
}

// Tenants lists every tenant by name.
func (s *Store) Tenants(ctx context.Context) ([]Tenant, error) {
	var docs []tenantDoc
	if err := s.findAll(ctx, colTenants, bson.D{}, &docs); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	out := make([]Tenant, len(docs))
	for i, d := range docs {
		out[i] = Tenant{Name: d.Name, CreatedAt: d.CreatedAt.UTC()}
	}
	return out, nil
}

// Tenant returns the named tenant or ErrNotFound.
func (s *Store) Tenant(ctx context.Context, name string) (Tenant, error) {
	var d tenantDoc
	if err := s.db.Collection(colTenants).FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&d); err != nil {
		return Tenant{}, notFound(err, "tenant "+name)
	}
	return Tenant{Name: d.Name, CreatedAt: d.CreatedAt.UTC()}, nil
}

// CreateSpace creates a space in an existing tenant; ErrExists if the name
// is taken there.
func (s *Store) CreateSpace(ctx context.Context, tenant, name string) (Space, error) {
	if err := authz.ValidateName("space", name); err != nil {
		return Space{}, err
	}
	if _, err := s.Tenant(ctx, tenant); err != nil {
		return Space{}, err
	}
	d := spaceDoc{ID: tenant + "/" + name, Tenant: tenant, Name: name, CreatedAt: ms(s.now())}
	if err := s.insert(ctx, colSpaces, d, "space "+name+" in tenant "+tenant); err != nil {
		return Space{}, err
	}
	if err := s.appendChange(ctx, authz.ChangeSpace, tenant, name); err != nil {
		return Space{}, err
	}
	return Space{Tenant: tenant, Name: name, CreatedAt: d.CreatedAt}, nil
}

// Spaces lists a tenant's spaces by name.
func (s *Store) Spaces(ctx context.Context, tenant string) ([]Space, error) {
	var docs []spaceDoc
	if err := s.findAll(ctx, colSpaces, bson.D{{Key: "tenant", Value: tenant}}, &docs); err != nil {
		return nil, fmt.Errorf("list spaces: %w", err)
	}
	out := make([]Space, len(docs))
	for i, d := range docs {
		out[i] = Space{Tenant: d.Tenant, Name: d.Name, CreatedAt: d.CreatedAt.UTC()}
	}
	return out, nil
}

// insert inserts doc, mapping a duplicate key to ErrExists.
func (s *Store) insert(ctx context.Context, col string, doc any, what string) error {
	_, err := s.db.Collection(col).InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("%s: %w", what, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", what, err)
	}
	return nil
}

// findAll decodes every document matching filter, sorted by _id.
func (s *Store) findAll(ctx context.Context, col string, filter bson.D, out any) error {
	cur, err := s.db.Collection(col).Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return err
	}
	return cur.All(ctx, out)
}
