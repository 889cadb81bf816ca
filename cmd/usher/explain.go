package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/envoy"
	"github.com/usher-dev/usher/internal/config"
	srv "github.com/usher-dev/usher/internal/server"
	"github.com/usher-dev/usher/store"
)

func newExplainCmd(e *env) *cobra.Command {
	var sf storeFlags
	var mk masterKeyFlag
	var rulesFile string
	c := &cobra.Command{
		Use:   "explain FILE",
		Short: "show how a CheckRequest (Envoy's JSON; - for stdin) is decided, step by step, without deciding it for real",
		Long: `explain reads a CheckRequest as Envoy's protojson (usher check --dump
writes one) and shows every step of its decision: the normalised path,
the rules passed over and the one that matched, the credential found and
its verdict, the identity, the seats that count in the space, the
permission and the reason. It reads the store (--data-dir, through a
running usher serve's socket or directly; or --mongo-uri) with the
rules file given, records no key use and prints no credential.`,
		Args: args("FILE"),
		RunE: func(c *cobra.Command, a []string) error {
			req, err := readCheckRequest(e.stdin, a[0])
			if err != nil {
				return usageError{err}
			}
			r, err := envoy.RequestFrom(req)
			if err != nil {
				return usageError{fmt.Errorf("%s: %w", a[0], err)}
			}
			rules := authz.DenyAllRules()
			if rulesFile != "" {
				if rules, err = config.LoadRules(rulesFile); err != nil {
					return usageError{err}
				}
			}
			if sf.master, err = loadMasterKey(e.getenv, mk.file); err != nil {
				return err
			}
			return sf.withStore(c.Context(), e, func(ctx context.Context, s *store.Store) error {
				cfg := config.Default()
				log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
				az, _, err := srv.NewAuthorizer(cfg, s, rules, srv.Hooks{}, log)
				if err != nil {
					return err
				}
				defer az.Close()
				explain(e.stdout, &r, rules.Route(&r), az.Check(ctx, &r))
				return nil
			})
		},
	}
	sf.register(c.Flags(), e)
	mk.register(c.Flags(), e)
	c.Flags().StringVar(&rulesFile, "rules", e.getenv("USHER_RULES"), "route rules file (env USHER_RULES); empty denies every route")
	return c
}

func readCheckRequest(stdin io.Reader, name string) (*authv3.CheckRequest, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, 8<<20))
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	var req authv3.CheckRequest
	if err := protojson.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("%s is not a CheckRequest in Envoy's JSON: %w", name, err)
	}
	return &req, nil
}

// explain writes the steps of a decision. It names credentials by their
// header, never by value.
func explain(w io.Writer, r *authz.Request, rt authz.Route, d authz.Decision) {
	line := func(k, format string, args ...any) { fmt.Fprintf(w, "%-11s %s\n", k, fmt.Sprintf(format, args...)) }
	line("request", "%s %s%s", r.Method, r.Host, pathOnly(r.Path))
	if rt.Path != "" {
		line("path", "%s (normalised)", rt.Path)
	}
	for i, t := range rt.Tried {
		k := ""
		if i == 0 {
			k = "passed over"
		}
		name, part, _ := strings.Cut(t, ": ")
		line(k, "%s (%s did not match)", name, part)
	}
	if rt.Rule != "" {
		what := rt.Access.String()
		if rt.Permission != "" {
			what = fmt.Sprintf("permission %s in space %s", rt.Permission, orDash(rt.Space))
		}
		line("rule", "%s: %s", rt.Rule, what)
	}
	line("credential", "%s", credentialFound(r.Headers))
	if id := d.Identity; id.Method != authz.AuthNone {
		line("identity", "%s subject=%s tenant=%s email=%s", id.Method, id.Subject, id.Tenant, orDash(id.Email))
		if id.Issuer != "" {
			line("", "issuer=%s", id.Issuer)
		}
	}
	if d.Permission != "" || d.Seats != "" {
		line("seats", "%s", orDash(d.Seats))
	}
	verdict := "denied"
	if d.Allowed() {
		verdict = "allowed"
	}
	line("decision", "%s %d (%s)", verdict, d.Status, d.Reason)
	if d.Cause != nil {
		line("cause", "%v", d.Cause)
	}
}

// credentialFound names the credentials present, in the order Check reads
// them; the first decides.
func credentialFound(h map[string]string) string {
	var found []string
	if h["x-api-key"] != "" {
		found = append(found, "x-api-key")
	}
	if v := h["authorization"]; v != "" {
		scheme, _, _ := strings.Cut(v, " ")
		found = append(found, "authorization ("+scheme+")")
	}
	if h["cookie"] != "" {
		found = append(found, "cookie")
	}
	if len(found) == 0 {
		return "none"
	}
	return strings.Join(found, ", then ")
}

func pathOnly(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i] + "?…"
	}
	return p
}
