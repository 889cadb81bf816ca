package login

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// The flow cookie carries one login's state from POST /auth/oidc/login to
// the callback: state, nonce, PKCE verifier, the provider (type, tenant,
// issuer) and next. It is MACed with HMAC-SHA256 under a key derived
// from Config.SessionKey, valid for flowTTL, and usable once (the state
// is marked in OnceMarks at the callback, on every server).
//
// Its name is __Host-usher_flow: host-only, Secure, Path=/, so that no
// sibling host under the root domain can plant one (cookie tossing,
// docs/security-catalogue.md row 34). Browsers accept __Host- and Secure
// only over https, so on a plain-http loopback login URL (development,
// tests) the cookie is called usher_flow and is not Secure.

const (
	flowCookieName         = "__Host-usher_flow"
	flowCookieNameInsecure = "usher_flow"
	// flowTTL bounds a login: from the button to the callback.
	flowTTL = 10 * time.Minute
	// maxFlowCookieLen caps the cookie before any decoding.
	maxFlowCookieLen = 4096
	flowVersion      = 1
)

// flow is the content of the flow cookie.
type flow struct {
	V        int    `json:"v"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"p"`
	Type     string `json:"t"`
	Tenant   string `json:"tn"`
	Issuer   string `json:"i"`
	Next     string `json:"nx"`
	Expires  int64  `json:"e"`
}

// Errors of reading the flow cookie; each is a reason code.
var (
	errFlowMissing = errors.New("no flow cookie")
	errFlowInvalid = errors.New("flow cookie does not verify")
	errFlowExpired = errors.New("flow cookie expired")
)

// randomToken is n random bytes, base64url without padding.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// flowKey derives the flow cookie's MAC key from the session key, so that
// the session key is never used as is for two purposes.
func flowKey(sessionKey []byte) []byte {
	m := hmac.New(sha256.New, sessionKey)
	m.Write([]byte("usher login flow cookie v1"))
	return m.Sum(nil)
}

func (a *App) flowCookieName() string {
	if a.cfg.InsecureLoopback() {
		return flowCookieNameInsecure
	}
	return flowCookieName
}

func (a *App) macFlow(payload string) string {
	m := hmac.New(sha256.New, a.flowKey)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// encodeFlow is the cookie value: base64url(JSON) "." base64url(MAC).
func (a *App) encodeFlow(f flow) (string, error) {
	f.V = flowVersion
	b, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + a.macFlow(p), nil
}

// decodeFlow verifies the MAC (in constant time) before reading anything,
// then the version and the expiry.
func (a *App) decodeFlow(v string, now time.Time) (flow, error) {
	if v == "" {
		return flow{}, errFlowMissing
	}
	if len(v) > maxFlowCookieLen {
		return flow{}, errFlowInvalid
	}
	p, mac, ok := strings.Cut(v, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(a.macFlow(p))) {
		return flow{}, errFlowInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return flow{}, errFlowInvalid
	}
	var f flow
	if err := json.Unmarshal(b, &f); err != nil || f.V != flowVersion || f.State == "" {
		return flow{}, errFlowInvalid
	}
	if !now.Before(time.Unix(f.Expires, 0)) {
		return flow{}, errFlowExpired
	}
	return f, nil
}

// setFlowCookie sets the flow cookie: host-only (no Domain), Path=/,
// Secure, HttpOnly, SameSite=Lax (the IdP's redirect back is a top-level
// cross-site GET, which Lax lets through).
func (a *App) setFlowCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // Secure is off only on a plain-http loopback login URL (Config.InsecureLoopback)
		Name:     a.flowCookieName(),
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   !a.cfg.InsecureLoopback(),
		HttpOnly: true,
		SameSite: sameSiteLax,
	})
}

// clearFlowCookie removes the flow cookie.
func (a *App) clearFlowCookie(w http.ResponseWriter) { a.setFlowCookie(w, "", -1) }

// readFlowCookie returns the flow cookie's value; two of them are
// invalid, never "first wins".
func (a *App) readFlowCookie(r *http.Request) (string, error) {
	var vals []string
	for _, c := range r.CookiesNamed(a.flowCookieName()) {
		vals = append(vals, c.Value)
	}
	switch len(vals) {
	case 0:
		return "", errFlowMissing
	case 1:
		return vals[0], nil
	}
	return "", errFlowInvalid
}
