package login_test

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/usher-dev/usher/login"
)

// TestDeviceFlowOAuth2Client: golang.org/x/oauth2, as the CLI and any
// standard client use it (client authentication auto-detected, so HTTP
// Basic with an empty secret first), runs the grant against the login
// app over HTTP and refreshes the tokens it gets.
func TestDeviceFlowOAuth2Client(t *testing.T) {
	h := newHarness(t)
	srv := httptest.NewServer(h.h)
	defer srv.Close()
	cfg := &oauth2.Config{ClientID: login.BuiltinClientID, Endpoint: oauth2.Endpoint{
		DeviceAuthURL: srv.URL + "/oauth/device/code", TokenURL: srv.URL + "/oauth/token",
	}}
	da, err := cfg.DeviceAuth(t.Context(), oauth2.SetAuthURLParam("tenant", tenant))
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if da.Interval != 5 || da.VerificationURI != loginURL+"/device" || da.VerificationURIComplete == "" {
		t.Errorf("device auth %+v", da)
	}
	h.approve(h.login(alice), da.UserCode)
	da.Interval = 1 // the test's own patience; the server's clock does not move
	tok, err := cfg.DeviceAccessToken(t.Context(), da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	if c := h.accessClaims(t, tok.AccessToken); c.Subject != alice.Sub || c.SessionID == "" {
		t.Errorf("claims %+v", c)
	}
	if _, err := cfg.DeviceAccessToken(t.Context(), da); err == nil {
		t.Error("the device code was redeemed twice")
	} else if re := (*oauth2.RetrieveError)(nil); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("second redemption: %v, want invalid_grant", err)
	}
	tok.Expiry = time.Now().Add(-time.Second) // refresh now
	fresh, err := cfg.TokenSource(t.Context(), tok).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.RefreshToken == tok.RefreshToken {
		t.Error("refresh did not rotate")
	}
	if c := h.accessClaims(t, fresh.AccessToken); c.Subject != alice.Sub {
		t.Errorf("refreshed claims %+v", c)
	}
}
