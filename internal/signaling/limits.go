package signaling

import (
	"time"
)

// bucket is a token bucket: rate tokens per second up to burst. It is not
// safe for concurrent use; the session's mutex guards it.
type bucket struct {
	tokens float64
	last   time.Time
}

// take spends one token if there is one.
func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	b.refill(now, rate, burst)
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

func (b *bucket) refill(now time.Time, rate float64, burst int) {
	if b.last.IsZero() {
		b.tokens, b.last = float64(burst), now
		return
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens += dt * rate
		if b.tokens > float64(burst) {
			b.tokens = float64(burst)
		}
		b.last = now
	}
}

// abuse counts frames refused for the rate budget; it drains at the same
// rate. A session whose count passes its limit is sending far over budget
// and is closed with 1008.
type abuse struct {
	level float64
	last  time.Time
}

func (a *abuse) add(now time.Time, rate float64) float64 {
	if !a.last.IsZero() {
		a.level -= now.Sub(a.last).Seconds() * rate
		if a.level < 0 {
			a.level = 0
		}
	}
	a.last = now
	a.level++
	return a.level
}
