package server

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-dev/usher/authz"
	"github.com/usher-dev/usher/internal/config"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// recorder builds components that record their starts and stops.
type recorder struct{ events []string }

func (r *recorder) component(name string, startErr error) component {
	return component{
		name: name,
		start: func(context.Context) error {
			r.events = append(r.events, "start "+name)
			return startErr
		},
		stop: func(context.Context) { r.events = append(r.events, "stop "+name) },
	}
}

func TestStartAllStopsInReverse(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		failing string // the component whose start fails
		want    []string
		wantErr error
	}{
		{"all start", "", []string{
			"start listeners", "start store", "start authorizer", "start ready",
			"stop ready", "stop authorizer", "stop store", "stop listeners",
		}, nil},
		{"a failing start stops the started ones in reverse", "authorizer", []string{
			"start listeners", "start store", "start authorizer",
			"stop store", "stop listeners",
		}, errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			var comps []component
			for _, name := range []string{"listeners", "store", "authorizer", "ready"} {
				var err error
				if name == tt.failing {
					err = errBoom
				}
				comps = append(comps, r.component(name, err))
			}
			stopAll, err := startAll(t.Context(), comps, testLogger(t))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("startAll: %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				stopAll()
			}
			if diff := cmp.Diff(tt.want, r.events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestComponentsOrder pins the start order of a serving process; shutdown
// is its reverse (TestStartAllStopsInReverse).
func TestComponentsOrder(t *testing.T) {
	s := newServer(config.Default(), Deps{Rules: authz.DenyAllRules(), Logger: testLogger(t)})
	var got []string
	for _, c := range s.components() {
		got = append(got, c.name)
	}
	want := []string{
		"listeners", "store", "keyring", "authorizer", "feed position", "key index",
		"usage flusher", "feed follower", "feed pruner", "rules reload", "login app", "ready",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("start order (-want +got):\n%s", diff)
	}
}
