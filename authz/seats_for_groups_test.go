package authz_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
)

func TestSeatsForGroups(t *testing.T) {
	seats := []authz.Seat{
		{Name: "admin", Groups: []string{"ops", "sre"}},
		{Name: "dev", Groups: []string{"engineers"}},
		{Name: "viewer"},
	}
	tests := []struct {
		name       string
		groups     []string
		matchNames bool
		want       []string
	}{
		{"aliases", []string{"sre", "engineers", "ops"}, false, []string{"admin", "dev"}},
		{"names ignored without opt-in", []string{"viewer", "admin"}, false, nil},
		{"names with opt-in", []string{"viewer", "ops"}, true, []string{"admin", "viewer"}},
		{"unknown groups", []string{"nobody"}, true, nil},
		{"case matters", []string{"SRE", "Viewer"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := authz.SeatsForGroups(seats, tt.groups, tt.matchNames)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("seats (-want +got):\n%s", diff)
			}
		})
	}
}
