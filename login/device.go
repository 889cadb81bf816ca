package login

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usher-dev/usher/authz"
)

// The device authorization grant (RFC 8628): POST /oauth/device/code
// starts a request, a signed-in person approves or denies it on
// GET/POST /device, and the device polls POST /oauth/token (token.go).

const (
	// DeviceCodeTTL is how long a request can be approved and redeemed.
	DeviceCodeTTL = 10 * time.Minute
	// DeviceInterval is the polling interval a device starts with;
	// slow_down raises it by DeviceSlowDown.
	DeviceInterval = 5 * time.Second
	DeviceSlowDown = 5 * time.Second
	// pollTolerance forgives a poll that arrives this much early
	// (network jitter) before it counts as too fast.
	pollTolerance = 500 * time.Millisecond
)

// Rate limits (RFC 8628 section 5.1, catalogue rows 73 and 84), per
// server process, in memory (limiter).
const (
	wrongCodeLimit   = 10 // wrong user codes per session, and per address,
	wrongCodeWindow  = 15 * time.Minute
	deviceReqLimit   = 60 // device authorization requests per address
	deviceReqWindow  = time.Minute
	limiterMaxKeys   = 10000
	maxDeviceCodeLen = 128
	maxScopeLen      = 256
)

// userCodeAlphabet is 20 consonants without look-alikes of digits or
// each other (no vowels, so no words): 8 of them are about 34.6 bits.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// userCodeLen is the user code's length without the dash.
const userCodeLen = 8

// newUserCode draws a user code uniformly from the alphabet.
func newUserCode() (string, error) {
	var out [userCodeLen]byte
	var b [1]byte
	for i := 0; i < userCodeLen; {
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("user code: %w", err)
		}
		if b[0] >= 240 { // 240 = 12 × 20: keep the draw uniform
			continue
		}
		out[i] = userCodeAlphabet[b[0]%20]
		i++
	}
	return string(out[:]), nil
}

// NormalizeUserCode returns the canonical form of a user code as a person
// typed it: ASCII letters in any case, with or without the dash and
// spaces (catalogue row 80). Anything else, or the wrong length, is not a
// user code.
func NormalizeUserCode(s string) (string, bool) {
	if len(s) > 4*userCodeLen {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		if strings.IndexByte(userCodeAlphabet, c) < 0 {
			return "", false
		}
		b.WriteByte(c)
	}
	if b.Len() != userCodeLen {
		return "", false
	}
	return b.String(), true
}

// FormatUserCode shows a canonical user code as XXXX-XXXX.
func FormatUserCode(c string) string {
	if len(c) != userCodeLen {
		return c
	}
	return c[:4] + "-" + c[4:]
}

// deviceAuthResponse is RFC 8628 section 3.2.
type deviceAuthResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// clientAddr is the address a request came from (the peer's; the login
// app is reached directly or through a proxy that keeps per-client
// connections apart is not assumed).
func clientAddr(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

func rateLimited(msg string) error {
	return oauthErr(http.StatusTooManyRequests, "slow_down", "rate_limited", msg, nil)
}

// deviceAuthorize is POST /oauth/device/code: form client_id, optional
// scope and tenant.
func (a *App) deviceAuthorize(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	now := a.d.Now()
	if !a.deviceReqs.add(clientAddr(r), now) {
		w.Header().Set("Retry-After", fmt.Sprint(int(deviceReqWindow/time.Second)))
		return rateLimited("Too many device requests from this address; wait a minute.")
	}
	req, err := parseTokenRequest(r)
	if err != nil {
		return err
	}
	c, err := a.publicClient(ctx, req)
	if err != nil {
		return err
	}
	if len(req.Scope) > maxScopeLen || strings.ContainsFunc(req.Scope, func(r rune) bool { return r < 0x21 && r != ' ' || r > 0x7e || r == '"' || r == '\\' }) {
		return oauthErr(http.StatusBadRequest, "invalid_scope", "scope_invalid", "The scope is not valid.", nil)
	}
	tenant := req.Tenant
	if tenant != "" {
		if authz.ValidateTenant(tenant) != nil {
			return invalidRequest("The tenant is not valid.", nil)
		}
	}
	switch {
	case c.Tenant != "" && tenant == "":
		tenant = c.Tenant
	case c.Tenant != "" && tenant != c.Tenant:
		return invalidRequest("This client belongs to another tenant.", nil)
	}
	dc, err := randomToken(32)
	if err != nil {
		return err
	}
	d := DeviceCode{
		Hash: authz.HashAPIKey(dc), ClientID: c.ID, Tenant: tenant, Scope: req.Scope,
		RemoteAddr: clientAddr(r), UserAgent: truncate(r.UserAgent(), maxUserAgent), CreatedAt: now, ExpiresAt: now.Add(DeviceCodeTTL),
		Interval: DeviceInterval,
	}
	for try := 0; ; try++ {
		if d.UserCode, err = newUserCode(); err != nil {
			return err
		}
		err = a.d.DeviceCodes.CreateDeviceCode(ctx, d)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrUserCodeTaken) || try == 4 {
			return storeError(fmt.Errorf("store device code: %w", err))
		}
	}
	uri := a.cfg.LoginURL + "/device"
	q := url.Values{"user_code": {FormatUserCode(d.UserCode)}}
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	a.d.Log.InfoContext(ctx, "device authorization started", "request_id", requestID(ctx), "client", c.ID, "tenant", tenant, "addr", d.RemoteAddr)
	writeJSON(w, http.StatusOK, deviceAuthResponse{
		DeviceCode: dc, UserCode: FormatUserCode(d.UserCode), VerificationURI: uri,
		VerificationURIComplete: uri + "?" + q.Encode(),
		ExpiresIn:               int64(DeviceCodeTTL / time.Second), Interval: int64(DeviceInterval / time.Second),
	})
	return nil
}

