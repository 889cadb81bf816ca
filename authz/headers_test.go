package authz

import "testing"

// TestIsIdentityHeader covers catalogue row 94 (docs/catalogue-map.md).
func TestIsIdentityHeader(t *testing.T) {
	for _, h := range []string{HeaderSubject, HeaderTenant, HeaderEmail, HeaderAuth, HeaderSeats} {
		if !isIdentityHeader(h) {
			t.Errorf("isIdentityHeader(%q) = false for usher's own header", h)
		}
	}
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"x-usher-subject", true},
		{"x_usher_subject", true},
		{"x.usher.subject", true},
		{"x-usher_tenant", true},
		{"x_usher-tenant", true},
		{"X-Usher-Subject", true},
		{"X_USHER_TENANT", true},
		{"x-UsHeR-seats", true},
		{"x-usher-", true},
		{"x-usher-anything-else", true},
		{"x-usher-\x00", true},
		{"", false},
		{"x-usher", false},
		{"x-ushe-", false},
		{"x-usherx", false},
		{"xx-usher-subject", false},
		{"x--usher-subject", false},
		{"x usher subject", false},
		{"x:usher:subject", false},
		{"y-usher-subject", false},
		{"x-user-subject", false},
		{"usher-subject", false},
		{"x-forwarded-user", false},
		{"authorization", false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			if got := isIdentityHeader(tt.in); got != tt.want {
				t.Errorf("isIdentityHeader(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
