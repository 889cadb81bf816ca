package login

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of the email checks; the login app maps them to reason codes.
var (
	// ErrEmailInvalid: not one plain address (see ParseEmail).
	ErrEmailInvalid = errors.New("email address is not one plain address")
	// ErrEmailDomain: a plain address whose domain is not allowed.
	ErrEmailDomain = errors.New("email domain is not allowed")
	// ErrEmailUnverified: the provider has no verified email for the
	// person (email_verified false or missing, GitHub's primary email
	// unverified).
	ErrEmailUnverified = errors.New("email address is not verified")
)

// Limits of RFC 5321 section 4.5.3.1.
const (
	maxEmailLen = 254
	maxLocalLen = 64
	maxLabelLen = 63
)

// ParseEmail parses email as one plain address, local@domain, and returns
// its domain lower-cased. It is deliberately stricter than RFC 5322 (and
// net/mail): the address decides who may log in, so every form that
// parsers read differently is refused rather than interpreted:
//
//   - printable ASCII only: no whitespace, control characters or
//     non-ASCII (IDN look-alikes such as "acmе.test" with a Cyrillic е);
//   - exactly one "@";
//   - the local part a dot-atom: no quoted strings ("a@b"@evil.test),
//     comments, angle brackets, display names, or leading, trailing or
//     doubled dots;
//   - the domain a host name of letters, digits and hyphens in labels of
//     at most 63 characters: no trailing dot, no address literal
//     ([192.0.2.1]), no punycode label ("xn--"), since an allowed domain
//     is matched exactly and a look-alike must never pass for it.
func ParseEmail(email string) (domain string, err error) {
	if email == "" || len(email) > maxEmailLen {
		return "", fmt.Errorf("%w: empty or longer than %d bytes", ErrEmailInvalid, maxEmailLen)
	}
	for i := 0; i < len(email); i++ {
		if c := email[i]; c <= ' ' || c > '~' {
			return "", fmt.Errorf("%w: a byte that is not printable ASCII at %d", ErrEmailInvalid, i)
		}
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || strings.Contains(domain, "@") {
		return "", fmt.Errorf("%w: not exactly one @", ErrEmailInvalid)
	}
	if err := checkLocal(local); err != nil {
		return "", err
	}
	domain = strings.ToLower(domain)
	if err := CheckDomain(domain); err != nil {
		return "", err
	}
	return domain, nil
}

// CheckEmail reports whether email is one plain address (ParseEmail)
// whose domain, lower-cased, equals one of allowed exactly. Subdomains
// are not allowed implicitly: alice@acme.test.evil.test and
// alice@eu.acme.test do not match acme.test. The errors wrap
// ErrEmailInvalid or ErrEmailDomain.
func CheckEmail(email string, allowed []string) error {
	domain, err := ParseEmail(email)
	if err != nil {
		return err
	}
	if !DomainAllowed(domain, allowed) {
		return fmt.Errorf("%w: %q", ErrEmailDomain, domain)
	}
	return nil
}

// DomainAllowed reports whether domain equals one of allowed, ignoring
// ASCII case. An allowed entry that is not a valid domain matches
// nothing.
func DomainAllowed(domain string, allowed []string) bool {
	domain = strings.ToLower(domain)
	if CheckDomain(domain) != nil {
		return false
	}
	for _, a := range allowed {
		if strings.ToLower(a) == domain {
			return true
		}
	}
	return false
}

// CheckDomain reports whether domain is a lower-case ASCII host name as
// ParseEmail accepts it: labels of a-z, 0-9 and inner hyphens, at most
// 63 characters each, no punycode, no trailing dot. Configuration uses
// it to validate allowed domains.
func CheckDomain(domain string) error {
	if domain == "" || len(domain) > maxEmailLen {
		return fmt.Errorf("%w: empty or too long domain", ErrEmailInvalid)
	}
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" || len(label) > maxLabelLen {
			return fmt.Errorf("%w: empty or too long label in domain %q", ErrEmailInvalid, domain)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w: label starts or ends with a hyphen in %q", ErrEmailInvalid, domain)
		}
		// xn-- is an IDNA A-label (punycode); other "??--" labels are
		// reserved by RFC 5891 section 4.2.3.1.
		if len(label) >= 4 && label[2:4] == "--" {
			return fmt.Errorf("%w: punycode or reserved label in %q", ErrEmailInvalid, domain)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return fmt.Errorf("%w: character %q in domain %q", ErrEmailInvalid, c, domain)
			}
		}
	}
	return nil
}

// checkLocal accepts a dot-atom (RFC 5322 section 3.2.3) of at most 64
// bytes.
func checkLocal(local string) error {
	if local == "" || len(local) > maxLocalLen {
		return fmt.Errorf("%w: empty or too long local part", ErrEmailInvalid)
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return fmt.Errorf("%w: misplaced dot in the local part", ErrEmailInvalid)
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c != '.' && !isAtext(c) {
			return fmt.Errorf("%w: character %q in the local part", ErrEmailInvalid, c)
		}
	}
	return nil
}

// isAtext reports whether c is an atext character of RFC 5322 section
// 3.2.3: letters, digits and !#$%&'*+-/=?^_`{|}~.
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
