package authz

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// BenchmarkKeyIndexMemory reports what the key index holds for a million
// keys (the README's figure), and what one lookup costs.
//
//	go test ./authz -run '^$' -bench BenchmarkKeyIndexMemory -benchtime 1x
func BenchmarkKeyIndexMemory(b *testing.B) {
	const keys = 1_000_000
	var ms runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		x := newKeyIndex(nil, time.Second)
		for i := range keys {
			x.add(fmt.Sprintf("tenant%d", i%100), fmt.Sprintf("%016d", i))
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/(1<<20), "MiB/1M-keys")
		b.ReportMetric(float64(ms.HeapAlloc-before)/keys, "B/key")
		runtime.KeepAlive(x)
	}
}

// BenchmarkKeyIndexLookup is the cost the index adds to every API key
// request: a hash and a lookup in a million keys, from parallel callers.
func BenchmarkKeyIndexLookup(b *testing.B) {
	x := newKeyIndex(nil, time.Second)
	for i := range 1_000_000 {
		x.add("acme", fmt.Sprintf("%016d", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !x.has(x.hash("acme", "0000000000054321")) {
				b.Fatal("indexed key missing")
			}
		}
	})
}

func TestCacheConfigMaxLoads(t *testing.T) {
	c := DefaultCacheConfig()
	c.MaxLoads = -1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "cache.max_loads") {
		t.Errorf("Validate(max_loads -1) = %v, want an error naming cache.max_loads", err)
	}
	c.MaxLoads = 0
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(max_loads 0) = %v, want nil (the default)", err)
	}
	k, err := newCache(c, time.Now, nil, func(int) int64 { return 1 })
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	if n := cap(k.loadSlots); n != DefaultMaxLoads {
		t.Errorf("max_loads 0 gives %d load slots, want %d", n, DefaultMaxLoads)
	}
}