// maxUserAgent caps the device's user agent kept and shown.
const maxUserAgent = 200

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// deviceCSRF is the approval form's CSRF token: a MAC of the session id
// under a key derived from the session key, so it is bound to the
// session and nobody without the key can make one.
func (a *App) deviceCSRF(sessionID string) string {
	m := hmac.New(sha256.New, a.csrfKey)
	m.Write([]byte("device\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func csrfKey(sessionKey []byte) []byte {
	m := hmac.New(sha256.New, sessionKey)
	m.Write([]byte("usher login csrf v1"))
	return m.Sum(nil)
}

func deviceErr(status int, code, msg string) error {
	return &appError{status: status, code: code, msg: msg}
}

// findUserCode turns what a person typed into a live request they may
// decide: counted against the session's and the address's wrong-code
// limits when it names none.
func (a *App) findUserCode(ctx context.Context, r *http.Request, s authz.Session, typed string) (DeviceCode, Client, error) {
	now := a.d.Now()
	keys := []string{"s\x00" + s.ID, "a\x00" + clientAddr(r)}
	for _, k := range keys {
		if a.wrongCodes.blocked(k, now) {
			return DeviceCode{}, Client{}, deviceErr(http.StatusTooManyRequests, "rate_limited", "Too many wrong codes; wait a while and try again.")
		}
	}
	wrong := func(code, msg string) (DeviceCode, Client, error) {
		for _, k := range keys {
			a.wrongCodes.add(k, now)
		}
		return DeviceCode{}, Client{}, deviceErr(http.StatusBadRequest, code, msg)
	}
	uc, ok := NormalizeUserCode(typed)
	if !ok {
		return wrong("user_code_invalid", "That is not a code usher gives out. Check it and try again.")
	}
	d, err := a.d.DeviceCodes.DeviceCodeByUserCode(ctx, uc)
	if errors.Is(err, authz.ErrNotFound) {
		return wrong("user_code_unknown", "No request has that code. Check it and try again.")
	}
	if err != nil {
		return DeviceCode{}, Client{}, storeError(fmt.Errorf("look up user code: %w", err))
	}
	if !now.Before(d.ExpiresAt) {
		return DeviceCode{}, Client{}, deviceErr(http.StatusBadRequest, "user_code_expired", "This code has expired. Start the sign-in on your device again.")
	}
	if d.Decision != nil {
		return DeviceCode{}, Client{}, deviceErr(http.StatusConflict, "user_code_used", "This code was already used. Start the sign-in on your device again.")
	}
	c, err := a.d.Clients.Client(ctx, d.ClientID)
	if errors.Is(err, authz.ErrNotFound) {
		return DeviceCode{}, Client{}, deviceErr(http.StatusBadRequest, "client_unknown", "The application that asked is no longer registered.")
	}
	if err != nil {
		return DeviceCode{}, Client{}, storeError(fmt.Errorf("look up client: %w", err))
	}
	if d.Tenant != "" && d.Tenant != s.Tenant || c.Tenant != "" && c.Tenant != s.Tenant {
		return DeviceCode{}, Client{}, deviceErr(http.StatusForbidden, "tenant_mismatch", "This request is for another tenant than the one you are signed in to.")
	}
	return d, c, nil
}

// devicePage is GET /device: the code entry form, or with ?user_code=
// the confirmation of what is being approved. A person not signed in
// goes through login and comes back here.
func (a *App) devicePage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	s, err := a.currentSession(ctx, r)
	if err != nil {
		var e *appError
		if errors.As(err, &e) && e.status == http.StatusUnauthorized {
			lq := url.Values{"next": {r.URL.RequestURI()}}
			if t := q.Get("tenant"); t != "" && authz.ValidateTenant(t) == nil {
				lq.Set("tenant", t)
			}
			http.Redirect(w, r, "/login?"+lq.Encode(), http.StatusFound)
			return nil
		}
		return err
	}
	typed := q.Get("user_code")
	if typed == "" {
		a.render(w, r, http.StatusOK, "device", map[string]any{"Email": s.Email, "Tenant": s.Tenant})
		return nil
	}
	d, c, err := a.findUserCode(ctx, r, s, typed)
	var e *appError
	if err != nil && errors.As(err, &e) && e.status < 500 && !wantsJSON(r) {
		// A person: the form again, with what was wrong.
		a.render(w, r, e.status, "device", map[string]any{"Email": s.Email, "Tenant": s.Tenant, "Error": e.msg, "Reason": e.code})
		return nil
	}
	if err != nil {
		return err
	}
	seats := s.Seats
	a.render(w, r, http.StatusOK, "device_confirm", map[string]any{
		"Email": s.Email, "Tenant": s.Tenant, "Seats": seats, "UserCode": FormatUserCode(d.UserCode),
		"Client": c.Name, "ClientID": c.ID, "Addr": d.RemoteAddr, "UserAgent": d.UserAgent,
		"Ago": ago(a.d.Now().Sub(d.CreatedAt)), "Scope": d.Scope, "CSRF": a.deviceCSRF(s.ID),
	})
	return nil
}

// ago says how long ago something was, for people.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "less than a minute ago"
	case d < 2*time.Minute:
		return "1 minute ago"
	}
	return fmt.Sprintf("%d minutes ago", int(d/time.Minute))
}

