package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// whoamiAnswer is the login app's GET /whoami.
type whoamiAnswer struct {
	Subject   string    `json:"subject"`
	Email     string    `json:"email"`
	Name      string    `json:"name,omitempty"`
	Tenant    string    `json:"tenant"`
	Seats     []string  `json:"seats"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

func (w whoamiAnswer) display() string {
	who := w.Email
	if who == "" {
		who = w.Subject
	}
	if w.Tenant != "" {
		who += " (tenant " + w.Tenant + ")"
	}
	return who
}

// serverRefusal is a 401 or 403 from /whoami: the server no longer
// accepts the login.
type serverRefusal struct {
	status int
	code   string
	desc   string
}

func (r *serverRefusal) Error() string {
	s := fmt.Sprintf("the server refused the login (%d %s)", r.status, r.code)
	if r.desc != "" {
		s += ": " + r.desc
	}
	return s
}

// fetchWhoami asks the server who the access token belongs to.
func fetchWhoami(ctx context.Context, c *authClient, token string) (whoamiAnswer, error) {
	var w whoamiAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+"/whoami", nil)
	if err != nil {
		return w, fmt.Errorf("whoami: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return w, c.unreachable(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return w, c.unreachable(err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
			Reason      string `json:"reason"`
		}
		_ = json.Unmarshal(body, &e)
		code := e.Reason
		if code == "" {
			code = e.Error
		}
		return w, &serverRefusal{status: resp.StatusCode, code: code, desc: e.Description}
	case resp.StatusCode != http.StatusOK:
		return w, fmt.Errorf("whoami: %s answered %s; retry later", c.server, resp.Status)
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return w, fmt.Errorf("whoami: %s answered something that is not JSON: %w", c.server, err)
	}
	return w, nil
}

func newWhoamiCmd(e *env) *cobra.Command {
	var sf serverFlag
	var out outputFlag
	c := &cobra.Command{
		Use:   "whoami [--server URL]",
		Short: "show who the CLI is logged in as, asking the server (so a revoked login shows as such)",
		Args:  args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			s, err := openSession(e, &sf)
			if err != nil {
				return err
			}
			token, err := s.fresh(c.Context())
			if err != nil {
				return err
			}
			w, err := fetchWhoami(c.Context(), s.client, token)
			if err != nil {
				return s.whoamiError(err)
			}
			if out.json() {
				return writeJSON(e.stdout, struct {
					Server string `json:"server"`
					whoamiAnswer
				}{s.server, w})
			}
			seats := strings.Join(w.Seats, ", ")
			if seats == "" {
				seats = "-"
			}
			rows := [][]any{{"server", s.server}, {"subject", w.Subject}, {"email", w.Email}, {"tenant", w.Tenant}, {"seats", seats}}
			if !w.ExpiresAt.IsZero() {
				rows = append(rows, []any{"expires", fmt.Sprintf("%s (in %s)", w.ExpiresAt.Local().Format(time.RFC3339), time.Until(w.ExpiresAt).Round(time.Minute))})
			}
			for _, r := range rows {
				fmt.Fprintf(e.stdout, "%-8s %v\n", r[0], r[1])
			}
			return nil
		},
	}
	sf.register(c.Flags(), e)
	out.register(c.Flags())
	return c
}

// whoamiError explains a refusal: clock skew when the server calls a
// token this machine thinks fresh expired or not yet valid, else a
// revoked login.
func (s *session) whoamiError(err error) error {
	var r *serverRefusal
	if !errors.As(err, &r) {
		return err
	}
	if _, far := s.client.clockSkew(); far && (r.code == "token_expired" || r.code == "token_not_yet_valid") {
		return s.client.skewError(err.Error())
	}
	return exitError{exitLoginNeeded, fmt.Errorf("not logged in at %s: %w; run usher login --server %s again", s.server, err, s.server)}
}

// printToken is `usher token`: a fresh access token alone on stdout.
func printToken(ctx context.Context, e *env, sf *serverFlag) error {
	s, err := openSession(e, sf)
	if err != nil {
		return err
	}
	token, err := s.fresh(ctx)
	if err != nil {
		return err
	}
	if _, far := s.client.clockSkew(); far {
		fmt.Fprintln(e.stderr, "warning: "+s.client.skewError("clock skew").Error())
	}
	fmt.Fprintln(e.stdout, token)
	return nil
}
