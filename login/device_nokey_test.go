package login_test

import (
	"net/http"
	"testing"
	"time"
)

// TestDeviceCodeKeptWithoutSigningKey: a tenant without an active
// signing key (no `usher key rotate` yet) cannot be given tokens; the
// approved device code is not spent on that failure, and once the key
// exists the same code is redeemed.
func TestDeviceCodeKeptWithoutSigningKey(t *testing.T) {
	h := newHarness(t)
	d := h.startDevice(nil)
	cookie := h.login(alice)
	h.approve(cookie, d.UserCode)
	h.clock.Advance(5 * time.Second)

	key := h.st.key
	h.st.key.Tenant = "no-such-tenant" // the tenant has no signing key
	w := h.poll(d.DeviceCode)
	if _, r := oauthAnswer(t, w); w.Code != http.StatusServiceUnavailable || r != "store_unavailable" {
		t.Errorf("poll without a signing key: %d %s, want 503 store_unavailable", w.Code, r)
	}
	sessions := len(h.st.sessions)

	h.st.key = key
	h.clock.Advance(5 * time.Second)
	if tk := decodeTokens(t, h.poll(d.DeviceCode)); tk.AccessToken == "" || tk.RefreshToken == "" {
		t.Fatalf("poll once the key exists: %+v", tk)
	}
	if len(h.st.sessions) != sessions+1 {
		t.Errorf("sessions: %d after the failed poll, %d after the redemption; want one family, created by the redemption", sessions, len(h.st.sessions))
	}
}
