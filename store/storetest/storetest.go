// Package storetest opens real stores for tests: the embedded FerretDB in a
// temporary directory, the same server `usher serve` runs.
package storetest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/usher-dev/usher/internal/seal"
	"github.com/usher-dev/usher/store"
)

// Open starts an embedded store in a fresh temporary directory and closes
// it when the test ends. now may be nil for the real clock.
func Open(t testing.TB, now func() time.Time) *store.Store {
	t.Helper()
	return OpenDir(t, ShortTempDir(t), now)
}

// OpenDir opens the embedded store in dir, closing it when the test ends.
func OpenDir(t testing.TB, dir string, now func() time.Time) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, store.Options{DataDir: dir, Serve: true, Now: now, MasterKey: MasterKey(t),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// MasterKeyText is the master key of test stores, in the form operators
// give it.
const MasterKeyText = "dXNoZXItdGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzISE="

// MasterKey returns the master key of test stores.
func MasterKey(t testing.TB) seal.Key {
	t.Helper()
	k, err := seal.ParseKey(MasterKeyText)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ShortTempDir returns a temporary directory with a path short enough for
// a Unix socket inside it; t.TempDir paths of long test names are not.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "usher")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
