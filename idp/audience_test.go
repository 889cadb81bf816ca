package idp_test

import (
	"strings"
	"testing"

	"github.com/usher-dev/usher/idp"
)

// TestCheckAudience covers catalogue row 18 (docs/catalogue-map.md).
func TestCheckAudience(t *testing.T) {
	const entraApp = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
	tests := []struct {
		name      string
		audience  string
		tokenType string
		clients   []string
		warn      bool
	}{
		{"an API's audience", "api://usher", "", nil, false},
		{"an Entra client id", entraApp, "", nil, true},
		{"a Google client id", "123-abc.apps.googleusercontent.com", "", nil, true},
		{"the audience among the allowed clients", "usher-web", "", []string{"usher-web"}, true},
		{"a client id with typ required", entraApp, "at+jwt", nil, false},
		{"a client id, other clients allowed", entraApp, "", []string{"cli-app"}, false},
		{"a client id, itself allowed", entraApp, "", []string{entraApp}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := idp.CheckAudience(tt.audience, tt.tokenType, tt.clients)
			if (got != "") != tt.warn || tt.warn && !strings.Contains(got, "looks like a client id") {
				t.Errorf("CheckAudience = %q; want a warning: %v", got, tt.warn)
			}
		})
	}
}
