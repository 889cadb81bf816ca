package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/usher-dev/usher/authz"
)

type grantDoc struct {
	Space       string   `bson:"space"`
	Permissions []string `bson:"permissions"`
}

// seatDoc keeps grants as an array, not a map keyed by space, so that no
// user-chosen name ever becomes a field name.
type seatDoc struct {
	ID        string     `bson:"_id"` // tenant/name: unique by construction
	Tenant    string     `bson:"tenant"`
	Name      string     `bson:"name"`
	Grants    []grantDoc `bson:"grants"`
	Groups    []string   `bson:"groups"`
	CreatedAt time.Time  `bson:"created_at"`
	UpdatedAt time.Time  `bson:"updated_at"`
}

func (d seatDoc) seat() authz.Seat {
	s := authz.Seat{Tenant: d.Tenant, Name: d.Name, Groups: d.Groups}
	for _, g := range d.Grants {
		s.Grants = append(s.Grants, authz.Grant{Space: g.Space, Permissions: g.Permissions})
	}
	return s
}

func grantDocs(gs []authz.Grant) []grantDoc {
	out := make([]grantDoc, 0, len(gs))
	for _, g := range gs {
		out = append(out, grantDoc{Space: g.Space, Permissions: g.Permissions})
	}
	slices.SortFunc(out, func(a, b grantDoc) int { return cmp.Compare(a.Space, b.Space) })
	return out
}

// CreateSeat creates a seat; its tenant and every space it grants must
// exist. ErrExists if the tenant has a seat of that name.
func (s *Store) CreateSeat(ctx context.Context, seat authz.Seat) (authz.Seat, error) {
	if seat.Groups == nil {
		seat.Groups = []string{}
	}
	if err := s.checkSeat(ctx, seat); err != nil {
		return authz.Seat{}, err
	}
	now := ms(s.now())
	d := seatDoc{ID: seat.Tenant + "/" + seat.Name, Tenant: seat.Tenant, Name: seat.Name,
		Grants: grantDocs(seat.Grants), Groups: seat.Groups, CreatedAt: now, UpdatedAt: now}
	if err := s.insert(ctx, colSeats, d, "seat "+seat.Name+" in tenant "+seat.Tenant); err != nil {
		return authz.Seat{}, err
	}
	if err := s.appendChange(ctx, authz.ChangeSeat, seat.Tenant, seat.Name); err != nil {
		return authz.Seat{}, err
	}
	return d.seat(), nil
}

// SeatUpdate says what UpdateSeat replaces; nil fields stay as they are.
type SeatUpdate struct {
	Grants *[]authz.Grant
	Groups *[]string
}

// UpdateSeat replaces a seat's grants and/or groups.
func (s *Store) UpdateSeat(ctx context.Context, tenant, name string, u SeatUpdate) (authz.Seat, error) {
	cur, err := s.Seat(ctx, tenant, name)
	if err != nil {
		return authz.Seat{}, err
	}
	if u.Grants != nil {
		cur.Grants = *u.Grants
	}
	if u.Groups != nil {
		cur.Groups = *u.Groups
	}
	if cur.Groups == nil {
		cur.Groups = []string{}
	}
	if err := s.checkSeat(ctx, cur); err != nil {
		return authz.Seat{}, err
	}
	res, err := s.db.Collection(colSeats).UpdateOne(ctx, bson.D{{Key: "_id", Value: tenant + "/" + name}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "grants", Value: grantDocs(cur.Grants)},
			{Key: "groups", Value: cur.Groups},
			{Key: "updated_at", Value: ms(s.now())},
		}}})
	if err != nil {
		return authz.Seat{}, fmt.Errorf("update seat %s: %w", name, err)
	}
	if res.MatchedCount == 0 {
		return authz.Seat{}, fmt.Errorf("seat %s in tenant %s: %w", name, tenant, ErrNotFound)
	}
	if err := s.appendChange(ctx, authz.ChangeSeat, tenant, name); err != nil {
		return authz.Seat{}, err
	}
	return s.Seat(ctx, tenant, name)
}

// DeleteSeat deletes a seat. Keys and tokens naming it lose what it granted.
func (s *Store) DeleteSeat(ctx context.Context, tenant, name string) error {
	res, err := s.db.Collection(colSeats).DeleteOne(ctx, bson.D{{Key: "_id", Value: tenant + "/" + name}})
	if err != nil {
		return fmt.Errorf("delete seat %s: %w", name, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("seat %s in tenant %s: %w", name, tenant, ErrNotFound)
	}
	return s.appendChange(ctx, authz.ChangeSeat, tenant, name)
}

// Seat returns a seat or ErrNotFound. It implements authz.SeatLookup.
func (s *Store) Seat(ctx context.Context, tenant, name string) (authz.Seat, error) {
	var d seatDoc
	if err := s.db.Collection(colSeats).FindOne(ctx, bson.D{{Key: "_id", Value: tenant + "/" + name}}).Decode(&d); err != nil {
		return authz.Seat{}, notFound(err, "seat "+name+" in tenant "+tenant)
	}
	return d.seat(), nil
}

// Seats lists a tenant's seats by name.
func (s *Store) Seats(ctx context.Context, tenant string) ([]authz.Seat, error) {
	var docs []seatDoc
	if err := s.findAll(ctx, colSeats, bson.D{{Key: "tenant", Value: tenant}}, &docs); err != nil {
		return nil, fmt.Errorf("list seats: %w", err)
	}
	out := make([]authz.Seat, len(docs))
	for i, d := range docs {
		out[i] = d.seat()
	}
	return out, nil
}

// checkSeat validates seat and checks that its tenant and spaces exist.
func (s *Store) checkSeat(ctx context.Context, seat authz.Seat) error {
	if err := authz.ValidateSeat(seat); err != nil {
		return err
	}
	if _, err := s.Tenant(ctx, seat.Tenant); err != nil {
		return err
	}
	spaces, err := s.Spaces(ctx, seat.Tenant)
	if err != nil {
		return err
	}
	for _, g := range seat.Grants {
		if g.Space == "*" {
			continue
		}
		if !slices.ContainsFunc(spaces, func(sp Space) bool { return sp.Name == g.Space }) {
			return fmt.Errorf("space %s in tenant %s: %w (create it first)", g.Space, seat.Tenant, ErrNotFound)
		}
	}
	return nil
}
