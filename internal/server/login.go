package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/usher-dev/usher/internal/config"
	"github.com/usher-dev/usher/login"
)

// providersTTL is how long a tenant's login providers are used before
// identity_providers is read again.
const providersTTL = time.Minute

// LoginConfig is the login app's configuration from usher's.
func LoginConfig(l config.Login) (login.Config, error) {
	key, err := l.Key()
	if err != nil {
		return login.Config{}, fmt.Errorf("session_key (USHER_SESSION_KEY): %w", err)
	}
	return login.Config{
		LoginURL: l.PublicURL(), RootDomain: l.RootDomain, SessionKey: key,
		AllowedDomains: l.Domains(), AllowAllUsers: l.AllowAllUsers, CookieName: l.CookieName,
		SessionTTL: l.SessionTTL, IdleTTL: l.IdleTTL, RefreshReuseGrace: l.ReuseGrace, GroupsRefresh: l.GroupsRefresh,
		AccessTokenTTL: l.AccessTTL,
		Tenant:         l.Provider.Tenant, ProviderType: l.Provider.Type, ClientID: l.Provider.ClientID,
		ClientSecret: l.Provider.ClientSecret, IssuerURL: l.Provider.IssuerURL, RedirectURL: l.CallbackURL(),
		GroupsClaim: l.Provider.GroupsClaim,
	}, nil
}

// startLogin builds the login app on the store and serves it on
// login.addr, when login is enabled and this server has the login role.
func (s *server) startLogin(ctx context.Context) error {
	if !s.cfg.Login.Enabled || !s.cfg.HasRole(config.RoleLogin) {
		return nil
	}
	lc, err := LoginConfig(s.cfg.Login)
	if err != nil {
		return ConfigError{err}
	}
	p := s.cfg.Login.Provider
	reg := &login.Registry{
		Default: login.ProviderConfig{Tenant: p.Tenant, Type: p.Type, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
			IssuerURL: p.IssuerURL, RedirectURL: s.cfg.Login.CallbackURL(), GroupsClaim: p.GroupsClaim},
		Stored: s.st, AllowedDomains: lc.AllowedDomains, RedirectURL: s.cfg.Login.CallbackURL(),
		TTL: providersTTL, Client: &http.Client{Timeout: 10 * time.Second}, Log: s.log.With("component", "login"),
	}
	app, err := login.New(lc, login.Deps{
		Sessions: s.st, RefreshTokens: s.st, Users: s.st, Seats: s.st, Once: s.st, DeviceCodes: s.st, Clients: s.st, APIKeys: s.st,
		Providers: reg.Source(), SigningKeys: s.st, Tokens: s.cfg.JWT.Authz(), Seal: s.deps.MasterKey,
		CheckEmail: login.CheckEmail, Log: s.log.With("component", "login"),
	})
	if err != nil {
		return ConfigError{err}
	}
	var nlc net.ListenConfig
	lis, err := nlc.Listen(ctx, "tcp", s.cfg.Login.Addr)
	if err != nil {
		return fmt.Errorf("login.addr: %w", err)
	}
	s.loginAddr = lis.Addr()
	s.login = s.httpServer(app.Handler())
	s.serving.Go(func() {
		if err := s.login.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.fail(fmt.Errorf("login server: %w", err))
		}
	})
	s.log.InfoContext(ctx, "usher login app listening", "login_addr", lis.Addr().String(), "login_url", lc.LoginURL,
		"tenant", p.Tenant, "provider", p.Type)
	return nil
}

func (s *server) stopLogin(ctx context.Context) {
	if s.login == nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	_ = s.login.Shutdown(sctx)
}
