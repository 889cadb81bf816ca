package authz_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/store"
)

// Security catalogue row 110 (docs/security-catalogue.md): a revocation
// racing an in-flight cache fill. A load reads the record before the
// revocation, is held while the revocation is written and its change
// applied, then fills the cache: what it read must not be kept, or the
// revoked key, narrowed seat or revoked signing key would live on for the
// TTL. The request waiting on the load may get what it read (it began
// before the revocation); every request after it gets the revoked answer.

// readHold holds one store read open after it has read its record, so that
// a test can change the record meanwhile (a fault no real store shows on
// demand).
type readHold struct {
	armed   atomic.Bool
	read    chan struct{} // closed once the held read has its record
	release chan struct{} // closed to let the held read return
}

func newReadHold() *readHold {
	return &readHold{read: make(chan struct{}), release: make(chan struct{})}
}

// hold is called after a read: the first read once armed is held.
func (h *readHold) hold(ctx context.Context) {
	if !h.armed.CompareAndSwap(true, false) {
		return
	}
	close(h.read)
	select {
	case <-h.release:
	case <-ctx.Done():
	}
}

// whileHeld starts check, waits until its read is held, runs change and
// lets the read go on; it returns the held request's decision.
func (h *readHold) whileHeld(t *testing.T, check func() authz.Decision, change func()) authz.Decision {
	t.Helper()
	h.armed.Store(true)
	done := make(chan authz.Decision, 1)
	go func() { done <- check() }()
	select {
	case <-h.read:
	case d := <-done:
		t.Fatalf("the request never read the store: %s", d.Reason)
	case <-time.After(10 * time.Second):
		t.Fatal("the read never started")
	}
	released := false
	defer func() {
		if !released { // change failed the test: let the read go on
			close(h.release)
		}
	}()
	change()
	close(h.release)
	released = true
	return <-done
}

type heldKeyRead struct {
	authz.KeyLookup
	*readHold
}

func (h heldKeyRead) APIKey(ctx context.Context, id string) (authz.APIKey, error) {
	k, err := h.KeyLookup.APIKey(ctx, id)
	h.hold(ctx)
	return k, err
}

type heldSeatRead struct {
	authz.SeatLookup
	*readHold
}

func (h heldSeatRead) Seat(ctx context.Context, tenant, name string) (authz.Seat, error) {
	s, err := h.SeatLookup.Seat(ctx, tenant, name)
	h.hold(ctx)
	return s, err
}

type heldSigningKeyRead struct {
	authz.SigningKeyLookup
	*readHold
}

func (h heldSigningKeyRead) SigningKey(ctx context.Context, kid string) (authz.SigningKey, error) {
	k, err := h.SigningKeyLookup.SigningKey(ctx, kid)
	h.hold(ctx)
	return k, err
}

// raceWorld is a world whose key, seat and signing key reads can be held.
func raceWorld(t *testing.T) (*world, *readHold) {
	t.Helper()
	h := newReadHold()
	w := newWorld(t, func(c *authz.Config) {
		c.Cache.LoadTimeout = time.Minute // the held read must not time out
		c.Keys = heldKeyRead{c.Keys, h}
		c.Seats = heldSeatRead{c.Seats, h}
		c.SigningKeys = heldSigningKeyRead{c.SigningKeys, h}
	})
	return w, h
}

