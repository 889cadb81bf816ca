package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/login"
	"github.com/usher-dev/usher/store"
)

// claimants is how many claims of one thing race: enough that on FerretDB
// an update-based claim lets several win, few enough for two cores under
// -race.
const claimants = 32

func newRefreshToken(t *testing.T, s *store.Store, family string) login.RefreshToken {
	t.Helper()
	tok := login.RefreshToken{Hash: authz.HashAPIKey("rt-" + family + "-" + time.Now().String()), Family: family, Tenant: "acme",
		CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}
	if err := s.CreateRefreshToken(t.Context(), tok); err != nil {
		t.Fatalf("CreateRefreshToken: %v", err)
	}
	tok.CreatedAt, tok.ExpiresAt = ms(tok.CreatedAt), ms(tok.ExpiresAt)
	return tok
}

// Catalogue row 43: refresh tokens are stored and claimed by digest only.
func TestClaimRefreshToken(t *testing.T) {
	s, _ := openStore(t)
	tok := newRefreshToken(t, s, "familyaaaaaaaaaa")
	first := t0.Add(time.Minute)
	got, err := s.ClaimRefreshToken(t.Context(), tok.Hash, first)
	if err != nil {
		t.Fatalf("ClaimRefreshToken: %v", err)
	}
	if diff := cmp.Diff(login.Refresh{Token: tok, ConsumedAt: ms(first), Won: true}, got); diff != "" {
		t.Errorf("first claim (-want +got):\n%s", diff)
	}
	got, err = s.ClaimRefreshToken(t.Context(), tok.Hash, first.Add(time.Hour))
	if err != nil {
		t.Fatalf("second ClaimRefreshToken: %v", err)
	}
	if diff := cmp.Diff(login.Refresh{Token: tok, ConsumedAt: ms(first), Won: false}, got); diff != "" {
		t.Errorf("second claim (-want +got):\n%s", diff)
	}

	if _, err := s.ClaimRefreshToken(t.Context(), authz.HashAPIKey("never stored"), first); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("claim of an unknown token = %v, want one wrapping authz.ErrNotFound", err)
	}
	if err := s.CreateRefreshToken(t.Context(), tok); !errors.Is(err, store.ErrExists) {
		t.Errorf("CreateRefreshToken of a stored hash = %v, want ErrExists", err)
	}
	for name, bad := range map[string]login.RefreshToken{
		"no hash":    {Family: "f", Tenant: "acme", ExpiresAt: t0},
		"no family":  {Hash: authz.HashAPIKey("x"), Tenant: "acme", ExpiresAt: t0},
		"bad tenant": {Hash: authz.HashAPIKey("x"), Family: "f", Tenant: "ACME", ExpiresAt: t0},
		"no expiry":  {Hash: authz.HashAPIKey("x"), Family: "f", Tenant: "acme"},
	} {
		if err := s.CreateRefreshToken(t.Context(), bad); err == nil || errors.Is(err, store.ErrExists) {
			t.Errorf("%s: CreateRefreshToken = %v, want a validation error", name, err)
		}
	}
}

// Catalogue row 41 and SECURITY.md "Store atomicity": of many concurrent
// claims of one refresh token on FerretDB exactly one wins, and every
// loser is told when the winner consumed it.
func TestClaimRefreshTokenRace(t *testing.T) {
	s, _ := openStore(t)
	for round := range 3 {
		tok := newRefreshToken(t, s, "familyaaaaaaaaa"+string(rune('a'+round)))
		results := make([]login.Refresh, claimants)
		errs := make([]error, claimants)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range claimants {
			wg.Go(func() {
				<-start
				// Each claimant's own clock: a loser must report the
				// winner's time, not its own.
				results[i], errs[i] = s.ClaimRefreshToken(t.Context(), tok.Hash, t0.Add(time.Duration(i+1)*time.Second))
			})
		}
		close(start)
		wg.Wait()
		var winners []int
		for i, r := range results {
			if errs[i] != nil {
				t.Fatalf("round %d: claim %d: %v", round, i, errs[i])
			}
			if r.Won {
				winners = append(winners, i)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d claims won (%v), want exactly 1", round, len(winners), winners)
		}
		won := results[winners[0]].ConsumedAt
		for i, r := range results {
			if !r.ConsumedAt.Equal(won) {
				t.Errorf("round %d: claim %d (won %v) says consumed at %v, the winner at %v", round, i, r.Won, r.ConsumedAt, won)
			}
		}
	}
}
