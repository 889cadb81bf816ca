package login

import (
	"sync"
	"time"
)

// limiter counts events per key in fixed windows, in memory, per server
// process: a bound on guessing, not an exact quota (several servers each
// allow the limit). It holds at most maxKeys keys; when full it drops the
// keys whose window ended, and if none did it refuses new keys (fails
// closed) until some window ends, so that a flood of distinct keys can
// neither grow memory nor reset the counts it already has.
type limiter struct {
	mu      sync.Mutex
	limit   int
	window  time.Duration
	maxKeys int
	counts  map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newLimiter(limit int, per time.Duration, maxKeys int) *limiter {
	return &limiter{limit: limit, window: per, maxKeys: maxKeys, counts: map[string]*window{}}
}

// blocked reports whether key used up its limit in the current window.
func (l *limiter) blocked(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.counts[key]
	if !ok {
		return len(l.counts) >= l.maxKeys && !l.sweep(now)
	}
	if now.Sub(w.start) >= l.window {
		delete(l.counts, key)
		return false
	}
	return w.n >= l.limit
}

// add counts one event of key; it reports false when the key is over its
// limit (or cannot be counted).
func (l *limiter) add(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.counts[key]
	if ok && now.Sub(w.start) >= l.window {
		ok = false
	}
	if !ok {
		if _, old := l.counts[key]; !old && len(l.counts) >= l.maxKeys && !l.sweep(now) {
			return false
		}
		w = &window{start: now}
		l.counts[key] = w
	}
	w.n++
	return w.n <= l.limit
}

// sweep drops every ended window and reports whether there is room now.
func (l *limiter) sweep(now time.Time) bool {
	for k, w := range l.counts {
		if now.Sub(w.start) >= l.window {
			delete(l.counts, k)
		}
	}
	return len(l.counts) < l.maxKeys
}
