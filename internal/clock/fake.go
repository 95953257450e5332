package clock

import (
	"sort"
	"sync"
	"time"
)

// Fake is a manually advanced clock for tests. Timers fire synchronously,
// in deadline order, inside Advance, so a test knows that every consequence
// of the elapsed time has happened when Advance returns.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	nextID int
}

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

type fakeTimer struct {
	c       *Fake
	id      int
	at      time.Time
	f       func()
	stopped bool
	fired   bool
}

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d. Like time.AfterFunc, a timer that is
// due already (d <= 0) fires at once, in its own goroutine: a caller that
// computed d from an earlier reading of the clock must not wait for the
// next Advance.
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.afterLocked(c.now.Add(d), f)
}

// AfterFuncAt schedules f at t (see clock.AfterFuncAt).
func (c *Fake) AfterFuncAt(t time.Time, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.afterLocked(t, f)
}

func (c *Fake) afterLocked(at time.Time, f func()) Timer {
	c.nextID++
	t := &fakeTimer{c: c, id: c.nextID, at: at, f: f}
	if !at.After(c.now) {
		t.fired = true
		go f()
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Stop cancels the timer.
func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.stopped || t.fired {
		return false
	}
	t.stopped = true
	return true
}

// Advance moves the clock forward by d, firing due timers in order.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool {
			if c.timers[i].at.Equal(c.timers[j].at) {
				return c.timers[i].id < c.timers[j].id
			}
			return c.timers[i].at.Before(c.timers[j].at)
		})
		var due *fakeTimer
		kept := c.timers[:0]
		for _, t := range c.timers {
			if t.stopped || t.fired {
				continue
			}
			if due == nil && !t.at.After(end) {
				due = t
				continue
			}
			kept = append(kept, t)
		}
		c.timers = kept
		if due == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		due.fired = true
		if due.at.After(c.now) {
			c.now = due.at
		}
		c.mu.Unlock()
		due.f()
	}
}
