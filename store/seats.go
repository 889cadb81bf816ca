package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/usher-dev/usher/authz"
)

type grantDoc struct {
	Space       string   `bson:"space"`
	Permissions []string `bson:"permissions"`
}

// seatDoc is one version of a seat. Versions are only ever inserted: an
// update inserts version n+1 under the unique _id, and of two admins
// updating one seat at once the loser reads the winner's version and
// applies its own change on top, so neither change is lost (FerretDB would
// let two concurrent updates of one document overwrite each other). A
// deletion is a version marked deleted. Grants are an array, not a map
// keyed by space, so that no user-chosen name becomes a field name.
type seatDoc struct {
	ID        string     `bson:"_id"` // tenant/name/version
	Tenant    string     `bson:"tenant"`
	Name      string     `bson:"name"`
	Version   int64      `bson:"version"`
	Deleted   bool       `bson:"deleted,omitempty"`
	Grants    []grantDoc `bson:"grants"`
	Groups    []string   `bson:"groups"`
	CreatedAt time.Time  `bson:"created_at"`
	UpdatedAt time.Time  `bson:"updated_at"`
}

func seatID(tenant, name string, version int64) string {
	return fmt.Sprintf("%s/%s/%012d", tenant, name, version)
}

// seatVersionsKept is how many past versions of a seat stay in the store.
const seatVersionsKept = 10

// maxSeatAttempts bounds the retries of a seat write that loses to other
// writers of the same seat.
const maxSeatAttempts = 50

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

// latestSeat reads a seat's newest version; nil when it never existed.
func (s *Store) latestSeat(ctx context.Context, tenant, name string) (*seatDoc, error) {
	var d seatDoc
	err := s.db.Collection(colSeats).FindOne(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "name", Value: name}},
		options.FindOne().SetSort(bson.D{{Key: "version", Value: -1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read seat %s: %w", name, err)
	}
	return &d, nil
}

// writeSeat inserts the next version of a seat, made by change from the
// current one (nil if the seat never existed). If another writer inserted
// that version first, it reads the new current version and tries again.
func (s *Store) writeSeat(ctx context.Context, tenant, name string, change func(cur *seatDoc) (seatDoc, error)) (seatDoc, error) {
	for attempt := range maxSeatAttempts {
		if attempt > 0 {
			backoff(ctx, attempt)
		}
		cur, err := s.latestSeat(ctx, tenant, name)
		if err != nil {
			return seatDoc{}, err
		}
		next, err := change(cur)
		if err != nil {
			return seatDoc{}, err
		}
		if s.seatRead != nil {
			s.seatRead()
		}
		next.Tenant, next.Name, next.Version = tenant, name, 1
		if cur != nil {
			next.Version = cur.Version + 1
		}
		next.ID = seatID(tenant, name, next.Version)
		_, err = s.db.Collection(colSeats).InsertOne(ctx, next)
		if mongo.IsDuplicateKeyError(err) {
			continue
		}
		if err != nil {
			return seatDoc{}, fmt.Errorf("write seat %s: %w", name, err)
		}
		if err := s.appendChange(ctx, authz.ChangeSeat, tenant, name); err != nil {
			return seatDoc{}, unrecorded("wrote seat "+name+" in tenant "+tenant, err)
		}
		if next.Version > seatVersionsKept {
			_, _ = s.db.Collection(colSeats).DeleteMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "name", Value: name},
				{Key: "version", Value: bson.D{{Key: "$lte", Value: next.Version - seatVersionsKept}}}})
		}
		return next, nil
	}
	return seatDoc{}, fmt.Errorf("seat %s: too many concurrent writers; try again", name)
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
	d, err := s.writeSeat(ctx, seat.Tenant, seat.Name, func(cur *seatDoc) (seatDoc, error) {
		if cur != nil && !cur.Deleted {
			return seatDoc{}, fmt.Errorf("seat %s in tenant %s: %w", seat.Name, seat.Tenant, ErrExists)
		}
		return seatDoc{Grants: grantDocs(seat.Grants), Groups: seat.Groups, CreatedAt: now, UpdatedAt: now}, nil
	})
	if err != nil {
		return authz.Seat{}, err
	}
	return d.seat(), nil
}

// SeatUpdate says what UpdateSeat replaces; nil fields stay as they are.
type SeatUpdate struct {
	Grants *[]authz.Grant
	Groups *[]string
}

// UpdateSeat replaces a seat's grants and/or groups. A concurrent update of
// the other field is kept, not overwritten.
func (s *Store) UpdateSeat(ctx context.Context, tenant, name string, u SeatUpdate) (authz.Seat, error) {
	now := ms(s.now())
	d, err := s.writeSeat(ctx, tenant, name, func(cur *seatDoc) (seatDoc, error) {
		if cur == nil || cur.Deleted {
			return seatDoc{}, fmt.Errorf("seat %s in tenant %s: %w", name, tenant, ErrNotFound)
		}
		seat := cur.seat()
		if u.Grants != nil {
			seat.Grants = *u.Grants
		}
		if u.Groups != nil {
			seat.Groups = *u.Groups
		}
		if seat.Groups == nil {
			seat.Groups = []string{}
		}
		if err := s.checkSeat(ctx, seat); err != nil {
			return seatDoc{}, err
		}
		return seatDoc{Grants: grantDocs(seat.Grants), Groups: seat.Groups, CreatedAt: cur.CreatedAt, UpdatedAt: now}, nil
	})
	if err != nil {
		return authz.Seat{}, err
	}
	return d.seat(), nil
}

// DeleteSeat deletes a seat. Keys and tokens naming it lose what it granted.
func (s *Store) DeleteSeat(ctx context.Context, tenant, name string) error {
	now := ms(s.now())
	_, err := s.writeSeat(ctx, tenant, name, func(cur *seatDoc) (seatDoc, error) {
		if cur == nil || cur.Deleted {
			return seatDoc{}, fmt.Errorf("seat %s in tenant %s: %w", name, tenant, ErrNotFound)
		}
		return seatDoc{Deleted: true, Grants: []grantDoc{}, Groups: []string{}, CreatedAt: cur.CreatedAt, UpdatedAt: now}, nil
	})
	return err
}

// Seat returns a seat or ErrNotFound. It implements authz.SeatLookup.
func (s *Store) Seat(ctx context.Context, tenant, name string) (authz.Seat, error) {
	d, err := s.latestSeat(ctx, tenant, name)
	if err != nil {
		return authz.Seat{}, err
	}
	if d == nil || d.Deleted {
		return authz.Seat{}, fmt.Errorf("seat %s in tenant %s: %w", name, tenant, ErrNotFound)
	}
	return d.seat(), nil
}

// Seats lists a tenant's seats by name.
func (s *Store) Seats(ctx context.Context, tenant string) ([]authz.Seat, error) {
	cur, err := s.db.Collection(colSeats).Find(ctx, bson.D{{Key: "tenant", Value: tenant}},
		options.Find().SetSort(bson.D{{Key: "name", Value: 1}, {Key: "version", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list seats: %w", err)
	}
	var docs []seatDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list seats: %w", err)
	}
	out := []authz.Seat{}
	for i, d := range docs {
		if i+1 < len(docs) && docs[i+1].Name == d.Name {
			continue // not the latest version
		}
		if !d.Deleted {
			out = append(out, d.seat())
		}
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
