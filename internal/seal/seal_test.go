package seal

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const testKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // "0123456789abcdef0123456789abcdef"

func TestParseKey(t *testing.T) {
	tests := []struct {
		name, in, err string
	}{
		{"ok", testKey, ""},
		{"trailing newline", testKey + "\n", ""},
		{"not base64", "not base64!", "not standard base64"},
		{"url alphabet", strings.NewReplacer("+", "-", "/", "_").Replace("+/+/" + testKey[4:]), "not standard base64"},
		{"short", "MDEyMzQ1Njc4OWFiY2RlZg==", "16 bytes, want 32"},
		{"empty", "", "0 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKey(tt.in)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("ParseKey: %v, want %q", err, tt.err)
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	k, err := ParseKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ParseKey("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=")
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("a signing secret of thirty-two b")
	sealed, err := k.Seal(secret, []byte("acme/k1"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, string(secret)) {
		t.Fatal("sealed value holds the plaintext")
	}
	again, _ := k.Seal(secret, []byte("acme/k1"))
	if again == sealed {
		t.Error("two seals of one secret are equal: the nonce is not random")
	}
	got, err := k.Open(sealed, []byte("acme/k1"))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	flipped := []byte(sealed)
	flipped[len(flipped)-2] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"other record":   func() ([]byte, error) { return k.Open(sealed, []byte("globex/k1")) },
		"other key":      func() ([]byte, error) { return other.Open(sealed, []byte("acme/k1")) },
		"tampered":       func() ([]byte, error) { return k.Open(string(flipped), []byte("acme/k1")) },
		"no prefix":      func() ([]byte, error) { return k.Open(sealed[3:], []byte("acme/k1")) },
		"truncated":      func() ([]byte, error) { return k.Open(sealed[:10], []byte("acme/k1")) },
		"not base64":     func() ([]byte, error) { return k.Open("v1.!!!", []byte("acme/k1")) },
		"plaintext":      func() ([]byte, error) { return k.Open(string(secret), []byte("acme/k1")) },
		"empty":          func() ([]byte, error) { return k.Open("", nil) },
		"zero key opens": func() ([]byte, error) { return Key{}.Open(sealed, []byte("acme/k1")) },
	} {
		t.Run(name, func(t *testing.T) {
			got, err := open()
			want := ErrOpen
			if name == "zero key opens" {
				want = ErrNoKey
			}
			if !errors.Is(err, want) || got != nil {
				t.Errorf("got %q, %v; want %v", got, err, want)
			}
		})
	}
	if _, err := (Key{}).Seal(secret, nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("zero key seals: %v", err)
	}
}

func TestKeyRedacts(t *testing.T) {
	k, _ := ParseKey(testKey)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "key", k)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %s", k, k, k), buf.String()} {
		if !strings.Contains(s, "REDACTED") || strings.Contains(s, "0123456789abcdef") {
			t.Errorf("key printed as %q", s)
		}
	}
}
