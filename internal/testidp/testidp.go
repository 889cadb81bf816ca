// Package testidp runs an OpenID provider's discovery document and key set
// over real HTTP on loopback, and signs tokens with its keys: for tests
// that need tokens no real IdP would issue (forged, expired, oddly shaped)
// and control over the provider (down, rotating keys, counting fetches).
package testidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Key is a signing key of the provider.
type Key struct {
	ID      string
	Alg     jose.SignatureAlgorithm
	Private crypto.Signer
}

// Public returns the key as published in the key set.
func (k Key) Public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.ID, Algorithm: string(k.Alg), Use: "sig"}
}

// NewRSAKey makes an RS256 key.
func NewRSAKey(t testing.TB, id string) Key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Alg: jose.RS256, Private: k}
}

// NewECKey makes an ES256 key.
func NewECKey(t testing.TB, id string) Key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Alg: jose.ES256, Private: k}
}

// Provider is the discovery and key set endpoints of an issuer.
type Provider struct {
	URL string // the issuer

	srv  *httptest.Server
	mu   sync.Mutex
	keys []Key
	// Algs is what discovery lists as id_token_signing_alg_values_supported.
	Algs []string
	// IssuerOverride, if set, is the issuer discovery claims.
	IssuerOverride string

	down          atomic.Bool
	stalls        sync.Map // path → <-chan struct{}: its requests wait until it is closed
	handlers      sync.Map // path → http.HandlerFunc: endpoints a test adds
	DiscoveryHits atomic.Int64
	KeySetHits    atomic.Int64
	OtherHits     atomic.Int64
}

// Start serves a provider on 127.0.0.1 until the test ends.
func Start(t testing.TB, keys ...Key) *Provider {
	t.Helper()
	p := &Provider{keys: keys, Algs: []string{"RS256", "ES256"}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// SetDown makes every endpoint answer 503 (true) or work again (false).
func (p *Provider) SetDown(down bool) { p.down.Store(down) }

// SetKeys replaces the published keys (a key rotation at the IdP).
func (p *Provider) SetKeys(keys ...Key) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

// HandleFunc serves h at path (the token endpoint "/token", say), which
// discovery does not serve itself. Requests to it count as OtherHits.
func (p *Provider) HandleFunc(path string, h http.HandlerFunc) { p.handlers.Store(path, h) }

// Stall makes requests to path (DiscoveryPath or KeySetPath) wait, after
// they are counted, until release is closed or the client gives up: a
// provider that hangs rather than refuses. Each stalled request sends on
// the channel returned (buffered; sends that do not fit are dropped).
func (p *Provider) Stall(path string, release <-chan struct{}) <-chan struct{} {
	arrived := make(chan struct{}, 64)
	p.stalls.Store(path, stall{release: release, arrived: arrived})
	return arrived
}

type stall struct {
	release <-chan struct{}
	arrived chan struct{}
}

// The paths of the provider's endpoints.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	KeySetPath    = "/jwks"
)

func (p *Provider) stall(r *http.Request) {
	v, ok := p.stalls.Load(r.URL.Path)
	if !ok {
		return
	}
	s := v.(stall)
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	select {
	case <-s.release:
	case <-r.Context().Done():
	}
}

func (p *Provider) serve(w http.ResponseWriter, r *http.Request) {
	if p.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case DiscoveryPath:
		p.DiscoveryHits.Add(1)
		p.stall(r)
		iss := p.URL
		if p.IssuerOverride != "" {
			iss = p.IssuerOverride
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss,
			"jwks_uri":                              p.URL + KeySetPath,
			"authorization_endpoint":                p.URL + "/auth",
			"token_endpoint":                        p.URL + "/token",
			"id_token_signing_alg_values_supported": p.Algs,
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
		})
	case KeySetPath:
		p.KeySetHits.Add(1)
		p.stall(r)
		p.mu.Lock()
		set := jose.JSONWebKeySet{}
		for _, k := range p.keys {
			set.Keys = append(set.Keys, k.Public())
		}
		p.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	default:
		p.OtherHits.Add(1)
		if h, ok := p.handlers.Load(r.URL.Path); ok {
			h.(http.HandlerFunc)(w, r)
			return
		}
		http.NotFound(w, r)
	}
}

// Sign makes a compact JWS of claims with key, with extra header fields.
func Sign(t testing.TB, key Key, claims map[string]any, header map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return SignRaw(t, key, payload, header)
}

// SignRaw makes a compact JWS of payload bytes as given.
func SignRaw(t testing.TB, key Key, payload []byte, header map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if key.ID != "" {
		opts = opts.WithHeader("kid", key.ID)
	}
	for k, v := range header {
		opts = opts.WithHeader(jose.HeaderKey(k), v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: key.Alg, Key: key.Private}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Claims returns the usual claims of an access token from p for aud,
// valid from now for an hour.
func (p *Provider) Claims(sub, aud string, now time.Time) map[string]any {
	return map[string]any{
		"iss": p.URL, "sub": sub, "aud": aud,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}
