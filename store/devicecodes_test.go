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

func newDeviceCode(t *testing.T, s *store.Store, userCode string) login.DeviceCode {
	t.Helper()
	d := login.DeviceCode{
		Hash: authz.HashAPIKey("dc-" + userCode), UserCode: userCode, ClientID: login.BuiltinClientID, Tenant: "acme",
		Scope: "openid", RemoteAddr: "192.0.2.7", UserAgent: "usher-cli/1.0", CreatedAt: ms(t0),
		ExpiresAt: ms(t0.Add(10 * time.Minute)), Interval: 5 * time.Second,
	}
	if err := s.CreateDeviceCode(t.Context(), d); err != nil {
		t.Fatalf("CreateDeviceCode: %v", err)
	}
	return d
}

// The life of a device code: stored, found by either code, polled,
// decided once, redeemed once.
func TestDeviceCodes(t *testing.T) {
	s, _ := openStore(t)
	ctx := t.Context()
	d := newDeviceCode(t, s, "BCDFGHJK")
	for name, lookup := range map[string]func() (login.DeviceCode, error){
		"by hash":      func() (login.DeviceCode, error) { return s.DeviceCode(ctx, d.Hash) },
		"by user code": func() (login.DeviceCode, error) { return s.DeviceCodeByUserCode(ctx, "BCDFGHJK") },
	} {
		got, err := lookup()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(d, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if _, err := s.DeviceCodeByUserCode(ctx, "BCDFGHJL"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("unknown user code: %v, want ErrNotFound", err)
	}
	if _, err := s.DeviceCode(ctx, authz.HashAPIKey("nope")); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("unknown device code: %v, want ErrNotFound", err)
	}
	other := d
	other.Hash = authz.HashAPIKey("another")
	if err := s.CreateDeviceCode(ctx, other); !errors.Is(err, login.ErrUserCodeTaken) {
		t.Errorf("second code with the same user code: %v, want ErrUserCodeTaken", err)
	}
	if err := s.CreateDeviceCode(ctx, login.DeviceCode{Hash: other.Hash}); err == nil {
		t.Error("a code without user code, client and expiry was stored")
	}

	polled := t0.Add(7 * time.Second)
	if err := s.PollDeviceCode(ctx, d.Hash, polled, 10*time.Second); err != nil {
		t.Fatalf("PollDeviceCode: %v", err)
	}
	dec := login.DeviceDecision{Approved: true, SessionID: "sess1", Tenant: "acme", Subject: "alice-sub", Email: "alice@acme.test", At: ms(t0.Add(time.Minute))}
	if won, err := s.DecideDeviceCode(ctx, d.Hash, dec); err != nil || !won {
		t.Fatalf("first decision: %v %v, want won", won, err)
	}
	deny := dec
	deny.Approved, deny.SessionID = false, "sess2"
	if won, err := s.DecideDeviceCode(ctx, d.Hash, deny); err != nil || won {
		t.Fatalf("second decision: %v %v, want lost", won, err)
	}
	if _, err := s.DecideDeviceCode(ctx, authz.HashAPIKey("nope"), dec); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("decision on an unknown code: %v, want ErrNotFound", err)
	}
	redeemed := t0.Add(2 * time.Minute)
	if won, err := s.RedeemDeviceCode(ctx, d.Hash, redeemed); err != nil || !won {
		t.Fatalf("first redemption: %v %v", won, err)
	}
	if won, err := s.RedeemDeviceCode(ctx, d.Hash, redeemed); err != nil || won {
		t.Fatalf("second redemption: %v %v, want lost", won, err)
	}
	got, err := s.DeviceCode(ctx, d.Hash)
	if err != nil {
		t.Fatal(err)
	}
	want := d
	want.LastPollAt, want.Interval, want.Decision, want.RedeemedAt = ms(polled), 10*time.Second, &dec, ms(redeemed)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after poll, decision and redemption (-want +got):\n%s", diff)
	}

	// Pruning frees the user code of an expired request.
	n, err := s.PruneDeviceCodes(ctx, t0.Add(11*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("PruneDeviceCodes = %d, %v; want 1", n, err)
	}
	if err := s.CreateDeviceCode(ctx, other); err != nil {
		t.Fatalf("user code after pruning: %v", err)
	}
	got, err = s.DeviceCode(ctx, other.Hash)
	if err != nil || got.Decision != nil || !got.RedeemedAt.IsZero() {
		t.Errorf("new code after pruning: %+v %v, want no decision or redemption left over", got, err)
	}
}

