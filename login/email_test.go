package login

import (
	"errors"
	"net/mail"
	"strings"
	"testing"
)

var allowedDomains = []string{"acme.test", "corp.test"}

// emailCases are the allowed-domain bypasses of the issue and of
// catalogue rows 58 and 59, with the error each must give.
var emailCases = []struct {
	name  string
	email string
	want  error // nil: allowed
}{
	{"plain", "alice@acme.test", nil},
	{"second domain", "bob@corp.test", nil},
	{"upper-case domain", "alice@ACME.TEST", nil},
	{"mixed-case domain", "Alice@Acme.Test", nil},
	{"plus and dots in the local part", "a.l+ice@acme.test", nil},
	{"every atext character", "!#$%&'*+-/=?^_`{|}~@acme.test", nil},

	// Catalogue row 58: strict single-address parse, exact domain.
	{"two ats", "a@acme.test@evil.test", ErrEmailInvalid},
	{"quoted local part with an at", `"a@acme.test"@evil.test`, ErrEmailInvalid},
	{"quoted local part", `"alice"@acme.test`, ErrEmailInvalid},
	{"trailing dot", "a@acme.test.", ErrEmailInvalid},
	{"leading dot in the domain", "a@.acme.test", ErrEmailInvalid},
	{"doubled dot in the domain", "a@acme..test", ErrEmailInvalid},
	{"display name", "Alice <alice@acme.test>", ErrEmailInvalid},
	{"angle brackets", "<alice@acme.test>", ErrEmailInvalid},
	{"comment", "alice(x)@acme.test", ErrEmailInvalid},
	{"comment in the domain", "alice@acme.test(evil.test)", ErrEmailInvalid},
	{"address list", "alice@acme.test,mallory@evil.test", ErrEmailInvalid},
	{"leading space", " alice@acme.test", ErrEmailInvalid},
	{"trailing space", "alice@acme.test ", ErrEmailInvalid},
	{"tab", "alice@acme.test\t", ErrEmailInvalid},
	{"newline", "alice@acme.test\nBcc: x@evil.test", ErrEmailInvalid},
	{"NUL", "alice@acme.test\x00.evil.test", ErrEmailInvalid},
	{"backslash", `alice\@acme.test`, ErrEmailInvalid},
	{"address literal", "alice@[192.0.2.1]", ErrEmailInvalid},
	{"no at", "alice.acme.test", ErrEmailInvalid},
	{"empty local part", "@acme.test", ErrEmailInvalid},
	{"empty domain", "alice@", ErrEmailInvalid},
	{"empty", "", ErrEmailInvalid},
	{"leading dot in the local part", ".alice@acme.test", ErrEmailInvalid},
	{"trailing dot in the local part", "alice.@acme.test", ErrEmailInvalid},
	{"doubled dot in the local part", "al..ice@acme.test", ErrEmailInvalid},
	{"local part too long", strings.Repeat("a", 65) + "@acme.test", ErrEmailInvalid},
	{"label too long", "a@" + strings.Repeat("b", 64) + ".acme.test", ErrEmailInvalid},
	{"hyphen at a label's start", "a@-acme.test", ErrEmailInvalid},
	{"underscore in the domain", "a@ac_me.test", ErrEmailInvalid},
	// IDN look-alikes: Cyrillic е (U+0435), its punycode form, and a
	// fullwidth at sign.
	{"Cyrillic look-alike", "alice@acm\u0435.test", ErrEmailInvalid},
	{"punycode look-alike", "alice@xn--acm-tdd.test", ErrEmailInvalid},
	{"fullwidth at", "alice\uff20acme.test", ErrEmailInvalid},
	{"non-ASCII local part", "al\u00efce@acme.test", ErrEmailInvalid},
	{"percent-encoded at", "alice%40acme.test@evil.test", ErrEmailDomain},

	// Exact match only (catalogue rows 58 and 59).
	{"allowed domain as a prefix", "alice@acme.test.evil.test", ErrEmailDomain},
	{"allowed domain as a suffix", "alice@evilacme.test", ErrEmailDomain},
	{"hyphenated look-alike", "alice@evil-acme.test", ErrEmailDomain},
	{"dot dropped", "alice@acmetest.evil", ErrEmailDomain},
	{"subdomain of an allowed domain", "alice@eu.acme.test", ErrEmailDomain},
	{"other domain", "mallory@evil.test", ErrEmailDomain},
	{"parent of an allowed domain", "alice@test", ErrEmailDomain},
}

func TestCheckEmail(t *testing.T) {
	for _, tc := range emailCases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckEmail(tc.email, allowedDomains)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("CheckEmail(%q) = %v, want %v", tc.email, err, tc.want)
			}
		})
	}
}

func TestCheckEmailNothingAllowed(t *testing.T) {
	if err := CheckEmail("alice@acme.test", nil); !errors.Is(err, ErrEmailDomain) {
		t.Fatalf("with no allowed domains: %v, want %v", err, ErrEmailDomain)
	}
}

func TestDomainAllowedIgnoresInvalidEntries(t *testing.T) {
	// An allowed entry that is no domain must not match anything, even
	// an equal string.
	for _, entry := range []string{"acme.test.", " acme.test", "xn--acm-tdd.test", "", "[192.0.2.1]"} {
		if DomainAllowed(entry, []string{entry}) {
			t.Errorf("DomainAllowed(%q, [%q]) = true", entry, entry)
		}
	}
	if !DomainAllowed("ACME.test", []string{"Acme.Test"}) {
		t.Error("DomainAllowed ignores ASCII case: got false")
	}
}

// Catalogue row 58.
func TestParseEmailLowerCasesTheDomain(t *testing.T) {
	got, err := ParseEmail("Alice@ACME.Test")
	if err != nil || got != "acme.test" {
		t.Fatalf(`ParseEmail("Alice@ACME.Test") = %q, %v; want "acme.test"`, got, err)
	}
}

// FuzzCheckEmail checks CheckEmail against net/mail as a reference: every
// address it allows is one plain address to net/mail too, with no display
// name, exactly one @, and a domain that is, lower-cased, an allowed one.
// Catalogue rows 58, 59.
func FuzzCheckEmail(f *testing.F) {
	for _, tc := range emailCases {
		f.Add(tc.email)
	}
	f.Fuzz(func(t *testing.T, email string) {
		err := CheckEmail(email, allowedDomains)
		if err != nil {
			if !errors.Is(err, ErrEmailInvalid) && !errors.Is(err, ErrEmailDomain) {
				t.Fatalf("CheckEmail(%q) = %v: neither sentinel", email, err)
			}
			return
		}
		if strings.Count(email, "@") != 1 {
			t.Fatalf("allowed %q with %d ats", email, strings.Count(email, "@"))
		}
		addr, perr := mail.ParseAddress(email)
		if perr != nil || addr.Name != "" || addr.Address != email {
			t.Fatalf("allowed %q, net/mail reads it as %+v, %v", email, addr, perr)
		}
		domain := strings.ToLower(email[strings.IndexByte(email, '@')+1:])
		if domain != "acme.test" && domain != "corp.test" {
			t.Fatalf("allowed %q with domain %q", email, domain)
		}
	})
}
