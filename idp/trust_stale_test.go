package idp_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/idp"
	"github.com/usher-dev/usher/internal/testidp"
)

// TestLastGoodTrustsThroughAFailingRead: when reading the trusted issuers
// fails (the store is down), the last trusts read keep serving for
// TrustStaleMax past their TTL, then tokens are refused; a change to the
// trusts ends the grace at once; TrustsReadAt tells how old they are
// (docs/security-catalogue.md row 114).
func TestLastGoodTrustsThroughAFailingRead(t *testing.T) {
	w := newWorld(t, "memberOf")
	var failing atomic.Bool
	real := lookup(w.st)
	flaky := idp.LookupFunc(func(ctx context.Context) ([]idp.Trust, error) {
		if failing.Load() {
			return nil, errors.New("store down")
		}
		return real.Trusts(ctx)
	})
	v := idp.New(idp.Config{Lookup: flaky, Leeway: 30 * time.Second, Now: w.clock.Now,
		TrustTTL: time.Minute, TrustStaleMax: 5 * time.Minute})
	token := testidp.Sign(t, w.rsa, w.claims(map[string]any{"exp": w.clock.Now().Add(time.Hour).Unix()}), nil)
	verify := func() error {
		_, err := v.Verify(t.Context(), token, w.idp.URL)
		return err
	}
	if err := verify(); err != nil {
		t.Fatalf("trusts readable: %v", err)
	}
	readAt := v.TrustsReadAt()
	if !readAt.Equal(w.clock.Now()) {
		t.Errorf("TrustsReadAt = %v, want %v", readAt, w.clock.Now())
	}

	failing.Store(true)
	w.clock.Advance(time.Minute + 4*time.Minute) // past the TTL, inside the stale bound
	if err := verify(); err != nil {
		t.Errorf("inside the stale bound with the store down: %v, want the last trusts to serve", err)
	}
	if got := v.TrustsReadAt(); !got.Equal(readAt) {
		t.Errorf("TrustsReadAt moved to %v on a failed read", got)
	}
	w.clock.Advance(time.Minute) // TTL + stale bound passed
	if err := verify(); err == nil {
		t.Error("past the stale bound with the store down: verified, want an error")
	}

	// A change ends the grace at once.
	failing.Store(false)
	if err := verify(); err != nil {
		t.Fatalf("store back: %v", err)
	}
	failing.Store(true)
	v.Apply(authz.Change{Kind: authz.ChangeIssuer, Key: w.idp.URL})
	if err := verify(); err == nil {
		t.Error("after a trust change with the store down: verified with trusts that may predate it")
	}
}
