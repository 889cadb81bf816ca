package authz_test

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usher-dev/usher/authz"
)

// The soak (security catalogue row 132): steady mixed load with the
// process's goroutines, heap, RSS and open files sampled; none may grow.
// `make test` runs it for a few seconds; `make soak` for minutes:
//
//	go test ./authz -run '^TestSoak$' -soak 2m -v
var soakFor = flag.Duration("soak", 0, "run TestSoak for this long (0: the test-sized 3s)")

// soakSample is one reading of the process.
type soakSample struct {
	goroutines int
	heap       uint64 // HeapInuse
	rss        uint64 // resident set, 0 where /proc is missing
	fds        int    // open files, -1 where /proc is missing
}

func sampleProcess() soakSample {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s := soakSample{goroutines: runtime.NumGoroutine(), heap: m.HeapInuse, fds: -1}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				s.rss = pages * uint64(os.Getpagesize())
			}
		}
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.fds = len(ents)
	}
	return s
}

// soakPeak is the largest of each reading in samples.
func soakPeak(samples []soakSample) soakSample {
	var p soakSample
	p.fds = -1
	for _, s := range samples {
		p.goroutines = max(p.goroutines, s.goroutines)
		p.heap = max(p.heap, s.heap)
		p.rss = max(p.rss, s.rss)
		p.fds = max(p.fds, s.fds)
	}
	return p
}

// TestSoak sends a steady mix — cached and cold API keys, usher tokens,
// IdP tokens, denials — from 8 callers, purging every cache every 100 ms
// so that keys, seats, signing keys and tokens are read again, and samples
// the process every 250 ms. The second half's peaks stay within a margin
// of the first half's: goroutines within 32, heap within 1.5x plus 8 MiB,
// RSS within 1.5x plus 32 MiB, open files within 16. Every answer is the
// one expected.
// Catalogue rows 125, 132 (docs/catalogue-map.md).
func TestSoak(t *testing.T) {
	dur := 3 * time.Second
	if *soakFor > 0 {
		dur = *soakFor
	}
	w := newWorld(t)
	x := newIdPWorld(t, w)
	keys := w.keyring(t)
	now := w.clock.Now()
	jwtReq := func(tok string) *authz.Request {
		r := envoyLikeRequest("")
		delete(r.Headers, "x-api-key")
		r.Headers["authorization"] = "Bearer " + tok
		return r
	}
	write := envoyLikeRequest(w.keys["acme/reader"])
	write.Method, write.Headers[":method"] = "POST", "POST"
	mix := []loadCase{
		{"apikey ci", envoyLikeRequest(w.keys["acme/ci"]), true},
		{"apikey multi", envoyLikeRequest(w.keys["acme/multi"]), true},
		{"missing permission", write, false},
		{"revoked key", envoyLikeRequest(w.keys["acme/revoked"]), false},
		{"unknown key", envoyLikeRequest(authz.FormatAPIKey("acme", "zzzzzzzzzzzzzzzz", []byte(strings.Repeat("q", 32)))), false},
		{"wrong secret", envoyLikeRequest(authz.FormatAPIKey("acme", "ciacmekeyaaaaaaa", []byte(strings.Repeat("w", 32)))), false},
		{"no credential", jwtReq(""), false},
	}
	// Distinct tokens: each is verified once per purge, then cached.
	for i := range 32 {
		mix = append(mix, loadCase{fmt.Sprintf("usher jwt %d", i),
			jwtReq(mintFor(t, keys["acme"], now, fmt.Sprintf("user-%d", i), map[string]string{"proj1": "editors"})), true})
	}
	for i, r := range x.pool(t, x.ec, jwtReq, 16) {
		mix = append(mix, loadCase{fmt.Sprintf("idp jwt %d", i), r, true})
	}
	for _, c := range mix {
		if d := w.check(t, c.r); d.Allowed() != c.allow {
			t.Fatalf("%s: %d %s", c.name, d.Status, d.Reason)
		}
	}

	var (
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		seq     atomic.Int64
		checks  atomic.Int64
		wrongMu sync.Mutex
		wrong   = map[string]int{}
	)
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				w.a.Apply(authz.Change{Kind: "soak-purge-all"})
			}
		}
	})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := mix[int(seq.Add(1))%len(mix)]
				d := w.a.Check(t.Context(), c.r)
				checks.Add(1)
				if d.Allowed() != c.allow {
					wrongMu.Lock()
					wrong[fmt.Sprintf("%s: %d %s", c.name, d.Status, d.Reason)]++
					wrongMu.Unlock()
				}
			}
		})
	}

	var samples []soakSample
	tick := time.NewTicker(250 * time.Millisecond)
	for end := time.Now().Add(dur); time.Now().Before(end); {
		<-tick.C
		samples = append(samples, sampleProcess())
	}
	tick.Stop()
	close(stop)
	wg.Wait()

	for what, n := range wrong {
		t.Errorf("%s, %d times", what, n)
	}
	if len(samples) < 4 {
		t.Fatalf("%d samples, want at least 4", len(samples))
	}
	first, second := soakPeak(samples[:len(samples)/2]), soakPeak(samples[len(samples)/2:])
	const mib = 1 << 20
	t.Logf("%d Checks in %v, %d samples; peaks first half, second half: goroutines %d, %d; heap %d, %d MiB; RSS %d, %d MiB; open files %d, %d",
		checks.Load(), dur, len(samples), first.goroutines, second.goroutines, first.heap/mib, second.heap/mib,
		first.rss/mib, second.rss/mib, first.fds, second.fds)
	if second.goroutines > first.goroutines+32 {
		t.Errorf("goroutines grew: %d in the first half, %d in the second", first.goroutines, second.goroutines)
	}
	if second.heap > first.heap*3/2+8*mib {
		t.Errorf("heap in use grew: %d MiB in the first half, %d MiB in the second", first.heap/mib, second.heap/mib)
	}
	if second.rss > first.rss*3/2+32*mib {
		t.Errorf("RSS grew: %d MiB in the first half, %d MiB in the second", first.rss/mib, second.rss/mib)
	}
	if second.fds > first.fds+16 {
		t.Errorf("open files grew: %d in the first half, %d in the second", first.fds, second.fds)
	}
}
