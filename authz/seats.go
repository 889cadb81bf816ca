// Step 4, authorise: the request's space, and whether the caller's seats
// grant the route's permission there. Seats are read through the seat
// cache, so a seat change applies to live keys and tokens at once.

package authz

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// seatKey is the cache key of a tenant's seat.
func seatKey(tenant, seat string) string { return tenant + "/" + seat }

// seatList is seats that apply in every space (an API key's, or an IdP
// token's groups resolved to seats): sorted, each once.
type seatList struct {
	names  []string
	keys   []string // seat cache keys, parallel to names
	joined string   // names joined with ","
}

// newSeatList sorts names in place, drops repeats and derives the cache
// keys and the joined form.
func newSeatList(tenant string, names []string) seatList {
	names = sortSeats(names)
	s := seatList{names: names, keys: make([]string, len(names)), joined: strings.Join(names, ",")}
	for i, n := range names {
		s.keys[i] = seatKey(tenant, n)
	}
	return s
}

func (s seatList) cost() int {
	n := 2 * len(s.joined)
	for _, k := range s.keys {
		n += 16 + len(k)
	}
	return n
}

// sortSeats sorts seat names in place and drops repeats.
func sortSeats(names []string) []string {
	slices.Sort(names)
	return slices.Compact(names)
}

// joinSeats sorts seat names in place and joins them, each once, as
// x-usher-seats lists them.
func joinSeats(names []string) string { return strings.Join(sortSeats(names), ",") }

// seatRef is the seat an usher token names for one space.
type seatRef struct{ name, key string }

// cachedSeat is a seat as the seat cache holds it: its permissions by space.
type cachedSeat struct {
	name   string
	grants map[string][]string // space (or "*") → permissions
}

func (s *cachedSeat) cost() int64 {
	n := 128
	for sp, ps := range s.grants {
		n += 48 + len(sp)
		for _, p := range ps {
			n += 16 + len(p)
		}
	}
	return int64(n)
}

func (a *Authorizer) loadSeat(ctx context.Context, key string) (*cachedSeat, error) {
	tenant, name, _ := strings.Cut(key, "/")
	s, err := a.seatStore.Seat(ctx, tenant, name)
	if err != nil {
		return nil, fmt.Errorf("load seat %s: %w", key, err)
	}
	g := &cachedSeat{name: s.Name, grants: make(map[string][]string, len(s.Grants))}
	for _, gr := range s.Grants {
		g.grants[gr.Space] = append(g.grants[gr.Space], gr.Permissions...)
	}
	return g, nil
}

// inSpace reports whether the seat grants anything in space, and whether it
// grants perm there.
func (s *cachedSeat) inSpace(space, perm string) (grantsAny, allows bool) {
	for _, sp := range [2]string{space, "*"} {
		ps, ok := s.grants[sp]
		if !ok {
			continue
		}
		grantsAny = true
		for _, p := range ps {
			if p == perm || p == "*" {
				return true, true
			}
		}
	}
	return grantsAny, false
}

// spaceFor resolves the space a permission route asks about: from the
// path, fixed by the rule, or from a header.
//
// A route has one space: where the matched rule's path names one
// ({space}) and a context extension makes another source decide (a fixed
// usher.space, or usher.space_header), the two must name the same space,
// or the request is space_mismatch. Otherwise seats in the space the
// extension or header names would authorise a request the upstream serves
// in the path's space (security catalogue row 103).
func spaceFor(pol policy, h map[string]string) (string, Reason) {
	var s string
	switch pol.space.kind {
	case spacePath:
		s = pol.pathSpace
	case spaceFixed:
		s = pol.space.value
	case spaceHeader:
		s = h[pol.space.value]
		if s == "" {
			return "", ReasonSpaceMissing
		}
	}
	if !validName(s) {
		return "", ReasonSpaceInvalid
	}
	if pol.space.kind != spacePath && pol.pathSpace != "" && s != pol.pathSpace {
		return "", ReasonSpaceMismatch
	}
	return s, ""
}

// permitted reports whether any of p's seats grants perm in space, and the
// seats that grant anything there.
func (a *Authorizer) permitted(ctx context.Context, p principal, space, perm string, now time.Time) (string, bool, error) {
	if p.spaceSeats != nil {
		return a.permittedBySpace(ctx, p, space, perm, now)
	}
	var (
		allowed bool
		first   string
		many    []string
	)
	for i, key := range p.seats.keys {
		inSpace, ok, err := a.seatInSpace(ctx, key, space, perm, now)
		if err != nil {
			return "", false, err
		}
		if !inSpace {
			continue
		}
		allowed = allowed || ok
		name := p.seats.names[i]
		switch {
		case first == "":
			first = name
		case many == nil:
			many = []string{first, name}
		default:
			many = append(many, name)
		}
	}
	if many != nil {
		return joinSeats(many), allowed, nil
	}
	return first, allowed, nil
}

// permittedBySpace decides for an usher token: the seat its hash_perm
// names for the space (or for "*"), with that seat's current grants.
func (a *Authorizer) permittedBySpace(ctx context.Context, p principal, space, perm string, now time.Time) (string, bool, error) {
	var allowed bool
	var seatsInSpace []string
	for _, sp := range [2]string{space, "*"} {
		ref, ok := p.spaceSeats[sp]
		if !ok || slices.Contains(seatsInSpace, ref.name) {
			continue
		}
		inSpace, grants, err := a.seatInSpace(ctx, ref.key, space, perm, now)
		if err != nil {
			return "", false, err
		}
		if inSpace {
			seatsInSpace = append(seatsInSpace, ref.name)
			allowed = allowed || grants
		}
	}
	switch len(seatsInSpace) {
	case 0:
		return "", false, nil
	case 1:
		return seatsInSpace[0], allowed, nil
	}
	return joinSeats(seatsInSpace), allowed, nil
}

// seatInSpace reads a seat (cached) and reports whether it grants anything
// in space, and whether it grants perm there. A deleted seat grants
// nothing.
func (a *Authorizer) seatInSpace(ctx context.Context, key, space, perm string, now time.Time) (inSpace, allows bool, err error) {
	e, err := a.seats.get(ctx, key, now)
	if err != nil {
		return false, false, err
	}
	if e.absent {
		return false, false, nil
	}
	inSpace, allows = e.val.inSpace(space, perm)
	return inSpace, allows, nil
}
