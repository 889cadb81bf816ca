package authz

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// errText is err's message, or "" for nil, so that tables can hold the exact
// text of errors that have no sentinel.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

const (
	tenantLenErr = "tenant name must be 1–63 characters"
	permLenErr   = "permission must be 1–128 characters"
	groupErr     = "group must be 1–1024 characters and not blank"
)

func tenantCharErr(s string) string {
	return `tenant name "` + s + `": use lower-case letters, digits and inner '-'`
}

func nameErr(kind, s string) string {
	return kind + ` name "` + s + `": use 1–128 letters, digits, '-' and '_', starting with a letter or digit`
}

func TestValidateTenant(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"acme", ""},
		{"a", ""},
		{"0", ""},
		{"a-b-1", ""},
		{"a--b", ""},
		{strings.Repeat("a", 63), ""},
		{"", tenantLenErr},
		{strings.Repeat("a", 64), tenantLenErr},
		{"Acme", tenantCharErr("Acme")},
		{"a_b", tenantCharErr("a_b")},
		{"-a", tenantCharErr("-a")},
		{"a-", tenantCharErr("a-")},
		{"-", tenantCharErr("-")},
		{"a.b", tenantCharErr("a.b")},
		{"a b", tenantCharErr("a b")},
		{"a\x00", tenantCharErr(`a\x00`)},
		{"a/../b", tenantCharErr("a/../b")},
		{"\u0430cme", tenantCharErr("\u0430cme")}, // Cyrillic a
	} {
		t.Run(tt.in, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errText(ValidateTenant(tt.in))); diff != "" {
				t.Errorf("ValidateTenant(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"s1", ""},
		{"Ops", ""},
		{"a-b_c", ""},
		{"0", ""},
		{strings.Repeat("x", 128), ""},
		{"", nameErr("space", "")},
		{strings.Repeat("x", 129), nameErr("space", strings.Repeat("x", 129))},
		{"-a", nameErr("space", "-a")},
		{"_a", nameErr("space", "_a")},
		{"a.b", nameErr("space", "a.b")},
		{"..", nameErr("space", "..")},
		{"*", nameErr("space", "*")},
		{"a b", nameErr("space", "a b")},
		{"a/b", nameErr("space", "a/b")},
		{"a%2F", nameErr("space", "a%2F")},
		{"a\n", nameErr("space", `a\n`)},
		{"caf\u00e9", nameErr("space", "caf\u00e9")},
	} {
		t.Run(tt.in, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errText(ValidateName("space", tt.in))); diff != "" {
				t.Errorf("ValidateName(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestValidatePermission(t *testing.T) {
	startErr := func(p string) string {
		return `permission "` + p + `": each dot-separated word must start with a lower-case letter`
	}
	charErr := func(p string) string {
		return `permission "` + p + `": use lower-case letters, digits, '-', '_' and '.'`
	}
	for _, tt := range []struct{ in, want string }{
		{"*", ""},
		{"admin", ""},
		{"datasets.read", ""},
		{"a.b-c.d_e.f1", ""},
		{strings.Repeat("a", 128), ""},
		{"", permLenErr},
		{strings.Repeat("a", 129), permLenErr},
		{"**", startErr("**")},
		{"datasets.*", startErr("datasets.*")},
		{"Datasets.read", startErr("Datasets.read")},
		{"1a", startErr("1a")},
		{".a", startErr(".a")},
		{"a.", startErr("a.")},
		{"a..b", startErr("a..b")},
		{"-a", startErr("-a")},
		{"datasets.Read", startErr("datasets.Read")},
		{"datasets.reaD", charErr("datasets.reaD")},
		{"a b", charErr("a b")},
		{"a/b", charErr("a/b")},
		{"a\x00", charErr(`a\x00`)},
		{"a:b", charErr("a:b")},
	} {
		t.Run(tt.in, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errText(ValidatePermission(tt.in))); diff != "" {
				t.Errorf("ValidatePermission(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestValidateGroup(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"viewers", ""},
		{"CN=viewers,OU=groups,DC=example,DC=test", ""},
		{"3f2504e0-4f89-11d3-9a0c-0305e82c3301", ""},
		{"with space", ""},
		{"caf\u00e9", ""},
		{strings.Repeat("g", 1024), ""},
		{"", groupErr},
		{"   ", groupErr},
		{"\u00a0", groupErr},
		{strings.Repeat("g", 1025), groupErr},
		{"a\x00", `group "a\x00" holds a control character`},
		{"a\r\nb", `group "a\r\nb" holds a control character`},
		{"a\tb", `group "a\tb" holds a control character`},
		{"a\x7f", `group "a\x7f" holds a control character`},
	} {
		t.Run(tt.in, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errText(ValidateGroup(tt.in))); diff != "" {
				t.Errorf("ValidateGroup(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestValidateSeat(t *testing.T) {
	valid := Seat{
		Tenant: "acme",
		Name:   "analysts",
		Grants: []Grant{{Space: "s1", Permissions: []string{"datasets.read"}}, {Space: "*", Permissions: []string{"*"}}},
		Groups: []string{"CN=analysts,OU=groups"},
	}
	for _, tt := range []struct {
		name string
		seat Seat
		want []string
	}{
		{"valid", valid, nil},
		{"no grants or groups", Seat{Tenant: "acme", Name: "empty"}, nil},
		{"everything wrong", Seat{
			Tenant: "Acme",
			Name:   "-seat",
			Grants: []Grant{
				{Space: "s 1", Permissions: []string{"Read"}},
				{Space: "s2"},
				{Space: "s2", Permissions: []string{"ok", "x..y"}},
				{Space: "", Permissions: []string{"*"}},
			},
			Groups: []string{"", "g\x00"},
		}, []string{
			tenantCharErr("Acme"),
			nameErr("seat", "-seat"),
			nameErr("space", "s 1"),
			`permission "Read": each dot-separated word must start with a lower-case letter`,
			`grant for space "s2" has no permissions`,
			`space "s2" is granted twice; list its permissions once`,
			`permission "x..y": each dot-separated word must start with a lower-case letter`,
			nameErr("space", ""),
			groupErr,
			`group "g\x00" holds a control character`,
		}},
		{"wildcard space granted twice", Seat{Tenant: "acme", Name: "s", Grants: []Grant{
			{Space: "*", Permissions: []string{"a"}}, {Space: "*", Permissions: []string{"b"}},
		}}, []string{`space "*" is granted twice; list its permissions once`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSeat(tt.seat)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ValidateSeat mismatch (-want +got):\n%s", diff)
			}
			if u, ok := err.(interface{ Unwrap() []error }); err != nil && (!ok || len(u.Unwrap()) != len(tt.want)) {
				t.Errorf("ValidateSeat error is not an errors.Join of %d errors: %#v", len(tt.want), err)
			}
		})
	}
}
