package login

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usher-dev/usher/authz"
)

// Personal API keys (issue 10): a signed-in person creates, lists and
// revokes their own keys through /api/keys (JSON, for the CLI and
// scripts) or the /keys page (keys_page.go). A personal key is an
// ordinary sk_ key (only its SHA-256 stored, checked by Check like any
// other) whose owner is "user:" and the person's lower-cased verified
// email, in the person's tenant. Its seats are a subset of those the
// person holds when it is created (all of them when none are asked for),
// and when the person's seats shrink (seen at their next login or group
// re-check on refresh) every key of theirs holding a seat they lost is
// revoked, so that a key never grants more than its owner holds.

// APIKey is a person's API key as the login app stores and lists it;
// Hash is set only to create one.
type APIKey struct {
	ID        string
	Tenant    string
	Name      string
	Owner     string
	Seats     []string
	Hash      authz.KeyHash
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time
	LastUsed  time.Time
}

// ErrKeyNameTaken is what CreatePersonalKey wraps when a usable key of the
// tenant already has the name.
var ErrKeyNameTaken = errors.New("an api key of that name is in use")

// APIKeys stores personal keys: the tenant's ordinary API keys filtered
// by owner. Lookups of a key that is not the owner's answer an error
// wrapping authz.ErrNotFound, as for no key at all.
type APIKeys interface {
	CreatePersonalKey(ctx context.Context, k APIKey) (APIKey, error)
	PersonalKeys(ctx context.Context, tenant, owner string) ([]APIKey, error)
	RevokePersonalKey(ctx context.Context, tenant, owner, id string) error
}

// Limits of personal keys.
const (
	maxKeyLifetime     = 365 * 24 * time.Hour
	defaultKeyLifetime = 90 * 24 * time.Hour
	ownerPrefix        = "user:"
	maxKeyNameLen      = 128 - nameTagLen
	nameTagLen         = 12 // "p" + 10 hex digits + "_"
)

// keyOwner is the owner of a person's keys.
func keyOwner(email string) string { return ownerPrefix + strings.ToLower(email) }

// nameTag prefixes the stored name of a person's key, so that key names,
// unique among a tenant's usable keys, are unique per person: two people
// may both have a key named "laptop", and an operator revoking
// "p…_laptop" by name reaches one person's key only.
func nameTag(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return "p" + hex.EncodeToString(sum[:5]) + "_"
}