// SECURITY.md "Store atomicity", catalogue row 78: of many concurrent
// redemptions of one device code on FerretDB exactly one wins, and of
// many concurrent decisions exactly one is recorded.
func TestDeviceCodeRace(t *testing.T) {
	s, _ := openStore(t)
	for round := range 3 {
		d := newDeviceCode(t, s, "BCDFGHJ"+string(rune('K'+round)))
		var redeemed, decided [claimants]bool
		var errs [2 * claimants]error
		race := func(claim func(i int)) {
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range claimants {
				wg.Go(func() {
					<-start
					claim(i)
				})
			}
			close(start)
			wg.Wait()
		}
		race(func(i int) {
			decided[i], errs[i] = s.DecideDeviceCode(t.Context(), d.Hash, login.DeviceDecision{
				Approved: i%2 == 0, SessionID: "s" + string(rune('a'+i)), Tenant: "acme", At: t0})
		})
		race(func(i int) { redeemed[i], errs[claimants+i] = s.RedeemDeviceCode(t.Context(), d.Hash, t0) })
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: call %d: %v", round, i, err)
			}
		}
		count := func(b [claimants]bool) (n, who int) {
			for i, w := range b {
				if w {
					n, who = n+1, i
				}
			}
			return n, who
		}
		if n, _ := count(redeemed); n != 1 {
			t.Errorf("round %d: %d redemptions won, want exactly 1", round, n)
		}
		n, who := count(decided)
		if n != 1 {
			t.Fatalf("round %d: %d decisions won, want exactly 1", round, n)
		}
		got, err := s.DeviceCode(t.Context(), d.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if got.Decision == nil || got.Decision.SessionID != "s"+string(rune('a'+who)) || got.Decision.Approved != (who%2 == 0) {
			t.Errorf("round %d: stored decision %+v, want the winner's (%d)", round, got.Decision, who)
		}
	}
}

func TestClients(t *testing.T) {
	s, _ := openStore(t)
	ctx := t.Context()
	c := login.Client{ID: "acme-deploy", Tenant: "acme", Name: "Deploy tool", Public: true, CreatedAt: ms(t0)}
	if err := s.AddClient(ctx, c); err != nil {
		t.Fatalf("AddClient: %v", err)
	}
	if err := s.AddClient(ctx, c); !errors.Is(err, store.ErrExists) {
		t.Errorf("second AddClient: %v, want ErrExists", err)
	}
	builtin := login.Client{ID: login.BuiltinClientID, Tenant: "acme", Name: "x", Public: true}
	if err := s.AddClient(ctx, builtin); !errors.Is(err, store.ErrExists) {
		t.Errorf("AddClient usher-cli: %v, want ErrExists", err)
	}
	for name, bad := range map[string]login.Client{
		"confidential": {ID: "conf", Tenant: "acme", Name: "c"},
		"bad id":       {ID: "Bad ID", Tenant: "acme", Name: "c", Public: true},
		"no name":      {ID: "noname", Tenant: "acme", Public: true},
		"bad tenant":   {ID: "badtenant", Tenant: "ACME", Name: "c", Public: true},
	} {
		if err := s.AddClient(ctx, bad); err == nil || errors.Is(err, store.ErrExists) {
			t.Errorf("%s: AddClient = %v, want a validation error", name, err)
		}
	}
	got, err := s.Client(ctx, "acme-deploy")
	if err != nil || !cmp.Equal(c, got) {
		t.Errorf("Client = %+v, %v; want %+v", got, err, c)
	}
	if got, err := s.Client(ctx, login.BuiltinClientID); err != nil || got != login.BuiltinClient {
		t.Errorf("built-in client = %+v, %v", got, err)
	}
	if _, err := s.Client(ctx, "nope"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("unknown client: %v, want ErrNotFound", err)
	}
	list, err := s.ListClients(ctx, "other")
	if err != nil || !cmp.Equal([]login.Client{login.BuiltinClient}, list) {
		t.Errorf("ListClients(other) = %+v, %v", list, err)
	}
	list, err = s.ListClients(ctx, "acme")
	if err != nil || !cmp.Equal([]login.Client{login.BuiltinClient, c}, list) {
		t.Errorf("ListClients(acme) = %+v, %v", list, err)
	}
	if err := s.RemoveClient(ctx, "other", "acme-deploy"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("RemoveClient from another tenant: %v, want ErrNotFound", err)
	}
	if err := s.RemoveClient(ctx, "acme", login.BuiltinClientID); err == nil {
		t.Error("the built-in client was removed")
	}
	if err := s.RemoveClient(ctx, "acme", "acme-deploy"); err != nil {
		t.Fatalf("RemoveClient: %v", err)
	}
	if _, err := s.Client(ctx, "acme-deploy"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("removed client: %v, want ErrNotFound", err)
	}
}
