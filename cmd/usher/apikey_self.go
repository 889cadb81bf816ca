package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// `usher apikey create|list|revoke --self`: a person manages their own
// keys through the login app's /api/keys with their login's access
// token, never the store. The server and token come from --server and
// --token (or USHER_SERVER and USHER_TOKEN), else from selfLogin.

// selfLogin returns the login URL and a fresh access token of the CLI's
// login (`usher login`'s credentials, refreshed when near expiry, as
// `usher token` does) for server ("" for the last one used).
var selfLogin = func(ctx context.Context, e *env, server string) (string, string, error) {
	s, err := openSession(e, &serverFlag{url: server})
	if err != nil {
		return "", "", err
	}
	tok, err := s.fresh(ctx)
	if err != nil {
		return "", "", err
	}
	return s.server, tok, nil
}

// selfTimeout bounds one call to the login app.
const selfTimeout = 30 * time.Second

// withSelf adds --self, --server and --token to an apikey command: with
// --self, run replaces the command's store-backed RunE.
func withSelf(e *env, c *cobra.Command, run func(ctx context.Context, c *cobra.Command, api *selfAPI, args []string) error) *cobra.Command {
	var self bool
	var server, token string
	fs := c.Flags()
	fs.BoolVar(&self, "self", false, "act on your own keys through the login app, with your usher login (no store access)")
	fs.StringVar(&server, "server", "", "with --self: the login app's URL (default: USHER_SERVER, else your login's server)")
	fs.StringVar(&token, "token", "", "with --self: an usher access token (default: USHER_TOKEN, else your login's)")
	storeRun := c.RunE
	c.RunE = func(c *cobra.Command, args []string) error {
		if !self {
			if server != "" || token != "" {
				return usagef("--server and --token go with --self")
			}
			return storeRun(c, args)
		}
		if t, _ := c.Flags().GetString("tenant"); t != "" {
			return usagef("--self acts in your login's tenant; drop --tenant")
		}
		if server == "" {
			server = e.getenv("USHER_SERVER")
		}
		if token == "" {
			token = e.getenv("USHER_TOKEN")
		}
		if token == "" {
			s, tk, err := selfLogin(c.Context(), e, server)
			if err != nil {
				return err
			}
			server, token = s, tk
		}
		u, err := url.Parse(server)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return usagef("--server %q: want the login app's URL, like https://auth.example.com", server)
		}
		api := &selfAPI{base: strings.TrimSuffix(u.String(), "/"), token: token, client: &http.Client{Timeout: selfTimeout}}
		return run(c.Context(), c, api, args)
	}
	return c
}

// selfAPI calls the login app's /api/keys.
type selfAPI struct {
	base, token string
	client      *http.Client
}

func (a *selfAPI) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", a.base, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", a.base, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			return fmt.Errorf("%s %s%s: %s", method, a.base, path, resp.Status)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("%s (%s): run usher login again", e.Description, e.Error)
		}
		return fmt.Errorf("%s (%s)", e.Description, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("the answer of %s is not what usher sends: %w", a.base, err)
		}
	}
	return nil
}

// selfKey is a key as /api/keys answers it.
type selfKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Key       string    `json:"key,omitempty"`
	Seats     []string  `json:"seats"`
	State     string    `json:"state,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	LastUsed  time.Time `json:"last_used_at,omitzero"`
}

func selfCreate(e *env) func(context.Context, *cobra.Command, *selfAPI, []string) error {
	return func(ctx context.Context, c *cobra.Command, api *selfAPI, _ []string) error {
		fs := c.Flags()
		name, _ := fs.GetString("name")
		expires, _ := fs.GetString("expires")
		seats, _ := fs.GetStringSlice("seat")
		owner, _ := fs.GetString("owner")
		out, _ := fs.GetString("output")
		switch {
		case name == "":
			return usagef("--name is required")
		case owner != "":
			return usagef("--owner does not go with --self: your keys are yours")
		case out != "table" && out != "json":
			return usagef("--output %q: want table or json", out)
		}
		if _, err := parseLifetime("expires", expires); err != nil {
			return err
		}
		var k selfKey
		body := map[string]any{"name": name, "expires_in": expires, "seats": seats}
		if err := api.call(ctx, http.MethodPost, "/api/keys", body, &k); err != nil {
			return err
		}
		if out == "json" {
			return writeJSON(e.stdout, k)
		}
		fmt.Fprintln(e.stdout, k.Key)
		fmt.Fprintf(e.stderr, "created api key %s: name %s, seats %s, expires %s.\nStore the key now: it is shown only once.\n",
			k.ID, k.Name, strings.Join(k.Seats, ","), tsFormat(k.ExpiresAt))
		return nil
	}
}

func selfList(e *env) func(context.Context, *cobra.Command, *selfAPI, []string) error {
	return func(ctx context.Context, c *cobra.Command, api *selfAPI, _ []string) error {
		out, _ := c.Flags().GetString("output")
		if out != "table" && out != "json" {
			return usagef("--output %q: want table or json", out)
		}
		var l struct {
			Keys []selfKey `json:"keys"`
		}
		if err := api.call(ctx, http.MethodGet, "/api/keys", nil, &l); err != nil {
			return err
		}
		if out == "json" {
			return writeJSON(e.stdout, l.Keys)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSEATS\tSTATE\tEXPIRES\tLAST USED")
		for _, k := range l.Keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, orDash(strings.Join(k.Seats, ",")), k.State, tsFormat(k.ExpiresAt), tsFormat(k.LastUsed))
		}
		return tw.Flush()
	}
}

func selfRevoke(e *env) func(context.Context, *cobra.Command, *selfAPI, []string) error {
	return func(ctx context.Context, _ *cobra.Command, api *selfAPI, args []string) error {
		if err := api.call(ctx, http.MethodDelete, "/api/keys/"+url.PathEscape(args[0]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked api key %s\n", args[0])
		return nil
	}
}
