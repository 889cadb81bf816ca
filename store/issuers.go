package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	GroupsClaim string `json:"groups_claim"`
	// TokenType, if set, is the JOSE typ the tokens must carry (at+jwt for
	// RFC 9068 access tokens), so that the IdP's ID tokens for the same
	// audience do not pass as access tokens.
	TokenType string `json:"token_type,omitempty"`
	// ClientIDs, if set, are the clients whose tokens are accepted: the
	// token's azp and client_id claims, those present, must be among them,
	// and one must be present.
	ClientIDs []string `json:"client_ids,omitempty"`
	// MatchGroupNames lets a group whose name is a seat's name give that
	// seat. Off, only a seat's --group aliases match: otherwise whoever
	// may create a group named "admins" at the IdP holds the admins seat.
	MatchGroupNames bool      `json:"match_group_names"`
	CreatedAt       time.Time `json:"created_at"`
}

// issuerDoc is the stored trust. Records written before token_type,
// client_ids and match_group_names existed load with their zero values:
// no typ required, any client, aliases only.
type issuerDoc struct {
	ID              string    `bson:"_id"` // tenant and issuer: one trust per pair
	Tenant          string    `bson:"tenant"`
	Issuer          string    `bson:"issuer"`
	Audience        string    `bson:"audience"`
	GroupsClaim     string    `bson:"groups_claim"`
	TokenType       string    `bson:"token_type,omitempty"`
	ClientIDs       []string  `bson:"client_ids,omitempty"`
	MatchGroupNames bool      `bson:"match_group_names,omitempty"`
	CreatedAt       time.Time `bson:"created_at"`
}

func (d issuerDoc) issuer() Issuer {
	return Issuer{Tenant: d.Tenant, Issuer: d.Issuer, Audience: d.Audience, GroupsClaim: d.GroupsClaim,
		TokenType: d.TokenType, ClientIDs: d.ClientIDs, MatchGroupNames: d.MatchGroupNames, CreatedAt: d.CreatedAt.UTC()}
}

// maxClientIDs bounds an issuer's allowed clients.
const maxClientIDs = 64

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
	if is.TokenType != "" && !validTokenType(is.TokenType) {
		errs = append(errs, fmt.Errorf("token type %q: a media type of at most 64 letters, digits and +-. such as at+jwt", is.TokenType))
	}
	if len(is.ClientIDs) > maxClientIDs {
		errs = append(errs, fmt.Errorf("client ids: at most %d", maxClientIDs))
	}
	for i, id := range is.ClientIDs {
		if id == "" || len(id) > 256 || strings.ContainsAny(id, " \t\r\n") {
			errs = append(errs, fmt.Errorf("client id %q: 1–256 characters, without spaces", id))
		} else if slices.Contains(is.ClientIDs[:i], id) {
			errs = append(errs, fmt.Errorf("client id %q: given twice", id))
		}
	}
	return errors.Join(errs...)
}

// validTokenType accepts a JOSE typ value (RFC 7515 §4.1.9): a media type,
// usually without its "application/" prefix.
func validTokenType(t string) bool {
	if len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.' || c == '/') {
			return false
		}
	}
	return true
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
	if len(is.ClientIDs) == 0 {
		is.ClientIDs = nil
	}
	d := issuerDoc{ID: issuerID(is.Tenant, is.Issuer), Tenant: is.Tenant, Issuer: is.Issuer,
		Audience: is.Audience, GroupsClaim: is.GroupsClaim, TokenType: is.TokenType, ClientIDs: is.ClientIDs,
		MatchGroupNames: is.MatchGroupNames, CreatedAt: ms(s.now())}
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
