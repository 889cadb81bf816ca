package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usher-dev/usher/internal/credentials"
)

func newLogoutCmd(e *env) *cobra.Command {
	var sf serverFlag
	c := &cobra.Command{
		Use:   "logout [--server URL]",
		Short: "revoke the CLI's login at the server and delete it from this machine",
		Args:  args(),
		RunE:  func(c *cobra.Command, _ []string) error { return runLogout(c.Context(), e, &sf) },
	}
	sf.register(c.Flags(), e)
	return c
}

func runLogout(ctx context.Context, e *env, sf *serverFlag) error {
	s, err := openSession(e, sf)
	if err != nil {
		return err
	}
	if err := s.revoke(ctx); err != nil {
		fmt.Fprintf(e.stderr, "warning: %v; deleting the local credentials anyway (the login stays valid at the server until it expires, or until an operator revokes it with usher session revoke)\n", err)
	}
	unlock, err := credentials.Lock(s.path)
	if err != nil {
		return err
	}
	defer unlock()
	f, err := credentials.Load(s.path)
	if err != nil {
		return err
	}
	f.Delete(s.server)
	if err := f.Save(s.path); err != nil {
		return fmt.Errorf("delete the local credentials: %w", err)
	}
	fmt.Fprintf(e.stderr, "Logged out of %s.\n", s.server)
	return nil
}

// revoke revokes the refresh token (and so its family) at the server's
// RFC 7009 endpoint.
func (s *session) revoke(ctx context.Context) error {
	en := s.entry
	if en.RevocationEndpoint == "" {
		return fmt.Errorf("%s offers no revocation endpoint", s.server)
	}
	token, hint := en.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = en.AccessToken, "access_token"
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}, "client_id": {cliClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, en.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.http.Do(req)
	if err != nil {
		return fmt.Errorf("could not revoke the login: %w", s.client.unreachable(err))
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	// RFC 7009 §2.2: 200 also for a token that was already invalid.
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("could not revoke the login: %s answered %s", s.server, resp.Status)
	}
	return nil
}
