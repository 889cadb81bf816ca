package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
)

// providerDoc is a login provider of a tenant. Its _id is tenant/type,
// which makes a second provider of a type in a tenant a duplicate key.
// The client secret is sealed with the master key, bound to the tenant and
// type.
type providerDoc struct {
	ID           string    `bson:"_id"` // tenant/type
	Tenant       string    `bson:"tenant"`
	Type         string    `bson:"type"`
	Name         string    `bson:"name,omitempty"`
	ClientID     string    `bson:"client_id"`
	ClientSecret string    `bson:"client_secret"` // sealed
	IssuerURL    string    `bson:"issuer_url,omitempty"`
	RedirectURL  string    `bson:"redirect_url,omitempty"`
	GroupsClaim  string    `bson:"groups_claim,omitempty"`
	AllowedOrgs  []string  `bson:"allowed_orgs,omitempty"`
	AllowedTeams []string  `bson:"allowed_teams,omitempty"`
	AuthURL      string    `bson:"auth_url,omitempty"`
	TokenURL     string    `bson:"token_url,omitempty"`
	APIURL       string    `bson:"api_url,omitempty"`
	CreatedAt    time.Time `bson:"created_at"`
}

// providerTypes are the login provider types.
var providerTypes = map[string]bool{"oidc": true, "google": true, "github": true}

// providerAAD binds a sealed client secret to its provider.
func providerAAD(tenant, typ string) []byte { return []byte("identity_provider/" + tenant + "/" + typ) }

func validateProvider(p login.ProviderConfig) error {
	var errs []error
	if err := authz.ValidateTenant(p.Tenant); err != nil {
		errs = append(errs, err)
	}
	if !providerTypes[p.Type] {
		errs = append(errs, fmt.Errorf("provider type %q: want oidc, google or github", p.Type))
	}
	if p.ClientID == "" {
		errs = append(errs, errors.New("provider client id: required"))
	}
	if p.Type == "oidc" && p.IssuerURL == "" {
		errs = append(errs, errors.New("provider issuer url: required for an oidc provider"))
	}
	return errors.Join(errs...)
}

// AddProvider stores a login provider of an existing tenant, its client
// secret sealed with the master key. A second provider of the same type
// in the tenant is ErrExists. Checks that need the network (an issuer's
// discovery) are the caller's. A zero CreatedAt is the store's now.
func (s *Store) AddProvider(ctx context.Context, p login.ProviderConfig) error {
	if err := validateProvider(p); err != nil {
		return err
	}
	if _, err := s.Tenant(ctx, p.Tenant); err != nil {
		return err
	}
	sealed, err := s.master.Seal([]byte(p.ClientSecret), providerAAD(p.Tenant, p.Type))
	if err != nil {
		return fmt.Errorf("seal the client secret of the %s provider of tenant %s: %w", p.Type, p.Tenant, err)
	}
	created := p.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	d := providerDoc{
		ID: p.Tenant + "/" + p.Type, Tenant: p.Tenant, Type: p.Type, Name: p.Name, ClientID: p.ClientID, ClientSecret: sealed,
		IssuerURL: p.IssuerURL, RedirectURL: p.RedirectURL, GroupsClaim: p.GroupsClaim,
		AllowedOrgs: p.AllowedOrgs, AllowedTeams: p.AllowedTeams, AuthURL: p.AuthURL, TokenURL: p.TokenURL, APIURL: p.APIURL,
		CreatedAt: ms(created),
	}
	if err := s.insert(ctx, colProviders, d, fmt.Sprintf("%s provider of tenant %s", p.Type, p.Tenant)); err != nil {
		if errors.Is(err, ErrExists) {
			return fmt.Errorf("%w (a tenant has at most one provider of each type; remove it first)", err)
		}
		return err
	}
	return nil
}

// ListProviders lists a tenant's providers, or every tenant's when tenant
// is empty, by tenant and type, with their client secrets opened. A
// provider whose secret does not open (another master key, a value moved
// from another provider, tampering) is left out and logged as an error,
// so that one bad record never stops a server; the log names the tenant
// and type, never the secret.
func (s *Store) ListProviders(ctx context.Context, tenant string) ([]login.ProviderConfig, error) {
	filter := bson.D{}
	if tenant != "" {
		filter = bson.D{{Key: "tenant", Value: tenant}}
	}
	cur, err := s.db.Collection(colProviders).Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list login providers: %w", err)
	}
	var docs []providerDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list login providers: %w", err)
	}
	out := make([]login.ProviderConfig, 0, len(docs))
	for _, d := range docs {
		secret, err := s.master.Open(d.ClientSecret, providerAAD(d.Tenant, d.Type))
		if err != nil {
			s.log.ErrorContext(ctx, "login provider left out: its client secret does not open",
				"tenant", d.Tenant, "type", d.Type, "err", err)
			continue
		}
		out = append(out, login.ProviderConfig{
			Tenant: d.Tenant, Type: d.Type, Name: d.Name, ClientID: d.ClientID, ClientSecret: string(secret),
			IssuerURL: d.IssuerURL, RedirectURL: d.RedirectURL, GroupsClaim: d.GroupsClaim,
			AllowedOrgs: d.AllowedOrgs, AllowedTeams: d.AllowedTeams, AuthURL: d.AuthURL, TokenURL: d.TokenURL, APIURL: d.APIURL,
			CreatedAt: d.CreatedAt.UTC(),
		})
	}
	return out, nil
}

// RemoveProvider removes a tenant's provider of a type, or answers an
// error wrapping ErrNotFound.
func (s *Store) RemoveProvider(ctx context.Context, tenant, typ string) error {
	res, err := s.db.Collection(colProviders).DeleteOne(ctx, bson.D{{Key: "_id", Value: tenant + "/" + typ}})
	if err != nil {
		return fmt.Errorf("remove %s provider of tenant %s: %w", typ, tenant, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("%s provider of tenant %s: %w", typ, tenant, ErrNotFound)
	}
	return nil
}
