// Package seal encrypts secrets at rest with the server's master key:
// AES-256-GCM with a random nonce, and the record the secret belongs to as
// additional data, so a sealed value cannot be moved to another record.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// KeySize is the master key's length: 32 random bytes, written in standard
// base64 (as `openssl rand -base64 32` prints).
const KeySize = 32

// prefix versions the sealed format.
const prefix = "v1."

// Key is a master key. Its zero value is "no key". It never prints its
// bytes: String and LogValue redact.
type Key struct {
	aead cipher.AEAD
}

// ParseKey reads a master key in standard base64, ignoring surrounding
// white space (a trailing newline in a file).
func ParseKey(s string) (Key, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return Key{}, errors.New("master key: not standard base64; create one with `openssl rand -base64 32`")
	}
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("master key: %d bytes, want %d; create one with `openssl rand -base64 32`", len(b), KeySize)
	}
	block, err := aes.NewCipher(b)
	if err != nil {
		return Key{}, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, fmt.Errorf("master key: %w", err)
	}
	return Key{aead: aead}, nil
}

// IsZero reports whether k is no key.
func (k Key) IsZero() bool { return k.aead == nil }

// String redacts the key.
func (k Key) String() string { return "REDACTED" }

// LogValue redacts the key in logs.
func (k Key) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// ErrNoKey is returned when sealing or opening without a master key.
var ErrNoKey = errors.New("no master key: set USHER_MASTER_KEY or --master-key-file (32 random bytes in base64, e.g. `openssl rand -base64 32`)")

// ErrOpen is returned when a sealed value does not open: the wrong master
// key, a value from another record, or tampering.
var ErrOpen = errors.New("sealed secret does not open with this master key (a different USHER_MASTER_KEY than the one that sealed it?)")

// Seal encrypts plaintext for the record named by aad.
func (k Key) Seal(plaintext, aad []byte) (string, error) {
	if k.IsZero() {
		return "", ErrNoKey
	}
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	out := k.aead.Seal(nonce, nonce, plaintext, aad)
	return prefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value sealed for the record named by aad.
func (k Key) Open(sealed string, aad []byte) ([]byte, error) {
	if k.IsZero() {
		return nil, ErrNoKey
	}
	body, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return nil, ErrOpen
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(b) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, ErrOpen
	}
	n := k.aead.NonceSize()
	out, err := k.aead.Open(nil, b[:n], b[n:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
