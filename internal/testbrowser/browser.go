// Package testbrowser runs Debian's Chromium headless for end-to-end
// tests, driven from Go with chromedp.
package testbrowser

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// startTimeout bounds the browser's start (about 1.3 s on 2 cores).
const startTimeout = 30 * time.Second

// New starts a headless Chromium with a fresh profile for the test and
// returns the chromedp context of its first tab; run actions with
// chromedp.Run or chromedp.Do. The browser stops when the test ends. A
// machine without Debian's chromium fails the test: it never skips.
func New(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: run `apt-get install -y --no-install-recommends chromium` (.ci/run does); the browser tests drive a real browser")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// Start the browser now, so that a browser that cannot start fails
	// here with its reason rather than in the test's first step.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium (%s): %v", path, err)
		}
	case <-time.After(startTimeout):
		t.Fatalf("chromium (%s) did not start within %v", path, startTimeout)
	}
	return ctx
}
