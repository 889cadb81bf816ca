// Step 3, authenticate, the API key format: generating, formatting and
// parsing "sk_" keys and the digest under which they are stored. Checking a
// presented key against its record is in apikey_auth.go.

package authz

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// An API key is "sk_" followed by the base62 encoding of the bytes
// "{tenant}_{keyid}_{secret}", where secret is 32 random bytes. The tenant
// and key id are readable from the key itself, so a lookup needs no scan;
// the secret makes it unguessable. Only SHA-256 of the whole key string is
// stored.
const (
	apiKeyPrefix    = "sk_"
	apiKeySecretLen = 32
	apiKeyIDLen     = 16
	// maxAPIKeyLen bounds the work done on an untrusted key before any
	// lookup: the longest tenant (63) + id (16) + secret (32) + 2
	// separators is 113 bytes, at most 152 base62 digits.
	maxAPIKeyLen    = len(apiKeyPrefix) + 152
	maxAPIKeyDigits = maxAPIKeyLen - len(apiKeyPrefix)
	maxPayloadLen   = maxTenantLen + 1 + apiKeyIDLen + 1 + apiKeySecretLen
)

// base62 digits in math/big's order, so that big.Int is a reference
// implementation for the decoder.
const base62Digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

var base62Value = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(base62Digits); i++ {
		t[base62Digits[i]] = int8(i)
	}
	return t
}()

var keyIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// KeyHash is the SHA-256 digest of a whole API key string.
type KeyHash [sha256.Size]byte

// HashAPIKey returns the digest under which key is stored.
func HashAPIKey(key string) KeyHash {
	var buf [maxAPIKeyLen]byte
	if len(key) <= len(buf) {
		// Hash from a stack copy: converting the string would allocate.
		n := copy(buf[:], key)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(key))
}

// Equal reports whether h and o are the same digest, in constant time.
func (h KeyHash) Equal(o KeyHash) bool {
	return subtle.ConstantTimeCompare(h[:], o[:]) == 1
}

// String returns the digest in lower-case hex.
func (h KeyHash) String() string { return hex.EncodeToString(h[:]) }

// ParseKeyHash parses a digest written by [KeyHash.String].
func ParseKeyHash(s string) (KeyHash, error) {
	var h KeyHash
	if len(s) != hex.EncodedLen(len(h)) {
		return h, errors.New("key hash must be 64 hex digits")
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("key hash: %w", err)
	}
	return h, nil
}

// NewAPIKey is a freshly generated API key. Key is the plaintext, to be
// shown once and never stored.
type NewAPIKey struct {
	Key  string
	ID   string
	Hash KeyHash
}

// GenerateAPIKey makes a new key for tenant with a random id and secret from
// crypto/rand.
func GenerateAPIKey(tenant string) (NewAPIKey, error) {
	if err := ValidateTenant(tenant); err != nil {
		return NewAPIKey{}, err
	}
	id, err := newID()
	if err != nil {
		return NewAPIKey{}, err
	}
	var secret [apiKeySecretLen]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return NewAPIKey{}, fmt.Errorf("generate key secret: %w", err)
	}
	key := FormatAPIKey(tenant, id, secret[:])
	return NewAPIKey{Key: key, ID: id, Hash: HashAPIKey(key)}, nil
}

// newID returns 16 random characters of lower-case base32 (80 bits): the
// id of an API key or a signing key.
func newID() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	return keyIDEncoding.EncodeToString(b[:]), nil
}

// FormatAPIKey encodes the parts of a key. It is exported for tests and
// fixtures that need a key with known parts; real keys come from
// [GenerateAPIKey].
func FormatAPIKey(tenant, id string, secret []byte) string {
	return formatHandle(apiKeyPrefix, tenant, id, secret)
}

// formatHandle encodes tenant, id and secret after prefix: the shape shared
// by API keys and session handles.
func formatHandle(prefix, tenant, id string, secret []byte) string {
	payload := make([]byte, 0, len(tenant)+len(id)+len(secret)+2)
	payload = append(payload, tenant...)
	payload = append(payload, '_')
	payload = append(payload, id...)
	payload = append(payload, '_')
	payload = append(payload, secret...)
	return prefix + new(big.Int).SetBytes(payload).Text(62)
}

// ParsedAPIKey is the tenant and key id read from a well-formed key.
type ParsedAPIKey struct {
	Tenant string
	ID     string
}

