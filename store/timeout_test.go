package store_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usher-dev/usher/store"
	"github.com/usher-dev/usher/store/storetest"
)

// freezer is a loopback TCP proxy to the embedded store's socket that can
// stop passing bytes, as a connection that hangs without closing does.
type freezer struct {
	ln     net.Listener
	frozen atomic.Bool
	wg     sync.WaitGroup
}

func newFreezer(t *testing.T, socket string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", socket)
			if err != nil {
				_ = c.Close()
				continue
			}
			f.wg.Go(func() { f.pipe(up, c) })
			f.wg.Go(func() { f.pipe(c, up) })
		}
	})
	t.Cleanup(func() { _ = ln.Close(); f.wg.Wait() })
	return f
}

// pipe copies src to dst until either closes; while frozen it holds what
// it read, and it closes both ends when done.
func (f *freezer) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for f.frozen.Load() { // the test unfreezes before it ends
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestStoreCallOnAHungConnection: a call without a deadline of its own, on
// a connection that stopped answering, fails after the store's timeout
// instead of blocking its caller (a background loop) forever.
// Catalogue row 104 (docs/catalogue-map.md).
func TestStoreCallOnAHungConnection(t *testing.T) {
	t.Parallel()
	server := storetest.Open(t, nil)
	f := newFreezer(t, server.Embedded().Socket())
	s, err := store.Open(t.Context(), store.Options{URI: "mongodb://" + f.ln.Addr().String() + "/?directConnection=true",
		Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("open through the proxy: %v", err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	if _, err := s.LastChange(t.Context()); err != nil {
		t.Fatalf("LastChange before the hang: %v", err)
	}

	f.frozen.Store(true)
	defer f.frozen.Store(false)
	done := make(chan error, 1)
	go func() {
		_, err := s.LastChange(context.Background()) //nolint:usetesting // no deadline but the store's own
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("LastChange on a hung connection succeeded")
		}
	case <-time.After(10 * time.Second): // a bound for a loaded machine, far above the 300ms timeout
		t.Fatal("LastChange on a hung connection still blocks after 10s")
	}
}
