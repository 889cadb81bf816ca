package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

// seatFlags are the flags of seat create and update.
type seatFlags struct {
	tenant string
	name   string
	grants []string
	groups []string
}

func (f *seatFlags) register(c *cobra.Command) {
	fs := c.Flags()
	fs.StringVar(&f.tenant, "tenant", "", "the tenant (required)")
	fs.StringVar(&f.name, "name", "", "the seat's name (required)")
	fs.StringArrayVar(&f.grants, "grant", nil, `permissions in a space: SPACE=PERM[,PERM...]; repeat for more spaces; SPACE "*" is every space, PERM "*" every permission`)
	fs.StringArrayVar(&f.groups, "group", nil, `an IdP group (memberOf value) that maps to this seat, matched exactly; repeat for more`)
}

// parseGrants reads --grant values; the same space twice merges.
func parseGrants(vals []string) ([]authz.Grant, error) {
	var out []authz.Grant
	for _, v := range vals {
		space, perms, ok := strings.Cut(v, "=")
		if !ok || space == "" || perms == "" {
			return nil, usagef("--grant %q: want SPACE=PERM[,PERM...], like proj1=datasets.read,datasets.write", v)
		}
		var ps []string
		for _, p := range strings.Split(perms, ",") {
			p = strings.TrimSpace(p)
			if err := authz.ValidatePermission(p); err != nil {
				return nil, usagef("--grant %q: %v", v, err)
			}
			ps = append(ps, p)
		}
		if i := slices.IndexFunc(out, func(g authz.Grant) bool { return g.Space == space }); i >= 0 {
			out[i].Permissions = append(out[i].Permissions, ps...)
			continue
		}
		out = append(out, authz.Grant{Space: space, Permissions: ps})
	}
	for i := range out {
		slices.Sort(out[i].Permissions)
		out[i].Permissions = slices.Compact(out[i].Permissions)
	}
	return out, nil
}

func newSeatCmd(e *env) *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{Use: "seat", Short: "create, update, list and delete seats: named sets of permissions per space"}
	sf.register(cmd.PersistentFlags(), e)

	var cf seatFlags
	var createOut outputFlag
	create := &cobra.Command{
		Use:   "create --tenant T --name N --grant SPACE=PERM[,PERM] [--group G]",
		Short: "create a seat",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			seat, err := cf.seat(createOut.check())
			if err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				created, err := s.CreateSeat(ctx, seat)
				if err != nil {
					return err
				}
				return printSeat(e, createOut, "created", created)
			})
		},
	}
	cf.register(create)
	createOut.register(create.Flags())

	var uf seatFlags
	var updateOut outputFlag
	update := &cobra.Command{
		Use:   "update --tenant T --name N [--grant SPACE=PERM[,PERM]]... [--group G]...",
		Short: "replace a seat's grants (when --grant is given) and groups (when --group is given)",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			seat, err := uf.seat(updateOut.check())
			if err != nil {
				return err
			}
			var u store.SeatUpdate
			if c.Flags().Changed("grant") {
				u.Grants = &seat.Grants
			}
			if c.Flags().Changed("group") {
				u.Groups = &seat.Groups
			}
			if u.Grants == nil && u.Groups == nil {
				return usagef("nothing to update: give --grant and/or --group")
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				updated, err := s.UpdateSeat(ctx, seat.Tenant, seat.Name, u)
				if err != nil {
					return err
				}
				return printSeat(e, updateOut, "updated", updated)
			})
		},
	}
	uf.register(update)
	updateOut.register(update.Flags())

	var listTenant string
	list := listCmd(e, &sf, &listTenant, "list a tenant's seats", "NAME\tGRANTS\tGROUPS",
		(*store.Store).Seats, func(st authz.Seat) []any { return []any{st.Name, grantsText(st.Grants), groupsText(st.Groups)} },
		func(ss []authz.Seat) any { return seatsJSON(ss) })
	list.Flags().StringVar(&listTenant, "tenant", "", "the tenant (required)")

	var delTenant, delName string
	del := &cobra.Command{
		Use:   "delete --tenant T --name N",
		Short: "delete a seat; keys holding it lose what it granted at once",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireTenant(delTenant); err != nil {
				return err
			}
			if delName == "" {
				return usagef("--name is required")
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				if err := s.DeleteSeat(ctx, delTenant, delName); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "deleted seat %s in tenant %s\n", delName, delTenant)
				return nil
			})
		},
	}
	del.Flags().StringVar(&delTenant, "tenant", "", "the tenant (required)")
	del.Flags().StringVar(&delName, "name", "", "the seat (required)")

	cmd.AddCommand(create, update, list, del)
	return cmd
}

// seat checks the flags and builds the seat they describe.
func (f *seatFlags) seat(outErr error) (authz.Seat, error) {
	if err := firstError(requireTenant(f.tenant), outErr); err != nil {
		return authz.Seat{}, err
	}
	if f.name == "" {
		return authz.Seat{}, usagef("--name is required")
	}
	grants, err := parseGrants(f.grants)
	if err != nil {
		return authz.Seat{}, err
	}
	seat := authz.Seat{Tenant: f.tenant, Name: f.name, Grants: grants, Groups: f.groups}
	if seat.Groups == nil {
		seat.Groups = []string{}
	}
	if err := authz.ValidateSeat(seat); err != nil {
		return authz.Seat{}, usageError{err}
	}
	return seat, nil
}

type seatJSON struct {
	Tenant string              `json:"tenant"`
	Name   string              `json:"name"`
	Grants map[string][]string `json:"grants"`
	Groups []string            `json:"groups"`
}

func toSeatJSON(s authz.Seat) seatJSON {
	j := seatJSON{Tenant: s.Tenant, Name: s.Name, Grants: map[string][]string{}, Groups: s.Groups}
	for _, g := range s.Grants {
		j.Grants[g.Space] = g.Permissions
	}
	if j.Groups == nil {
		j.Groups = []string{}
	}
	return j
}

func seatsJSON(ss []authz.Seat) []seatJSON {
	out := make([]seatJSON, len(ss))
	for i, s := range ss {
		out[i] = toSeatJSON(s)
	}
	return out
}

func printSeat(e *env, o outputFlag, verb string, s authz.Seat) error {
	if o.json() {
		return writeJSON(e.stdout, toSeatJSON(s))
	}
	fmt.Fprintf(e.stdout, "%s seat %s in tenant %s: %s", verb, s.Name, s.Tenant, grantsText(s.Grants))
	if len(s.Groups) > 0 {
		fmt.Fprintf(e.stdout, "; groups %s", groupsText(s.Groups))
	}
	fmt.Fprintln(e.stdout)
	return nil
}

func grantsText(gs []authz.Grant) string {
	if len(gs) == 0 {
		return "-"
	}
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = g.Space + "=" + strings.Join(g.Permissions, ",")
	}
	return strings.Join(parts, " ")
}

func groupsText(gs []string) string {
	if len(gs) == 0 {
		return "-"
	}
	q := make([]string, len(gs))
	for i, g := range gs {
		q[i] = fmt.Sprintf("%q", g)
	}
	return strings.Join(q, " ")
}
