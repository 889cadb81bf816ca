package authz

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testKeyID = "abcdefgh234567ab"

// testSecret is 32 bytes with no '_' (0x5f), so that a shifted separator in
// a bad payload cannot be mistaken for the real one.
var testSecret = func() []byte {
	b := make([]byte, apiKeySecretLen)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

var testKey = FormatAPIKey("acme", testKeyID, testSecret)

// payloadKey encodes arbitrary payload bytes as a key.
func payloadKey(payload string) string {
	return apiKeyPrefix + new(big.Int).SetBytes([]byte(payload)).Text(62)
}

var longTenant = strings.Repeat("t", maxTenantLen)

// apiKeyTests is the format zoo of docs/SECURITY.md ("API keys"). It also seeds FuzzParseAPIKey.
var apiKeyTests = []struct {
	name string
	key  string
	want ParsedAPIKey
	err  error
}{
	{"valid", testKey, ParsedAPIKey{"acme", testKeyID}, nil},
	{"longest tenant", FormatAPIKey(longTenant, testKeyID, testSecret), ParsedAPIKey{longTenant, testKeyID}, nil},
	{"tenant with digits and dash", FormatAPIKey("a-1", testKeyID, testSecret), ParsedAPIKey{"a-1", testKeyID}, nil},
	{"secret of underscores", FormatAPIKey("acme", testKeyID, bytes.Repeat([]byte{'_'}, 32)), ParsedAPIKey{"acme", testKeyID}, nil},
	{"secret of zeros", FormatAPIKey("acme", testKeyID, make([]byte, 32)), ParsedAPIKey{"acme", testKeyID}, nil},
	{"tenant re-encoded", FormatAPIKey("evil", testKeyID, testSecret), ParsedAPIKey{"evil", testKeyID}, nil},

	{"empty", "", ParsedAPIKey{}, errKeyEmpty},
	{"upper-case prefix", "SK_" + testKey[3:], ParsedAPIKey{}, errKeyPrefix},
	{"public key prefix", "pk_" + testKey[3:], ParsedAPIKey{}, errKeyPrefix},
	{"prefix without underscore", "sk" + testKey[3:], ParsedAPIKey{}, errKeyPrefix},
	{"leading space", " " + testKey, ParsedAPIKey{}, errKeyPrefix},
	{"bearer scheme inside", "Bearer " + testKey, ParsedAPIKey{}, errKeyPrefix},
	{"prefix only", "sk_", ParsedAPIKey{}, errKeyLength},
	{"oversized", "sk_" + strings.Repeat("1", maxAPIKeyDigits+1), ParsedAPIKey{}, errKeyLength},
	{"huge", "sk_" + strings.Repeat("z", 64<<10), ParsedAPIKey{}, errKeyLength},
	{"longest digits too big", "sk_" + strings.Repeat("Z", maxAPIKeyDigits), ParsedAPIKey{}, errKeyPayload},
	{"leading zero", "sk_0" + testKey[3:], ParsedAPIKey{}, errKeyLeading0},
	{"zero", "sk_0", ParsedAPIKey{}, errKeyLeading0},
	{"dash", testKey[:20] + "-" + testKey[21:], ParsedAPIKey{}, errKeyDigit},
	{"base64 characters", testKey[:20] + "+/=", ParsedAPIKey{}, errKeyDigit},
	{"trailing NUL", testKey + "\x00", ParsedAPIKey{}, errKeyDigit},
	{"NUL after prefix", "sk_\x00" + testKey[3:], ParsedAPIKey{}, errKeyDigit},
	{"trailing CR LF", testKey + "\r\n", ParsedAPIKey{}, errKeyDigit},
	{"trailing space", testKey + " ", ParsedAPIKey{}, errKeyDigit},
	{"non-ASCII digit", testKey[:10] + "é", ParsedAPIKey{}, errKeyDigit},
	{"comma-merged duplicate", testKey + "," + testKey, ParsedAPIKey{}, errKeyDigit},
	{"comma-space-merged duplicate", testKey + ", " + testKey, ParsedAPIKey{}, errKeyDigit},
	{"comma-merged long keys", FormatAPIKey(longTenant, testKeyID, testSecret) + "," + testKey, ParsedAPIKey{}, errKeyLength},
	{"one digit", "sk_1", ParsedAPIKey{}, errKeyPayload},
	{"id too short", payloadKey("acme_abcdefgh234567a_" + string(testSecret)), ParsedAPIKey{}, errKeyPayload},
	{"id too long", payloadKey("acme_abcdefgh234567abc_" + string(testSecret)), ParsedAPIKey{}, errKeyPayload},
	{"id upper-case", payloadKey("acme_ABCDEFGH234567AB_" + string(testSecret)), ParsedAPIKey{}, errKeyPayload},
	{"id outside base32", payloadKey("acme_abcdefgh01890000_" + string(testSecret)), ParsedAPIKey{}, errKeyPayload},
	{"secret too short", payloadKey("acme_" + testKeyID + "_" + string(testSecret[:31])), ParsedAPIKey{}, errKeyPayload},
	{"secret too long", payloadKey("acme_" + testKeyID + "_" + string(testSecret) + "x"), ParsedAPIKey{}, errKeyPayload},
	{"no secret", payloadKey("acme_" + testKeyID), ParsedAPIKey{}, errKeyPayload},
	{"empty tenant", payloadKey("_" + testKeyID + "_" + string(testSecret)), ParsedAPIKey{}, errKeyPayload},
	{"tenant too long", payloadKey(longTenant + "t_" + testKeyID + "_" + string(testSecret[:31])), ParsedAPIKey{}, errKeyPayload},
	{"tenant upper-case", payloadKey("Acme_" + testKeyID + "_" + string(testSecret)), ParsedAPIKey{}, errKeyPayload},
	{"tenant with dot", payloadKey("ac.me_" + testKeyID + "_" + string(testSecret)), ParsedAPIKey{}, errKeyPayload},
	{"tenant with slash", payloadKey("../x_" + testKeyID + "_" + string(testSecret)), ParsedAPIKey{}, errKeyPayload},
	{"tenant leading dash", payloadKey("-acme_" + testKeyID + "_" + string(testSecret)), ParsedAPIKey{}, errKeyPayload},
	{"tenant trailing dash", payloadKey("acme-_" + testKeyID + "_" + string(testSecret)), ParsedAPIKey{}, errKeyPayload},
	{"no separators", payloadKey(strings.Repeat("a", 60)), ParsedAPIKey{}, errKeyPayload},
}

// TestParseAPIKey covers catalogue rows 5, 9, 11 (docs/catalogue-map.md).
func TestParseAPIKey(t *testing.T) {
	for _, tt := range apiKeyTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAPIKey(tt.key)
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParseAPIKey(%q) error = %v, want %v", tt.key, err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseAPIKey(%q) mismatch (-want +got):\n%s", tt.key, diff)
			}
		})
	}
}