// deviceDecide is POST /device: approve or deny, with the session's CSRF
// token, from this site. The first decision of a code wins.
func (a *App) deviceDecide(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := a.checkSameSite(r); err != nil {
		return err
	}
	s, err := a.currentSession(ctx, r)
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return &appError{status: http.StatusBadRequest, code: "request_invalid", msg: "The form could not be read.", err: err}
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(a.deviceCSRF(s.ID))) {
		return &appError{status: http.StatusForbidden, code: "csrf", msg: "This form expired or came from elsewhere; open the device page again."}
	}
	var approve bool
	switch r.PostForm.Get("action") {
	case "approve":
		approve = true
	case "deny":
	default:
		return &appError{status: http.StatusBadRequest, code: "request_invalid", msg: "Choose Approve or Deny."}
	}
	d, c, err := a.findUserCode(ctx, r, s, r.PostForm.Get("user_code"))
	if err != nil {
		return err
	}
	won, err := a.d.DeviceCodes.DecideDeviceCode(ctx, d.Hash, DeviceDecision{
		Approved: approve, SessionID: s.ID, Tenant: s.Tenant, Subject: s.Subject, Email: s.Email, At: a.d.Now(),
	})
	if err != nil {
		return storeError(fmt.Errorf("decide device code: %w", err))
	}
	if !won {
		return deviceErr(http.StatusConflict, "user_code_used", "This code was already used. Start the sign-in on your device again.")
	}
	a.d.Log.InfoContext(ctx, "device authorization decided", "request_id", requestID(ctx), "tenant", s.Tenant,
		"session", s.ID, "client", c.ID, "approved", approve, "device_addr", d.RemoteAddr)
	a.render(w, r, http.StatusOK, "device_done", map[string]any{"Approved": approve, "Client": c.Name})
	return nil
}
