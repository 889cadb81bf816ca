package loadgen

import (
	"math/bits"
	"time"
)

// histogram records durations in log-linear buckets: 16 per power of two
// of nanoseconds, so a quantile is within ~6% of the truth, in fixed memory
// however long the run.
type histogram struct {
	buckets [64 * 16]int64
	count   int64
	max     int64
}

func (h *histogram) add(d time.Duration) {
	ns := max(int64(d), 1)
	h.buckets[bucketOf(ns)]++
	h.count++
	h.max = max(h.max, ns)
}

func bucketOf(ns int64) int {
	e := 63 - bits.LeadingZeros64(uint64(ns)) // floor(log2 ns)
	if e < 4 {
		return int(ns)
	}
	sub := (ns >> (e - 4)) & 15 // the 4 bits after the leading one
	return e*16 + int(sub)
}

// bucketValue is the lower bound of a bucket, in nanoseconds.
func bucketValue(b int) int64 {
	e, sub := b/16, int64(b%16)
	if e < 4 {
		return int64(b)
	}
	return (16 + sub) << (e - 4)
}

func (h *histogram) merge(o *histogram) {
	for i, v := range o.buckets {
		h.buckets[i] += v
	}
	h.count += o.count
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile in microseconds.
func (h *histogram) quantile(q float64) float64 {
	if h.count == 0 {
		return 0
	}
	rank := int64(q * float64(h.count))
	var seen int64
	for i, v := range h.buckets {
		seen += v
		if seen > rank {
			return float64(bucketValue(i)) / 1e3
		}
	}
	return float64(h.max) / 1e3
}
