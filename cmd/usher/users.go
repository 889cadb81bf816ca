package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
	"github.com/usher-dev/usher/store"
)

func newUserCmd(e *env) *cobra.Command {
	var sf storeFlags
	var tenant string
	cmd := &cobra.Command{Use: "user", Short: "list people who logged in, invite people, remove them"}
	sf.register(cmd.PersistentFlags(), e)
	cmd.PersistentFlags().StringVar(&tenant, "tenant", "", "the tenant (required)")

	list := listCmd(e, &sf, &tenant, "list the people who logged in to a tenant",
		"EMAIL\tNAME\tGROUPS\tFIRST LOGIN\tLAST LOGIN\tISSUER\tSUBJECT",
		(*store.Store).ListUsers, func(u login.User) []any {
			return []any{u.Email, orDash(u.Name), orDash(strings.Join(u.Groups, ",")), tsFormat(u.FirstLogin), tsFormat(u.LastLogin), u.Issuer, u.Subject}
		}, nil)

	var seats []string
	invite := &cobra.Command{
		Use:   "invite --tenant T EMAIL [--seat S]...",
		Short: "let a person log in (when allow_all_users is off) and give them seats",
		Long: `invite lets the person with this verified email log in to the tenant even
when allow_all_users is off and their IdP groups match no seat. --seat
gives them seats (they must exist); without --seat they get only the seats
their groups map to. Inviting again replaces the invitation.`,
		Args: args("EMAIL"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireTenant(tenant); err != nil {
				return err
			}
			email := strings.ToLower(strings.TrimSpace(a[0]))
			if _, err := login.ParseEmail(email); err != nil {
				return usagef("%q is not an email address usher accepts: %v", a[0], err)
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				if _, err := s.Tenant(ctx, tenant); err != nil {
					return err
				}
				for _, name := range seats {
					if _, err := s.Seat(ctx, tenant, name); err != nil {
						return fmt.Errorf("--seat %s: %w", name, err)
					}
				}
				if err := s.InviteUser(ctx, login.Invitation{Tenant: tenant, Email: email, Seats: seats, CreatedAt: s.Now()}); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "invited %s to tenant %s", email, tenant)
				if len(seats) > 0 {
					fmt.Fprintf(e.stdout, " with seats %s", strings.Join(seats, ","))
				}
				fmt.Fprintln(e.stdout)
				return nil
			})
		},
	}
	invite.Flags().StringArrayVar(&seats, "seat", nil, "a seat the person gets; repeat for more")

	remove := &cobra.Command{
		Use:   "remove --tenant T EMAIL",
		Short: "remove a person's invitation and records, and revoke all their sessions on every server",
		Args:  args("EMAIL"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireTenant(tenant); err != nil {
				return err
			}
			email := strings.ToLower(strings.TrimSpace(a[0]))
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				n, err := s.RevokeUserSessions(ctx, tenant, email)
				if err != nil {
					return err
				}
				if err := s.RemoveUser(ctx, tenant, email); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "removed %s from tenant %s; revoked %d session(s)\n", email, tenant, n)
				return nil
			})
		},
	}
	cmd.AddCommand(list, invite, remove)
	return cmd
}

func newSessionCmd(e *env) *cobra.Command {
	var sf storeFlags
	var tenant, user string
	cmd := &cobra.Command{Use: "session", Short: "list and revoke login sessions"}
	sf.register(cmd.PersistentFlags(), e)
	cmd.PersistentFlags().StringVar(&tenant, "tenant", "", "the tenant (required)")

	var out outputFlag
	list := &cobra.Command{
		Use:   "list --tenant T [--user EMAIL]",
		Short: "list a tenant's sessions (browser sessions and CLI/API logins), newest first",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := firstError(requireTenant(tenant), out.check()); err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				ss, err := s.ListSessions(ctx, tenant, strings.ToLower(user))
				if err != nil {
					return err
				}
				now := s.Now()
				if out.json() {
					type row struct {
						ID, Email, Subject, Kind, State string
						Seats                           []string
						Created, LastSeen, Expires      string
					}
					rows := make([]row, len(ss))
					for i, x := range ss {
						rows[i] = row{x.ID, x.Email, x.Subject, sessionKind(x), sessionState(x, now), x.Seats,
							tsFormat(x.CreatedAt), tsFormat(x.LastSeenAt), tsFormat(x.ExpiresAt)}
					}
					return writeJSON(e.stdout, rows)
				}
				rows := make([][]any, len(ss))
				for i, x := range ss {
					rows[i] = []any{x.ID, x.Email, sessionKind(x), sessionState(x, now), orDash(strings.Join(x.Seats, ",")),
						tsFormat(x.CreatedAt), tsFormat(x.LastSeenAt), tsFormat(x.ExpiresAt)}
				}
				return table(e.stdout, "ID\tEMAIL\tKIND\tSTATE\tSEATS\tCREATED\tLAST SEEN\tEXPIRES", rows)
			})
		},
	}
	out.register(list.Flags())
	list.Flags().StringVar(&user, "user", "", "only this person's sessions (email)")

	var revokeUser string
	revoke := &cobra.Command{
		Use:   "revoke --tenant T (SESSION_ID | --user EMAIL)",
		Short: "revoke a session, or every session of a person: every server denies them within 2s",
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireTenant(tenant); err != nil {
				return err
			}
			if (len(a) == 1) == (revokeUser != "") {
				return usagef("give a session id or --user EMAIL, not both or neither")
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				if revokeUser != "" {
					n, err := s.RevokeUserSessions(ctx, tenant, strings.ToLower(revokeUser))
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "revoked %d session(s) of %s\n", n, revokeUser)
					return nil
				}
				sess, err := s.Session(ctx, a[0])
				if err != nil || sess.Tenant != tenant {
					return fmt.Errorf("session %s in tenant %s: %w", a[0], tenant, authz.ErrNotFound)
				}
				if err := s.RevokeSession(ctx, tenant, a[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "revoked session %s of %s\n", sess.ID, sess.Email)
				return nil
			})
		},
	}
	revoke.Flags().StringVar(&revokeUser, "user", "", "revoke every session of this person (email)")
	cmd.AddCommand(list, revoke)
	return cmd
}

func sessionKind(s authz.Session) string {
	if s.ClientID != "" {
		return "api:" + s.ClientID
	}
	var zero authz.KeyHash
	if s.Hash == zero {
		return "api"
	}
	return "browser"
}

// sessionState is revoked, expired (its absolute expiry passed) or
// active; idle expiry depends on the server's login.idle_ttl and shows in
// LAST SEEN.
func sessionState(s authz.Session, now time.Time) string {
	switch {
	case !s.RevokedAt.IsZero():
		return "revoked"
	case !now.Before(s.ExpiresAt):
		return "expired"
	}
	return "active"
}