// Errors from [ParseAPIKey]. Their text is safe to show to a client.
var (
	errKeyEmpty    = errors.New("api key is empty")
	errKeyPrefix   = errors.New(`api key must start with "sk_"`)
	errKeyLength   = errors.New("api key has the wrong length")
	errKeyDigit    = errors.New("api key holds a character outside [0-9A-Za-z]")
	errKeyLeading0 = errors.New("api key is not in canonical form")
	errKeyPayload  = errors.New("api key does not decode to tenant, id and secret")
)

// ParseAPIKey checks the format of key and reads its tenant and id. It does
// not say whether the key exists or its secret is right.
//
// Every key string has exactly one accepted spelling: base62 digits only,
// no leading zero digit, so the stored digest of the string identifies the
// key.
func ParseAPIKey(key string) (ParsedAPIKey, error) {
	if key == "" {
		return ParsedAPIKey{}, errKeyEmpty
	}
	if !strings.HasPrefix(key, apiKeyPrefix) {
		return ParsedAPIKey{}, errKeyPrefix
	}
	return parseHandle(key[len(apiKeyPrefix):])
}

// parseHandle reads tenant and id from the base62 digits that follow an
// API key's or a session handle's prefix.
func parseHandle(digits string) (ParsedAPIKey, error) {
	if len(digits) == 0 || len(digits) > maxAPIKeyDigits {
		return ParsedAPIKey{}, errKeyLength
	}
	if digits[0] == '0' {
		return ParsedAPIKey{}, errKeyLeading0
	}
	var buf [maxAPIKeyDigits]byte
	payload, err := decodeBase62(buf[:], digits)
	if err != nil {
		return ParsedAPIKey{}, err
	}
	// payload = tenant "_" id "_" secret, where the secret may hold '_'.
	sep1 := bytes.IndexByte(payload, '_')
	if sep1 < 1 || sep1 > maxTenantLen || len(payload) < sep1+1+apiKeyIDLen+1+apiKeySecretLen {
		return ParsedAPIKey{}, errKeyPayload
	}
	sep2 := sep1 + 1 + apiKeyIDLen
	if payload[sep2] != '_' || len(payload)-sep2-1 != apiKeySecretLen {
		return ParsedAPIKey{}, errKeyPayload
	}
	// The tenant is a DNS label, as ValidateTenant checks: no '-' at its ends.
	if payload[0] == '-' || payload[sep1-1] == '-' {
		return ParsedAPIKey{}, errKeyPayload
	}
	for _, c := range payload[:sep1] {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return ParsedAPIKey{}, errKeyPayload
		}
	}
	for _, c := range payload[sep1+1 : sep2] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return ParsedAPIKey{}, errKeyPayload
		}
	}
	// One allocation for both strings.
	s := string(payload[:sep2])
	return ParsedAPIKey{Tenant: s[:sep1], ID: s[sep1+1:]}, nil
}

// decodeBase62 decodes digits (most significant first) into the tail of buf
// and returns the big-endian bytes without leading zeros. It works on
// 32-bit limbs, five digits at a time (62^5 < 2^32), so decoding a key costs
// a few hundred multiplications and no allocation.
func decodeBase62(buf []byte, digits string) ([]byte, error) {
	const limbs = (maxAPIKeyDigits*6)/32 + 2 // 62 < 2^6
	var n [limbs]uint32                      // little-endian
	used := 1
	for i := 0; i < len(digits); {
		chunk, mul := uint64(0), uint64(1)
		for j := 0; j < 5 && i < len(digits); j, i = j+1, i+1 {
			v := base62Value[digits[i]]
			if v < 0 {
				return nil, errKeyDigit
			}
			chunk = chunk*62 + uint64(v)
			mul *= 62
		}
		carry := chunk
		for k := 0; k < used; k++ {
			t := uint64(n[k])*mul + carry
			n[k] = uint32(t)
			carry = t >> 32
		}
		if carry != 0 {
			if used == limbs {
				return nil, errKeyLength
			}
			n[used] = uint32(carry)
			used++
		}
	}
	// Write limbs big-endian into the end of buf.
	end := len(buf)
	pos := end
	for k := 0; k < used; k++ {
		for s := 0; s < 32; s += 8 {
			if pos == 0 {
				return nil, errKeyLength
			}
			pos--
			buf[pos] = byte(n[k] >> s)
		}
	}
	for pos < end && buf[pos] == 0 {
		pos++
	}
	if end-pos > maxPayloadLen {
		return nil, errKeyPayload
	}
	return buf[pos:end], nil
}
