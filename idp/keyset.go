package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/usher-dev/usher/authz"
)

// fetchTimeout bounds a fetch when the client has no timeout of its own.
const fetchTimeout = 5 * time.Second

// keySet is a provider's JSON Web Key Set as go-oidc's KeySet: it verifies
// a token's signature with the key its kid names. Keys are fetched on the
// first token, again when a token names a kid not in the set, and again
// once the set is older than refreshEvery (so that a key the provider
// withdrew stops verifying); fetches happen at most once per refetchEvery
// however many tokens ask, and one at a time: whoever needs the keys while
// a fetch is in flight waits for that fetch, never starts another. A
// refresh of keys that still verify does not hold up the Check that starts
// it: the Check waits for it for at most half the time it has left, then
// verifies with the keys it has while the fetch goes on (a provider that
// stalls costs one Check a wait, not every Check an error). A waiter that
// has no usable key waits for the fetch until its context ends, and at
// the latest until its Check's deadline (authz.AnswerBy), so that a
// stalled provider does not hold cache loads long after the Checks that
// wanted them have answered. A failed fetch keeps the last good set: its keys
// go on verifying while the provider is down, for staleMax after the last
// fetch that succeeded. Past that bound the set is unusable and tokens are
// refused as the provider's keys being unavailable, until a fetch succeeds.
// Keys come only from the jwks_uri of discovery: a token's jku, x5u, jwk or
// x5c headers are never followed.
type keySet struct {
	url          string
	client       *http.Client
	algs         []jose.SignatureAlgorithm
	now          func() time.Time
	refetchEvery time.Duration
	refreshEvery time.Duration
	staleMax     time.Duration
	log          *slog.Logger

	mu      sync.RWMutex
	keys    []jose.JSONWebKey
	fetched time.Time     // when keys were fetched
	tried   time.Time     // last fetch attempt
	lastErr error         // its error, if it failed
	running chan struct{} // the fetch in flight, closed when it ends; nil if none

	// offset is this host's clock minus the provider's, from the Date
	// header of the last key set answer that had one (nanoseconds);
	// offsetKnown says one did.
	offset      atomic.Int64
	offsetKnown atomic.Bool
}

// noteClock records the offset of this host's clock from the provider's
// Date header (one-second resolution): the skew that jwt.leeway must
// absorb for its tokens (docs/security-catalogue.md row 25).
func (k *keySet) noteClock(date string) {
	t, err := http.ParseTime(date)
	if err != nil {
		return
	}
	k.offset.Store(int64(k.now().Sub(t)))
	k.offsetKnown.Store(true)
}

// outcome carries what the key set found back to the caller: go-oidc
// reports its errors as text.
type outcome struct {
	unavailable error // the keys could not be fetched and none matched, or are past staleMax
	verified    bool
	keysUntil   time.Time // when the keys that verified stop verifying unless fetched again
}

type outcomeKey struct{}

func withOutcome(ctx context.Context) (context.Context, *outcome) {
	o := &outcome{}
	return context.WithValue(ctx, outcomeKey{}, o), o
}

var (
	errUnknownKid = errors.New("no key of the provider has this kid")
	errSignature  = errors.New("signature does not verify")
)

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	o, _ := ctx.Value(outcomeKey{}).(*outcome)
	if o == nil {
		o = &outcome{}
	}
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	h := jws.Signatures[0].Header
	if usable, old := k.age(); old && usable {
		k.refresh(ctx) // the last good keys go on verifying while it runs or if it fails
	} else if old {
		_ = k.refetch(ctx) // past staleMax: only a fetch that succeeds makes the keys verify again
	}
	candidates, until := k.match(h.KeyID, h.Algorithm)
	if len(candidates) == 0 {
		if err := k.refetch(ctx); err != nil {
			o.unavailable = err
			return nil, err
		}
		candidates, until = k.match(h.KeyID, h.Algorithm)
		if len(candidates) == 0 {
			return nil, errUnknownKid
		}
	}
	if !k.now().Before(until) {
		o.unavailable = k.staleError(until)
		return nil, o.unavailable
	}
	for _, key := range candidates {
		if payload, err := jws.Verify(key.Key); err == nil {
			o.verified, o.keysUntil = true, until
			return payload, nil
		}
	}
	return nil, errSignature
}

// age reports whether the keys were fetched longer than refreshEvery (or
// staleMax, if shorter) ago, and whether they still verify (are within
// staleMax of their fetch).
func (k *keySet) age() (usable, old bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	age := k.now().Sub(k.fetched)
	return age < k.staleMax, !k.fetched.IsZero() && (age >= k.refreshEvery || age >= k.staleMax)
}

