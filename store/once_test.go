package store_test

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usher-dev/usher/store"
)

func mustMark(t *testing.T, s *store.Store, kind, key string, expires time.Time) bool {
	t.Helper()
	first, err := s.MarkOnce(t.Context(), kind, key, expires)
	if err != nil {
		t.Fatalf("MarkOnce(%s): %v", kind, err)
	}
	return first
}

func TestMarkOnce(t *testing.T) {
	s, _ := openStore(t)
	exp := t0.Add(10 * time.Minute)
	const code = "authorization-code-secret"
	if !mustMark(t, s, "code", code, exp) {
		t.Error("first MarkOnce = false, want true")
	}
	if mustMark(t, s, "code", code, exp) {
		t.Error("second MarkOnce = true, want false")
	}
	if !mustMark(t, s, "state", code, exp) {
		t.Error("MarkOnce of the same key under another kind = false, want true")
	}
	for name, kk := range map[string][2]string{"no kind": {"", "k"}, "no key": {"code", ""}, "long kind": {string(bytes.Repeat([]byte("k"), 65)), "k"}} {
		if _, err := s.MarkOnce(t.Context(), kk[0], kk[1], exp); err == nil {
			t.Errorf("%s: MarkOnce succeeded, want an error", name)
		}
	}

	// Keys may be secrets: only their digest is stored.
	docs, err := store.RawDocuments(t.Context(), s, "once_marks")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if bytes.Contains(d, []byte(code)) {
			t.Errorf("a stored mark holds its key: %s", d)
		}
	}
}

func TestPruneOnceMarks(t *testing.T) {
	s, _ := openStore(t)
	mustMark(t, s, "state", "old", t0.Add(time.Minute))
	mustMark(t, s, "state", "new", t0.Add(time.Hour))
	n, err := s.PruneOnceMarks(t.Context(), t0.Add(30*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("PruneOnceMarks = %d, %v; want 1, nil", n, err)
	}
	if mustMark(t, s, "state", "new", t0.Add(time.Hour)) {
		t.Error("a mark not yet expired was pruned")
	}
	if !mustMark(t, s, "state", "old", t0.Add(time.Hour)) {
		t.Error("the expired mark was not pruned")
	}
	if _, err := s.PruneOnceMarks(t.Context(), time.Time{}); err == nil {
		t.Error("PruneOnceMarks(zero time) succeeded, want an error")
	}
}

// Catalogue row 50 and SECURITY.md "Store atomicity": of many concurrent
// marks of one flow state on FerretDB exactly one is first.
func TestMarkOnceRace(t *testing.T) {
	s, _ := openStore(t)
	for round := range 3 {
		key := "state-" + string(rune('a'+round))
		var firsts atomic.Int64
		errs := make([]error, claimants)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range claimants {
			wg.Go(func() {
				<-start
				first, err := s.MarkOnce(t.Context(), "state", key, t0.Add(10*time.Minute))
				if first {
					firsts.Add(1)
				}
				errs[i] = err
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: mark %d: %v", round, i, err)
			}
		}
		if n := firsts.Load(); n != 1 {
			t.Fatalf("round %d: %d marks were first, want exactly 1", round, n)
		}
	}
}
