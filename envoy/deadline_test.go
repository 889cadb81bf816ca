package envoy

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDeadlineCtx covers catalogue row 104 (docs/catalogue-map.md).
func TestDeadlineCtx(t *testing.T) {
	t.Run("deadline passes without Done", func(t *testing.T) {
		var c deadlineCtx
		c.init(t.Context(), time.Millisecond)
		defer c.release()
		if d, ok := c.Deadline(); !ok || d != c.deadline {
			t.Fatalf("Deadline = %v, %v", d, ok)
		}
		for c.Err() == nil {
			time.Sleep(time.Millisecond) // bounded: the deadline is 1ms away
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) || c.started.Load() {
			t.Errorf("Err = %v, started %v; want DeadlineExceeded without a timer", c.Err(), c.started.Load())
		}
		<-c.Done()
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Errorf("after Done: Err = %v", c.Err())
		}
	})
	t.Run("Done closes at the deadline", func(t *testing.T) {
		var c deadlineCtx
		c.init(t.Context(), 5*time.Millisecond)
		defer c.release()
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("Done never closed")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Errorf("Err = %v", c.Err())
		}
	})
	t.Run("parent's earlier deadline wins", func(t *testing.T) {
		parent, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		defer cancel()
		var c deadlineCtx
		c.init(parent, time.Hour)
		defer c.release()
		if pd, _ := parent.Deadline(); c.deadline != pd {
			t.Errorf("deadline %v, want the parent's %v", c.deadline, pd)
		}
	})
	t.Run("parent cancel reaches it and its children", func(t *testing.T) {
		parent, cancel := context.WithCancel(t.Context())
		var c deadlineCtx
		c.init(parent, time.Hour)
		defer c.release()
		child, stop := context.WithTimeout(&c, time.Hour)
		defer stop()
		if c.Err() != nil || child.Err() != nil {
			t.Fatalf("before cancel: %v %v", c.Err(), child.Err())
		}
		cancel()
		<-child.Done()
		<-c.Done()
		if !errors.Is(c.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
			t.Errorf("Err = %v, child %v; want Canceled", c.Err(), child.Err())
		}
	})
	t.Run("release cancels", func(t *testing.T) {
		for _, started := range []bool{false, true} {
			var c deadlineCtx
			c.init(t.Context(), time.Hour)
			if started {
				_ = c.Done()
			}
			c.release()
			<-c.Done()
			if !errors.Is(c.Err(), context.Canceled) {
				t.Errorf("started %v: Err = %v, want Canceled", started, c.Err())
			}
		}
	})
	t.Run("values come from the parent", func(t *testing.T) {
		type key struct{}
		var c deadlineCtx
		c.init(context.WithValue(t.Context(), key{}, "v"), time.Hour)
		defer c.release()
		if c.Value(key{}) != "v" {
			t.Errorf("Value = %v", c.Value(key{}))
		}
	})
}