func TestFormatAPIKey(t *testing.T) {
	// Fixed by hand from the format: a change of digit order or separator
	// would orphan every issued key.
	const want = "sk_3JXAVFulMsr3c4myu8GIaoQjFYawa0PBNJ1yKSsI8SOjsRn0Xv3UCondzwPY9TQbo0dP65fIz"
	if diff := cmp.Diff(want, testKey); diff != "" {
		t.Errorf("FormatAPIKey mismatch (-want +got):\n%s", diff)
	}
}

// TestAPIKeyTenantReencoded shows that a key re-encoded with another tenant
// is a different key: its digest differs, so it finds nothing stored.
// Catalogue row 3 (docs/catalogue-map.md).
func TestAPIKeyTenantReencoded(t *testing.T) {
	evil := FormatAPIKey("evil", testKeyID, testSecret)
	if HashAPIKey(evil).Equal(HashAPIKey(testKey)) {
		t.Errorf("re-encoded key %q has the digest of %q", evil, testKey)
	}
}

func TestGenerateAPIKey(t *testing.T) {
	for _, tenant := range []string{"acme", "a", longTenant} {
		t.Run(tenant[:min(len(tenant), 8)], func(t *testing.T) {
			k, err := GenerateAPIKey(tenant)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseAPIKey(k.Key)
			if err != nil {
				t.Fatalf("ParseAPIKey(%q): %v", k.Key, err)
			}
			if diff := cmp.Diff(ParsedAPIKey{Tenant: tenant, ID: k.ID}, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
			if k.Hash != HashAPIKey(k.Key) {
				t.Errorf("Hash = %v, want HashAPIKey(Key) = %v", k.Hash, HashAPIKey(k.Key))
			}
			other, err := GenerateAPIKey(tenant)
			if err != nil {
				t.Fatal(err)
			}
			if other.Key == k.Key || other.ID == k.ID {
				t.Errorf("two keys share a key or id: %q %q", k.Key, other.Key)
			}
		})
	}
	for _, tenant := range []string{"", "Acme", "a_b", "-a", longTenant + "t"} {
		t.Run("invalid "+tenant, func(t *testing.T) {
			k, err := GenerateAPIKey(tenant)
			want := ValidateTenant(tenant)
			if err == nil || want == nil || err.Error() != want.Error() {
				t.Errorf("GenerateAPIKey(%q) error = %v, want %v", tenant, err, want)
			}
			if diff := cmp.Diff(NewAPIKey{}, k); diff != "" {
				t.Errorf("GenerateAPIKey(%q) returned a key (-want +got):\n%s", tenant, diff)
			}
		})
	}
}

func TestHashAPIKey(t *testing.T) {
	for _, key := range []string{"", testKey, strings.Repeat("k", maxAPIKeyLen), strings.Repeat("k", maxAPIKeyLen+1), strings.Repeat("k", 1<<16)} {
		if got, want := HashAPIKey(key), KeyHash(sha256.Sum256([]byte(key))); got != want {
			t.Errorf("HashAPIKey(%d bytes) = %v, want %v", len(key), got, want)
		}
	}
}

func TestKeyHash(t *testing.T) {
	h := HashAPIKey(testKey)
	s := h.String()
	if want := hex.EncodeToString(h[:]); s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
	if !h.Equal(h) {
		t.Error("h.Equal(h) = false")
	}
	flipped := h
	flipped[len(flipped)-1] ^= 1
	if h.Equal(flipped) || h.Equal(KeyHash{}) {
		t.Error("Equal reports different digests as equal")
	}

	for _, tt := range []struct {
		name, in string
		want     KeyHash
		err      string
	}{
		{"round trip", s, h, ""},
		{"upper-case hex", strings.ToUpper(s), h, ""},
		{"empty", "", KeyHash{}, "key hash must be 64 hex digits"},
		{"short", s[:63], KeyHash{}, "key hash must be 64 hex digits"},
		{"long", s + "0", KeyHash{}, "key hash must be 64 hex digits"},
		{"non-hex", "zz" + s[2:], KeyHash{}, "key hash: encoding/hex: invalid byte: U+007A 'z'"},
		{"NUL", s[:63] + "\x00", KeyHash{}, "key hash: encoding/hex: invalid byte: U+0000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeyHash(tt.in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.err {
				t.Fatalf("ParseKeyHash(%q) error = %q, want %q", tt.in, gotErr, tt.err)
			}
			if err == nil && got != tt.want {
				t.Errorf("ParseKeyHash(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestAPIKeyAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ParseAPIKey(testKey); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Errorf("ParseAPIKey allocates %v times, want at most 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { HashAPIKey(testKey) }); n != 0 {
		t.Errorf("HashAPIKey allocates %v times, want 0", n)
	}
}

// FuzzParseAPIKey covers catalogue row 5 (docs/catalogue-map.md).
func FuzzParseAPIKey(f *testing.F) {
	for _, tt := range apiKeyTests {
		f.Add(tt.key)
	}
	f.Fuzz(func(t *testing.T, key string) {
		got, err := ParseAPIKey(key)
		if err != nil {
			for _, want := range []error{errKeyEmpty, errKeyPrefix, errKeyLength, errKeyDigit, errKeyLeading0, errKeyPayload} {
				if errors.Is(err, want) {
					if got != (ParsedAPIKey{}) {
						t.Errorf("ParseAPIKey(%q) = %+v with error %v", key, got, err)
					}
					return
				}
			}
			t.Fatalf("ParseAPIKey(%q) error %v is none of the key errors", key, err)
		}
		if err := ValidateTenant(got.Tenant); err != nil {
			t.Errorf("ParseAPIKey(%q) tenant: %v", key, err)
		}
		if len(got.ID) != apiKeyIDLen || strings.Trim(got.ID, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Errorf("ParseAPIKey(%q) id %q is not 16 of [a-z2-7]", key, got.ID)
		}
		n, ok := new(big.Int).SetString(key[len(apiKeyPrefix):], 62)
		if !ok {
			t.Fatalf("ParseAPIKey accepted %q, which math/big cannot read", key)
		}
		payload := n.Bytes()
		prefix := got.Tenant + "_" + got.ID + "_"
		if !bytes.HasPrefix(payload, []byte(prefix)) {
			t.Fatalf("ParseAPIKey(%q) = %+v, but the payload is %q", key, got, payload)
		}
		if again := FormatAPIKey(got.Tenant, got.ID, payload[len(prefix):]); again != key {
			t.Errorf("FormatAPIKey of the parts of %q = %q", key, again)
		}
	})
}

// base62Tests seed FuzzDecodeBase62.
var base62Tests = []string{
	"", "0", "1", "z", "Z", "10", "00000", "000001", "zzzzz", "ZZZZZ", "ZZZZZZ",
	"100000", testKey[3:], strings.Repeat("Z", maxAPIKeyDigits), strings.Repeat("Z", 200),
	strings.Repeat("0", 1000) + "1", "12-34", "+1", "-1", "1_0", " 1", "é",
	strings.Repeat("Z", 170) + "!",
}

func TestDecodeBase62(t *testing.T) {
	for _, s := range base62Tests {
		t.Run(s[:min(len(s), 12)], func(t *testing.T) { checkDecodeBase62(t, s) })
	}
}

func FuzzDecodeBase62(f *testing.F) {
	for _, s := range base62Tests {
		f.Add(s)
	}
	f.Fuzz(checkDecodeBase62)
}

// checkDecodeBase62 compares decodeBase62 with math/big, which reads the
// same digit order.
func checkDecodeBase62(t *testing.T, s string) {
	const limbBits = ((maxAPIKeyDigits*6)/32 + 2) * 32
	var buf [maxAPIKeyDigits]byte
	got, err := decodeBase62(buf[:], s)

	// decodeBase62 reads five digits at a time and checks for overflow
	// after each group, so a bad digit only shows if the groups before it
	// fit.
	valid := s
	var wantErr error
	if i := strings.IndexFunc(s, func(r rune) bool { return r > 0x7f || base62Value[r] < 0 }); i >= 0 {
		valid, wantErr = s[:i/5*5], errKeyDigit
	}
	n := new(big.Int)
	if digits := strings.TrimLeft(valid, "0"); len(digits) > 170 {
		// At least 62^170 > 2^1012: it cannot fit, and math/big's
		// quadratic SetString would make the fuzzer crawl on long inputs.
		n.SetBit(n, limbBits, 1)
	} else if valid != "" {
		if _, ok := n.SetString(valid, 62); !ok {
			t.Fatalf("math/big rejects %q", valid)
		}
	}
	switch {
	case n.BitLen() > limbBits:
		wantErr = errKeyLength
	case wantErr == nil && len(n.Bytes()) > maxPayloadLen:
		wantErr = errKeyPayload
	}
	if !errors.Is(err, wantErr) {
		t.Fatalf("decodeBase62(%q) error = %v, want %v", s, err, wantErr)
	}
	if err != nil {
		if got != nil {
			t.Errorf("decodeBase62(%q) = %x with error %v", s, got, err)
		}
		return
	}
	if want := n.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("decodeBase62(%q) = %x, math/big gives %x", s, got, want)
	}
}