// keyView is a key as /api/keys answers it: never a secret.
type keyView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Seats     []string  `json:"seats"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	LastUsed  time.Time `json:"last_used_at,omitzero"`
}

func (a *App) view(k APIKey) keyView {
	seats := k.Seats
	if seats == nil {
		seats = []string{}
	}
	state := "active"
	switch now := a.d.Now(); {
	case !k.RevokedAt.IsZero():
		state = "revoked"
	case !now.Before(k.ExpiresAt):
		state = "expired"
	}
	return keyView{ID: k.ID, Name: strings.TrimPrefix(k.Name, nameTag(k.Owner)), Seats: seats, State: state,
		CreatedAt: k.CreatedAt.UTC(), ExpiresAt: k.ExpiresAt.UTC(), RevokedAt: k.RevokedAt.UTC(), LastUsed: k.LastUsed.UTC()}
}

// createdKey is POST /api/keys's answer: the only time the key is shown.
type createdKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Key       string    `json:"key"`
	Seats     []string  `json:"seats"`
	ExpiresAt time.Time `json:"expires_at"`
}

func keyErr(status int, code, msg string, err error) error {
	return &appError{status: status, code: code, msg: msg, err: err}
}

// parseLifetime reads an expiry: days ("30d") or a Go duration ("720h");
// empty is the default (90 days). It must be positive and at most a year.
func parseLifetime(s string) (time.Duration, error) {
	bad := keyErr(http.StatusBadRequest, "invalid_request", "expires_in: want a duration like 30d or 720h, at most 365d.", nil)
	if s == "" {
		return defaultKeyLifetime, nil
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 || days > 366 {
			return 0, bad
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	}
	if d <= 0 || d > maxKeyLifetime {
		return 0, bad
	}
	return d, nil
}

// createKey makes a key for the session's person: name checked, lifetime
// at most a year, seats a subset of what they hold now (all of them when
// none are asked for). It returns the key as stored and its plaintext.
func (a *App) createKey(ctx context.Context, s authz.Session, name, expiresIn string, seats []string) (APIKey, string, error) {
	if authz.ValidateName("key", name) != nil || len(name) > maxKeyNameLen {
		return APIKey{}, "", keyErr(http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("name: use 1–%d letters, digits, '-' and '_', starting with a letter or digit.", maxKeyNameLen), nil)
	}
	ttl, err := parseLifetime(expiresIn)
	if err != nil {
		return APIKey{}, "", err
	}
	held, err := a.heldSeats(ctx, s)
	if err != nil {
		return APIKey{}, "", err
	}
	if len(seats) == 0 {
		seats = slices.Clone(held)
	}
	for _, seat := range seats {
		if !slices.Contains(held, seat) {
			return APIKey{}, "", keyErr(http.StatusForbidden, "seat_not_held",
				"A key can only carry seats you hold now.", fmt.Errorf("seat %q not held", seat))
		}
	}
	slices.Sort(seats)
	seats = slices.Compact(seats)
	nk, err := authz.GenerateAPIKey(s.Tenant)
	if err != nil {
		return APIKey{}, "", err
	}
	owner := keyOwner(s.Email)
	k, err := a.d.APIKeys.CreatePersonalKey(ctx, APIKey{
		ID: nk.ID, Tenant: s.Tenant, Name: nameTag(owner) + name, Owner: owner, Seats: seats, Hash: nk.Hash,
		ExpiresAt: a.d.Now().Add(ttl),
	})
	switch {
	case errors.Is(err, ErrKeyNameTaken):
		return APIKey{}, "", keyErr(http.StatusConflict, "name_taken", "You have a key of that name; revoke it or choose another name.", err)
	case errors.Is(err, authz.ErrNotFound):
		return APIKey{}, "", keyErr(http.StatusConflict, "seat_not_found", "A seat of the key no longer exists.", err)
	case err != nil:
		return APIKey{}, "", storeError(fmt.Errorf("create personal key: %w", err))
	}
	a.d.Log.InfoContext(ctx, "personal api key created", "request_id", requestID(ctx), "tenant", s.Tenant,
		"session", s.ID, "key", k.ID)
	return k, nk.Key, nil
}

// heldSeats are the seats the person holds now: those of the session in
// hand that the freshest knowledge of them also gives (the person's
// session whose groups were read last, another login's or a refresh's),
// so that an older session cannot mint a key with a seat a newer login
// found gone.
func (a *App) heldSeats(ctx context.Context, s authz.Session) ([]string, error) {
	ss, err := a.d.Sessions.ListSessions(ctx, s.Tenant, s.Email)
	if err != nil {
		return nil, storeError(fmt.Errorf("list sessions: %w", err))
	}
	latest := s
	for _, o := range ss {
		if o.GroupsCheckedAt.After(latest.GroupsCheckedAt) {
			latest = o
		}
	}
	held := make([]string, 0, len(s.Seats))
	for _, seat := range s.Seats {
		if slices.Contains(latest.Seats, seat) {
			held = append(held, seat)
		}
	}
	return held, nil
}

// ownKeys lists the person's keys.
func (a *App) ownKeys(ctx context.Context, s authz.Session) ([]APIKey, error) {
	keys, err := a.d.APIKeys.PersonalKeys(ctx, s.Tenant, keyOwner(s.Email))
	if err != nil {
		return nil, storeError(fmt.Errorf("list personal keys: %w", err))
	}
	return keys, nil
}

// revokeKey revokes one of the person's keys; another person's is 404.
func (a *App) revokeKey(ctx context.Context, s authz.Session, id string) error {
	err := a.d.APIKeys.RevokePersonalKey(ctx, s.Tenant, keyOwner(s.Email), id)
	switch {
	case errors.Is(err, authz.ErrNotFound):
		return keyErr(http.StatusNotFound, "key_not_found", "You have no key with that id.", nil)
	case err != nil:
		return storeError(fmt.Errorf("revoke personal key: %w", err))
	}
	a.d.Log.InfoContext(ctx, "personal api key revoked", "request_id", requestID(ctx), "tenant", s.Tenant,
		"session", s.ID, "key", id)
	return nil
}

// trimKeys applies the seats-shrink rule when login learns what a person
// holds now (a login, a group re-check): every usable key of theirs with
// a seat outside seats is revoked; with all, every usable key is (the
// person no longer passes the login rules).
func (a *App) trimKeys(ctx context.Context, tenant, email string, seats []string, all bool) error {
	if a.d.APIKeys == nil || email == "" {
		return nil
	}
	owner := keyOwner(email)
	keys, err := a.d.APIKeys.PersonalKeys(ctx, tenant, owner)
	if err != nil {
		return storeError(fmt.Errorf("list personal keys: %w", err))
	}
	now := a.d.Now()
	for _, k := range keys {
		if !k.RevokedAt.IsZero() || !now.Before(k.ExpiresAt) {
			continue
		}
		if !all && !slices.ContainsFunc(k.Seats, func(seat string) bool { return !slices.Contains(seats, seat) }) {
			continue
		}
		if err := a.d.APIKeys.RevokePersonalKey(ctx, tenant, owner, k.ID); err != nil && !errors.Is(err, authz.ErrNotFound) {
			return storeError(fmt.Errorf("revoke personal key %s: %w", k.ID, err))
		}
		a.d.Log.InfoContext(ctx, "personal api key revoked: its owner's seats shrank", "request_id", requestID(ctx),
			"tenant", tenant, "key", k.ID)
	}
	return nil
}

// keysCaller authenticates an /api/keys request: an usher access token
// (Authorization: Bearer) when the header is sent, else the session
// cookie. A cookie-authenticated request that changes something must come
// from our own site (checkSameSite). It reports whether the cookie was
// used.
func (a *App) keysCaller(r *http.Request) (authz.Session, bool, error) {
	if h := r.Header.Values("Authorization"); len(h) > 0 {
		scheme, tok, ok := strings.Cut(h[0], " ")
		if len(h) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return authz.Session{}, false, errTokenInvalid
		}
		s, err := a.verifyBearer(r.Context(), strings.TrimSpace(tok))
		return s, false, err
	}
	s, err := a.currentSession(r.Context(), r)
	if err != nil {
		return s, true, err
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := a.checkSameSite(r); err != nil {
			return s, true, err
		}
	}
	return s, true, nil
}

// mountKeys registers the personal keys' API and page.
func (a *App) mountKeys(mux *http.ServeMux) {
	mux.Handle("POST /api/keys", a.handle(a.apiCreateKey))
	mux.Handle("GET /api/keys", a.handle(a.apiListKeys))
	mux.Handle("DELETE /api/keys/{id}", a.handle(a.apiRevokeKey))
	mux.Handle("GET /keys", a.handle(a.keysPage))
	mux.Handle("POST /keys", a.handle(a.keysCreate))
	mux.Handle("POST /keys/{id}/revoke", a.handle(a.keysRevoke))
}

// apiCreateKey is POST /api/keys.
func (a *App) apiCreateKey(w http.ResponseWriter, r *http.Request) error {
	s, _, err := a.keysCaller(r)
	if err != nil {
		return err
	}
	// JSON only: a cross-site form cannot send it without a preflight.
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return keyErr(http.StatusUnsupportedMediaType, "invalid_request", "Send a JSON object (Content-Type: application/json).", nil)
	}
	var req struct {
		Name      string   `json:"name"`
		ExpiresIn string   `json:"expires_in"`
		Seats     []string `json:"seats"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return keyErr(http.StatusBadRequest, "invalid_request", `The body is not {"name", "expires_in", "seats"}.`, err)
	}
	k, plain, err := a.createKey(r.Context(), s, req.Name, req.ExpiresIn, req.Seats)
	if err != nil {
		return err
	}
	v := a.view(k)
	writeJSON(w, http.StatusCreated, createdKey{ID: v.ID, Name: v.Name, Key: plain, Seats: v.Seats, ExpiresAt: v.ExpiresAt})
	return nil
}

// apiListKeys is GET /api/keys.
func (a *App) apiListKeys(w http.ResponseWriter, r *http.Request) error {
	s, _, err := a.keysCaller(r)
	if err != nil {
		return err
	}
	keys, err := a.ownKeys(r.Context(), s)
	if err != nil {
		return err
	}
	out := make([]keyView, 0, len(keys))
	for _, k := range keys {
		out = append(out, a.view(k))
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
	return nil
}

// apiRevokeKey is DELETE /api/keys/{id}.
func (a *App) apiRevokeKey(w http.ResponseWriter, r *http.Request) error {
	s, _, err := a.keysCaller(r)
	if err != nil {
		return err
	}
	if err := a.revokeKey(r.Context(), s, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