// applyChangesAfter applies the change feed after pos to w's authorizer, as
// Follow would.
func applyChangesAfter(t *testing.T, w *world, pos int64) {
	t.Helper()
	changes, err := w.st.ChangesAfter(t.Context(), pos, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 {
		t.Fatal("the change wrote no change record")
	}
	for _, ch := range changes {
		w.a.Apply(ch)
	}
}

func feedPosition(t *testing.T, w *world) int64 {
	t.Helper()
	pos, err := w.st.LastChange(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// TestCheckKeyRevokedDuringFill (catalogue row 110): an API key revoked
// while the key cache's fill for it is in flight is never cached as live.
func TestCheckKeyRevokedDuringFill(t *testing.T) {
	w, h := raceWorld(t)
	r := get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])
	pos := feedPosition(t, w)
	d := h.whileHeld(t, func() authz.Decision { return w.a.Check(t.Context(), r) }, func() {
		if _, err := w.st.RevokeAPIKey(t.Context(), "acme", "ciacmekeyaaaaaaa"); err != nil {
			t.Fatal(err)
		}
		applyChangesAfter(t, w, pos)
	})
	if d.Reason != authz.ReasonAllowed && d.Reason != authz.ReasonAPIKeyRevoked {
		t.Errorf("the request in flight: %s, want allowed (what it read) or apikey_revoked", d.Reason)
	}
	if d := w.check(t, r); d.Status != 401 || d.Reason != authz.ReasonAPIKeyRevoked {
		t.Errorf("after the revocation: %d %s, want 401 apikey_revoked", d.Status, d.Reason)
	}
}

// TestCheckSeatNarrowedDuringFill (catalogue row 110): a seat whose grants
// are narrowed while the seat cache's fill for it is in flight is never
// cached with the old grants.
// Catalogue row 71 (docs/catalogue-map.md).
func TestCheckSeatNarrowedDuringFill(t *testing.T) {
	w, h := raceWorld(t)
	write := req("POST", "api.example.test", "/spaces/proj1/datasets/a", "x-api-key", w.keys["acme/ci"])
	// The key is cached; /me reads no seat.
	if d := w.check(t, get("api.example.test", "/me", "x-api-key", w.keys["acme/ci"])); d.Reason != authz.ReasonAllowed {
		t.Fatalf("warm-up: %s", d.Reason)
	}
	pos := feedPosition(t, w)
	d := h.whileHeld(t, func() authz.Decision { return w.a.Check(t.Context(), write) }, func() {
		readOnly := []authz.Grant{{Space: "proj1", Permissions: []string{"datasets.read"}}}
		if _, err := w.st.UpdateSeat(t.Context(), "acme", "editors", store.SeatUpdate{Grants: &readOnly}); err != nil {
			t.Fatal(err)
		}
		applyChangesAfter(t, w, pos)
	})
	if d.Reason != authz.ReasonAllowed && d.Reason != authz.ReasonPermissionDenied {
		t.Errorf("the request in flight: %s, want allowed (what it read) or permission_denied", d.Reason)
	}
	if d := w.check(t, write); d.Status != 403 || d.Reason != authz.ReasonPermissionDenied || d.Seats != "editors" {
		t.Errorf("after the seat lost datasets.write: %d %s seats %q, want 403 permission_denied by editors", d.Status, d.Reason, d.Seats)
	}
}

// TestCheckSigningKeyRevokedDuringFill (catalogue row 110): a token whose
// signing key is revoked while the token's verification (and the signing
// key cache's fill) is in flight is never cached as valid, nor is the key.
func TestCheckSigningKeyRevokedDuringFill(t *testing.T) {
	w, h := raceWorld(t)
	key := w.keyring(t)["acme"]
	r := get("api.example.test", "/spaces/proj1/datasets/a", "authorization",
		"Bearer "+mint(t, key, w.clock.Now(), time.Hour, map[string]string{"proj1": "editors"}))
	pos := feedPosition(t, w)
	d := h.whileHeld(t, func() authz.Decision { return w.a.Check(t.Context(), r) }, func() {
		if _, err := w.st.RevokeSigningKey(t.Context(), "acme", key.ID); err != nil {
			t.Fatal(err)
		}
		applyChangesAfter(t, w, pos)
	})
	if d.Reason != authz.ReasonAllowed && d.Reason != authz.ReasonTokenRevoked {
		t.Errorf("the request in flight: %s, want allowed (what it read) or token_revoked", d.Reason)
	}
	if d := w.check(t, r); d.Status != 401 || d.Reason != authz.ReasonTokenRevoked {
		t.Errorf("after the signing key's revocation: %d %s, want 401 token_revoked", d.Status, d.Reason)
	}
}
