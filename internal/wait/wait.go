// Package wait sleeps in a way that a context can cut short.
package wait

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, and reports whether it waited all of d.
// A d of zero or less returns at once, reporting whether ctx is still live.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
