package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/usher-dev/usher/authz"
)

// Issuer is an identity provider whose tokens a tenant trusts.
type Issuer struct {
	Tenant   string `json:"tenant"`
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	// GroupsClaim names the claim holding the user's groups: memberOf,
	// groups, roles, or a dotted path such as realm_access.roles.
	GroupsClaim string    `json:"groups_claim"`
	CreatedAt   time.Time `json:"created_at"`
}

type issuerDoc struct {
	ID          string    `bson:"_id"` // tenant and issuer: one trust per pair
	Tenant      string    `bson:"tenant"`
	Issuer      string    `bson:"issuer"`
	Audience    string    `bson:"audience"`
	GroupsClaim string    `bson:"groups_claim"`
	CreatedAt   time.Time `bson:"created_at"`
}

func (d issuerDoc) issuer() Issuer {
	return Issuer{Tenant: d.Tenant, Issuer: d.Issuer, Audience: d.Audience, GroupsClaim: d.GroupsClaim, CreatedAt: d.CreatedAt.UTC()}
}

func issuerID(tenant, issuer string) string { return tenant + " " + issuer }

// validateIssuer checks the shape of a trust. The issuer's URL and its
// discovery document are checked by the caller (package idp), which can
// reach the network.
func validateIssuer(is Issuer) error {
	var errs []error
	if err := authz.ValidateTenant(is.Tenant); err != nil {
		errs = append(errs, err)
	}
	if is.Issuer == "" || len(is.Issuer) > 512 || strings.ContainsAny(is.Issuer, " \t\r\n") {
		errs = append(errs, errors.New("issuer: a URL of at most 512 characters, without spaces"))
	}
	if is.Audience == "" || len(is.Audience) > 512 {
		errs = append(errs, errors.New("audience: 1–512 characters"))
	}
	if !validClaimPath(is.GroupsClaim) {
		errs = append(errs, fmt.Errorf("groups claim %q: a claim name or a dotted path such as realm_access.roles", is.GroupsClaim))
	}
	return errors.Join(errs...)
}

// validClaimPath accepts claim names and dotted paths of them.
func validClaimPath(p string) bool {
	if p == "" || len(p) > 256 {
		return false
	}
	for _, part := range strings.Split(p, ".") {
		if part == "" {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == ':' || c == '/') {
				return false
			}
		}
	}
	return true
}

// AddIssuer records that a tenant trusts an issuer's tokens for an
// audience. ErrExists if the tenant already trusts that issuer.
func (s *Store) AddIssuer(ctx context.Context, is Issuer) (Issuer, error) {
	if err := validateIssuer(is); err != nil {
		return Issuer{}, err
	}
	if _, err := s.Tenant(ctx, is.Tenant); err != nil {
		return Issuer{}, err
	}
	d := issuerDoc{ID: issuerID(is.Tenant, is.Issuer), Tenant: is.Tenant, Issuer: is.Issuer,
		Audience: is.Audience, GroupsClaim: is.GroupsClaim, CreatedAt: ms(s.now())}
	if err := s.insert(ctx, colIssuers, d, "issuer "+is.Issuer+" in tenant "+is.Tenant); err != nil {
		return Issuer{}, err
	}
	if err := s.appendChange(ctx, authz.ChangeIssuer, is.Tenant, is.Issuer); err != nil {
		return Issuer{}, err
	}
	return d.issuer(), nil
}

// RemoveIssuer stops a tenant trusting an issuer.
func (s *Store) RemoveIssuer(ctx context.Context, tenant, issuer string) error {
	res, err := s.db.Collection(colIssuers).DeleteOne(ctx, bson.D{{Key: "_id", Value: issuerID(tenant, issuer)}})
	if err != nil {
		return fmt.Errorf("remove issuer %s: %w", issuer, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("issuer %s in tenant %s: %w", issuer, tenant, ErrNotFound)
	}
	return s.appendChange(ctx, authz.ChangeIssuer, tenant, issuer)
}

// Issuers lists the issuers a tenant trusts.
func (s *Store) Issuers(ctx context.Context, tenant string) ([]Issuer, error) {
	return s.findIssuers(ctx, bson.D{{Key: "tenant", Value: tenant}})
}

// AllIssuers lists every tenant's trusts.
func (s *Store) AllIssuers(ctx context.Context) ([]Issuer, error) {
	return s.findIssuers(ctx, bson.D{})
}

func (s *Store) findIssuers(ctx context.Context, filter bson.D) ([]Issuer, error) {
	var docs []issuerDoc
	if err := s.findAll(ctx, colIssuers, filter, &docs); err != nil {
		return nil, fmt.Errorf("list issuers: %w", err)
	}
	out := make([]Issuer, len(docs))
	for i, d := range docs {
		out[i] = d.issuer()
	}
	return out, nil
}
