// Package clock lets code whose rules depend on time (the interest timeout,
// the resume grace period, report memory) take time as a dependency, so tests
// advance a fake clock instead of sleeping.
package clock

import "time"

// Clock is the time source and timer factory.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d has passed on this clock.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether it did.
	Stop() bool
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// AfterFuncAt calls f at time t on c (at once if t has passed). With a fake
// clock this is exact even if the clock moves between the caller's reading
// of it and the call, which AfterFunc(t.Sub(c.Now())) is not.
func AfterFuncAt(c Clock, t time.Time, f func()) Timer {
	if a, ok := c.(interface {
		AfterFuncAt(time.Time, func()) Timer
	}); ok {
		return a.AfterFuncAt(t, f)
	}
	return c.AfterFunc(t.Sub(c.Now()), f)
}
