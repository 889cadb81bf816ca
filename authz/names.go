// Not a step: the rules for tenant, space, seat, permission and group
// names, shared by the steps and by the store and CLI that write them.

package authz

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on names. They keep every name usable as a path segment, a header
// value and a store value without escaping.
const (
	maxTenantLen     = 63
	maxNameLen       = 128
	maxPermissionLen = 128
	maxGroupLen      = 1024
)

// ValidateTenant reports why name is not a valid tenant name, or nil.
// A tenant name is a DNS label: 1–63 lower-case letters, digits and '-',
// starting and ending with a letter or digit. It never holds '_', which
// separates the parts of an API key.
func ValidateTenant(name string) error {
	if name == "" || len(name) > maxTenantLen {
		return fmt.Errorf("tenant name must be 1–%d characters", maxTenantLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(name)-1:
		default:
			return fmt.Errorf("tenant name %q: use lower-case letters, digits and inner '-'", name)
		}
	}
	return nil
}

// ValidateName reports why name is not a valid space or seat name, or nil.
// A name is 1–128 letters, digits, '-' and '_', starting with a letter or
// digit. Names are case-sensitive.
func ValidateName(kind, name string) error {
	if !validName(name) {
		return fmt.Errorf("%s name %q: use 1–%d letters, digits, '-' and '_', starting with a letter or digit", kind, name, maxNameLen)
	}
	return nil
}

func validName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidatePermission reports why p is not a valid permission, or nil.
// A permission is dot-separated words of lower-case letters, digits, '-'
// and '_' (each starting with a letter), like "datasets.read", or "*" for
// every permission.
func ValidatePermission(p string) error {
	if p == "*" {
		return nil
	}
	if p == "" || len(p) > maxPermissionLen {
		return fmt.Errorf("permission must be 1–%d characters", maxPermissionLen)
	}
	for _, word := range strings.Split(p, ".") {
		if word == "" || word[0] < 'a' || word[0] > 'z' {
			return fmt.Errorf("permission %q: each dot-separated word must start with a lower-case letter", p)
		}
		for i := 1; i < len(word); i++ {
			c := word[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("permission %q: use lower-case letters, digits, '-', '_' and '.'", p)
			}
		}
	}
	return nil
}

// ValidateGroup reports why g is not a usable IdP group name, or nil. Groups
// are matched exactly as the IdP sends them (an Entra object id, an LDAP DN
// such as "CN=viewers,OU=groups"), so only emptiness, length and control
// characters are refused.
func ValidateGroup(g string) error {
	if strings.TrimSpace(g) == "" || len(g) > maxGroupLen {
		return fmt.Errorf("group must be 1–%d characters and not blank", maxGroupLen)
	}
	for i := 0; i < len(g); i++ {
		if g[i] < 0x20 || g[i] == 0x7f {
			return fmt.Errorf("group %q holds a control character", g)
		}
	}
	return nil
}

// ValidateSeat reports every problem with s, or nil.
func ValidateSeat(s Seat) error {
	var errs []error
	if err := ValidateTenant(s.Tenant); err != nil {
		errs = append(errs, err)
	}
	if err := ValidateName("seat", s.Name); err != nil {
		errs = append(errs, err)
	}
	seen := make(map[string]bool, len(s.Grants))
	for _, g := range s.Grants {
		if g.Space != "*" {
			if err := ValidateName("space", g.Space); err != nil {
				errs = append(errs, err)
			}
		}
		if seen[g.Space] {
			errs = append(errs, fmt.Errorf("space %q is granted twice; list its permissions once", g.Space))
		}
		seen[g.Space] = true
		if len(g.Permissions) == 0 {
			errs = append(errs, fmt.Errorf("grant for space %q has no permissions", g.Space))
		}
		for _, p := range g.Permissions {
			if err := ValidatePermission(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, g := range s.Groups {
		if err := ValidateGroup(g); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
