package caserver

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per SPIFFE identity in a bounded map: one
// identity flooding the CA exhausts only its own bucket. When the map is
// full, idle entries (whose bucket has refilled, so forgetting them changes
// nothing) go first, then the least recently seen.
type limiter struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	max   int
	items map[string]*limiterEntry
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(limit rate.Limit, burst, max int) *limiter {
	return &limiter{limit: limit, burst: burst, max: max, items: map[string]*limiterEntry{}}
}

func (l *limiter) allow(key string, now time.Time) bool {
	if l.limit == rate.Inf {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.items[key]
	if !ok {
		if len(l.items) >= l.max {
			l.evict(now)
		}
		e = &limiterEntry{lim: rate.NewLimiter(l.limit, l.burst)}
		l.items[key] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}

func (l *limiter) evict(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, e := range l.items {
		if e.lim.TokensAt(now) >= float64(l.burst) {
			delete(l.items, k)
			continue
		}
		if oldestKey == "" || e.seen.Before(oldest) {
			oldestKey, oldest = k, e.seen
		}
	}
	if len(l.items) >= l.max && oldestKey != "" {
		delete(l.items, oldestKey)
	}
}
