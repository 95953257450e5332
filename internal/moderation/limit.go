package moderation

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/strangerchat/stranger/internal/identity"
)

// maxTracked bounds the identities a limiterSet remembers at once. Past
// it (after dropping the idle ones) a new identity is refused rather than
// tracked: a flood of addresses must not grow memory without bound, and
// failing closed is what a limit against abuse should do.
const maxTracked = 100_000

// limiterSet is one token bucket per identity, in this node's memory.
// Time comes from the caller (the Service's clock), so tests use a fake
// clock. Its mutex guards the map and the buckets.
type limiterSet struct {
	every time.Duration // one token back per every
	burst int

	mu sync.Mutex
	m  map[identity.Hash]*rate.Limiter
}

func newLimiterSet(every time.Duration, burst int) *limiterSet {
	return &limiterSet{every: every, burst: burst, m: map[identity.Hash]*rate.Limiter{}}
}

// get returns h's bucket, creating it; nil when the set is full.
func (l *limiterSet) get(h identity.Hash, now time.Time) *rate.Limiter {
	if lim, ok := l.m[h]; ok {
		return lim
	}
	if len(l.m) >= maxTracked {
		l.pruneLocked(now)
		if len(l.m) >= maxTracked {
			return nil
		}
	}
	lim := rate.NewLimiter(rate.Every(l.every), l.burst)
	l.m[h] = lim
	return lim
}

// take takes one of h's tokens; false when there is none.
func (l *limiterSet) take(h identity.Hash, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.get(h, now)
	return lim != nil && lim.AllowN(now, 1)
}

// empty reports whether h has no token left, without taking one.
func (l *limiterSet) empty(h identity.Hash, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[h]
	if !ok {
		return len(l.m) >= maxTracked
	}
	return lim.TokensAt(now) < 1
}

// prune forgets the identities whose bucket is full again: they are as
// if never seen.
func (l *limiterSet) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked(now)
}

func (l *limiterSet) pruneLocked(now time.Time) {
	for h, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, h)
		}
	}
}

func (l *limiterSet) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