// staleError says that the last good keys are past staleMax, and why no
// fetch has replaced them.
func (k *keySet) staleError(until time.Time) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	cause := k.lastErr
	if cause == nil {
		cause = errors.New("no fetch since")
	}
	return fmt.Errorf("keys from %s last fetched at %s; they stopped verifying at %s (%s later) and fetching them fails: %w",
		k.url, k.fetched.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339), k.staleMax, cause)
}

// match returns the known keys a token with kid and alg may be verified
// with (signing keys of an asymmetric type whose kid, when the token names
// one, and alg, when the key names one, agree) and when they stop
// verifying unless fetched again.
func (k *keySet) match(kid, alg string) ([]jose.JSONWebKey, time.Time) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	until := k.fetched.Add(k.staleMax)
	var out []jose.JSONWebKey
	for _, key := range k.keys {
		if kid != "" && key.KeyID != kid {
			continue
		}
		if key.Algorithm != "" && key.Algorithm != alg {
			continue
		}
		out = append(out, key)
	}
	return out, until
}

// refetch fetches the key set unless one was tried within refetchEvery,
// or joins the fetch in flight, and waits for it until ctx ends or the
// Check that wants the keys must answer. It fails when the fetch (this
// one, or the recent one it stands in for) failed or is still running; a
// fetch that does not bring the wanted kid is not an error.
func (k *keySet) refetch(ctx context.Context) error {
	done, _ := k.start(ctx)
	if done != nil {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if by, ok := authz.AnswerBy(ctx); ok {
			wctx, cancel = context.WithDeadline(ctx, by)
		}
		defer cancel()
		select {
		case <-done:
		case <-wctx.Done():
			return fmt.Errorf("keys from %s: still fetching: %w", k.url, wctx.Err())
		}
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.lastErr
}

// refresh fetches keys that still verify again, unless a fetch is in
// flight or was tried within refetchEvery. The caller that starts the
// fetch waits for it, so that a key the provider withdrew stops verifying
// at once when the provider answers promptly; but for at most half the
// time its Check has left (authz.AnswerBy), and the caller then goes on
// with the keys it has. Others go on with those keys at once.
func (k *keySet) refresh(ctx context.Context) {
	done, started := k.start(ctx)
	if !started {
		return
	}
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if by, ok := authz.AnswerBy(ctx); ok {
		wctx, cancel = context.WithTimeout(ctx, time.Until(by)/2)
	}
	defer cancel()
	select {
	case <-done:
	case <-wctx.Done():
	}
}

// start begins a fetch unless one is in flight or one was tried within
// refetchEvery. It returns the channel that closes when the fetch in
// flight ends (nil if none runs), and whether this call started it. The
// fetch outlives the request that started it: others wait on it. It runs
// under a deadline of its own, the client's timeout.
func (k *keySet) start(ctx context.Context) (done <-chan struct{}, started bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.running != nil {
		return k.running, false
	}
	if !k.tried.IsZero() && k.now().Sub(k.tried) < k.refetchEvery {
		return nil, false
	}
	k.tried = k.now()
	ch := make(chan struct{})
	k.running = ch
	go k.run(context.WithoutCancel(ctx), ch)
	return ch, true
}

// run fetches the keys, records the outcome, and closes done.
func (k *keySet) run(ctx context.Context, done chan struct{}) {
	timeout := k.client.Timeout
	if timeout <= 0 {
		timeout = fetchTimeout
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	keys, err := k.fetch(fctx)
	k.mu.Lock()
	defer close(done)
	defer k.mu.Unlock()
	k.running = nil
	k.lastErr = err
	if err != nil {
		if len(k.keys) > 0 {
			k.log.WarnContext(ctx, "identity provider keys: fetch failed; the last good keys verify until the bound",
				"jwks_uri", k.url, "fetched", k.fetched, "until", k.fetched.Add(k.staleMax), "err", err)
		}
		return
	}
	// A set that succeeds replaces the last good one entirely: a key
	// the provider withdrew stops verifying now.
	k.keys, k.fetched = keys, k.now()
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch keys from %s: %w", k.url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch keys from %s: %s", k.url, resp.Status)
	}
	k.noteClock(resp.Header.Get("Date"))
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("keys from %s: %w", k.url, err)
	}
	var keys []jose.JSONWebKey
	for _, key := range set.Keys {
		// Only public signing keys: a symmetric ("oct") key from a key
		// set would let anyone who reads it sign.
		if !key.Valid() || !key.IsPublic() || (key.Use != "" && key.Use != "sig") {
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("keys from %s: no public signing key", k.url)
	}
	return keys, nil
}
