package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// keySet is a provider's JSON Web Key Set as go-oidc's KeySet: it verifies
// a token's signature with the key its kid names. Keys are fetched on the
// first token, again when a token names a kid not in the set, and again
// once the set is older than refreshEvery (so that a key the provider
// withdrew stops verifying); fetches happen at most once per refetchEvery
// however many tokens ask. A failed fetch keeps the last good set: its keys
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
	fetched time.Time // when keys were fetched
	tried   time.Time // last fetch attempt
	lastErr error     // its error, if it failed
	sf      singleflight.Group
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
	if k.old() {
		_ = k.refetch(ctx) // on failure the last good keys go on verifying, within staleMax
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

// old reports whether the keys were fetched longer than refreshEvery (or
// staleMax, if shorter) ago.
func (k *keySet) old() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	age := k.now().Sub(k.fetched)
	return !k.fetched.IsZero() && (age >= k.refreshEvery || age >= k.staleMax)
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

// refetch fetches the key set unless one was tried within refetchEvery.
// Concurrent callers share one fetch. It fails when the fetch (this one,
// or the recent one it stands in for) failed; a fetch that does not bring
// the wanted kid is not an error.
func (k *keySet) refetch(ctx context.Context) error {
	k.mu.RLock()
	recent := !k.tried.IsZero() && k.now().Sub(k.tried) < k.refetchEvery
	lastErr := k.lastErr
	k.mu.RUnlock()
	if recent {
		return lastErr
	}
	_, err, _ := k.sf.Do("fetch", func() (any, error) {
		k.mu.Lock()
		if !k.tried.IsZero() && k.now().Sub(k.tried) < k.refetchEvery {
			err := k.lastErr
			k.mu.Unlock()
			return nil, err
		}
		k.tried = k.now()
		k.mu.Unlock()
		// A fetch outlives the request that started it: others wait on it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.client.Timeout)
		defer cancel()
		keys, err := k.fetch(fctx)
		k.mu.Lock()
		defer k.mu.Unlock()
		k.lastErr = err
		if err != nil {
			if len(k.keys) > 0 {
				k.log.WarnContext(ctx, "identity provider keys: fetch failed; the last good keys verify until the bound",
					"jwks_uri", k.url, "fetched", k.fetched, "until", k.fetched.Add(k.staleMax), "err", err)
			}
			return nil, err
		}
		// A set that succeeds replaces the last good one entirely: a key
		// the provider withdrew stops verifying now.
		k.keys, k.fetched = keys, k.now()
		return nil, nil
	})
	return err
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
