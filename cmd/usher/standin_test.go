package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// standIn is a minimal stand-in for the login app's OAuth endpoints, in
// the shapes of RFC 8414 (metadata), RFC 8628 (device grant), RFC 6749
// §6 (refresh), RFC 7009 (revocation), plus GET /whoami. The real
// endpoints are tested in login/; this one lets the CLI's tests script
// every answer.
type standIn struct {
	srv *httptest.Server

	mu sync.Mutex
	// answers are the device-code poll answers in order: an RFC 8628
	// §3.5 error code, or "approve"; the last one repeats. Empty means
	// authorization_pending until set.
	answers    []string
	expiresIn  int           // of the device code
	tokenTTL   int           // expires_in of access tokens
	dateOffset time.Duration // added to the Date header: the server's clock
	whoamiCode string        // when set, /whoami refuses with this reason
	complete   string        // when set, the verification_uri_complete
	issuer     string        // when set, the metadata's issuer

	tenant   string // asked for at /oauth/device/code
	polls    []time.Time
	redeemed bool
	n        int
	access   map[string]bool // live access tokens
	refresh  map[string]bool // refresh tokens: true while unused and unrevoked
	refreshs int             // refresh grants answered
	revoked  []string        // tokens posted to /oauth/revoke
}

func newStandIn(t *testing.T) *standIn {
	s := &standIn{expiresIn: 60, tokenTTL: 900, access: map[string]bool{}, refresh: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.metadata)
	mux.HandleFunc("POST /oauth/device/code", s.deviceCode)
	mux.HandleFunc("POST /oauth/token", s.token)
	mux.HandleFunc("POST /oauth/revoke", s.revoke)
	mux.HandleFunc("GET /whoami", s.whoami)
	// Unstarted, then started: s.srv is set before any handler runs.
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		off := s.dateOffset
		s.mu.Unlock()
		w.Header().Set("Date", time.Now().Add(off).UTC().Format(http.TimeFormat))
		mux.ServeHTTP(w, r)
	}))
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) URL() string { return s.srv.URL }

func (s *standIn) set(f func(s *standIn)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *standIn) get(f func(s *standIn)) { s.set(f) }

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "stand-in: " + code})
}

func answerJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *standIn) metadata(w http.ResponseWriter, _ *http.Request) {
	u := s.srv.URL
	s.mu.Lock()
	issuer := s.issuer
	s.mu.Unlock()
	if issuer == "" {
		issuer = u
	}
	answerJSON(w, map[string]any{
		"issuer":                        issuer,
		"device_authorization_endpoint": u + "/oauth/device/code",
		"token_endpoint":                u + "/oauth/token",
		"revocation_endpoint":           u + "/oauth/revoke",
		"grant_types_supported":         []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
	})
}

// publicClient checks RFC 6749 §2.3 for a public client: its id, never a
// secret.
func publicClient(w http.ResponseWriter, r *http.Request) bool {
	_, _, basic := r.BasicAuth()
	if r.PostFormValue("client_id") != "usher-cli" || r.PostFormValue("client_secret") != "" || basic {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return false
	}
	return true
}

func (s *standIn) deviceCode(w http.ResponseWriter, r *http.Request) {
	if !publicClient(w, r) {
		return
	}
	s.mu.Lock()
	s.tenant = r.PostFormValue("tenant")
	exp, complete := s.expiresIn, s.complete
	s.mu.Unlock()
	if complete == "" {
		complete = s.srv.URL + "/device?user_code=BCDF-GHJK"
	}
	answerJSON(w, map[string]any{
		"device_code":               "dc-secret",
		"user_code":                 "BCDF-GHJK",
		"verification_uri":          s.srv.URL + "/device",
		"verification_uri_complete": complete,
		"expires_in":                exp,
		"interval":                  1,
	})
}

// issue mints an access and refresh token; s.mu is held.
func (s *standIn) issue(w http.ResponseWriter) {
	s.n++
	at, rt := fmt.Sprintf("at-%d", s.n), fmt.Sprintf("rt-%d", s.n)
	s.access[at], s.refresh[rt] = true, true
	answerJSON(w, map[string]any{"access_token": at, "refresh_token": rt, "token_type": "Bearer", "expires_in": s.tokenTTL})
}

func (s *standIn) token(w http.ResponseWriter, r *http.Request) {
	if !publicClient(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.PostFormValue("grant_type") {
	case "urn:ietf:params:oauth:grant-type:device_code":
		if r.PostFormValue("device_code") != "dc-secret" || s.redeemed {
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		s.polls = append(s.polls, time.Now())
		answer := "authorization_pending"
		if len(s.answers) > 0 {
			answer = s.answers[0]
			if len(s.answers) > 1 {
				s.answers = s.answers[1:]
			}
		}
		if answer != "approve" {
			oauthError(w, http.StatusBadRequest, answer)
			return
		}
		s.redeemed = true
		s.issue(w)
	case "refresh_token":
		rt := r.PostFormValue("refresh_token")
		if !s.refresh[rt] {
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		s.refresh[rt] = false // single use: rotated
		s.refreshs++
		s.issue(w)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

// revoke ends the whole login (RFC 7009 §2.1: revoking a refresh token
// may revoke its access tokens too); it answers 200 even for an unknown
// token (§2.2).
func (s *standIn) revoke(w http.ResponseWriter, r *http.Request) {
	if !publicClient(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = append(s.revoked, r.PostFormValue("token"))
	for k := range s.refresh {
		s.refresh[k] = false
	}
	for k := range s.access {
		s.access[k] = false
	}
	w.WriteHeader(http.StatusOK)
}

func (s *standIn) whoami(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	at, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	live, code := s.access[at], s.whoamiCode
	s.mu.Unlock()
	if code == "" && !live {
		code = "session_revoked"
	}
	if code != "" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token", "error_description": "stand-in refusal", "reason": code})
		return
	}
	answerJSON(w, map[string]any{
		"subject": "alice", "email": "alice@acme.test", "tenant": "acme", "seats": []string{"editors"},
		"expires_at": time.Now().Add(12 * time.Hour).UTC(),
	})
}
