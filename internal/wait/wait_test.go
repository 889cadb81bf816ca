package wait_test

import (
	"context"
	"testing"
	"time"

	"github.com/usher-dev/usher/internal/wait"
)

func TestSleep(t *testing.T) {
	t.Parallel()
	if !wait.Sleep(t.Context(), time.Millisecond) {
		t.Error("Sleep with a live context = false, want true")
	}
	if !wait.Sleep(t.Context(), 0) {
		t.Error("Sleep(0) with a live context = false, want true")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// An hour: only the cancelled context can end it.
	if wait.Sleep(ctx, time.Hour) {
		t.Error("Sleep with a cancelled context = true, want false")
	}
	if wait.Sleep(ctx, 0) {
		t.Error("Sleep(0) with a cancelled context = true, want false")
	}
}
