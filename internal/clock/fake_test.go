package clock

import (
	"sync"
	"testing"
	"time"
)

func TestFakeFiresInDeadlineOrderInsideAdvance(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	var mu sync.Mutex
	var got []string
	rec := func(s string) func() {
		return func() { mu.Lock(); got = append(got, s); mu.Unlock() }
	}
	c.AfterFunc(3*time.Second, rec("c"))
	c.AfterFunc(time.Second, rec("a"))
	stopped := c.AfterFunc(2*time.Second, rec("stopped"))
	c.AfterFunc(2*time.Second, func() {
		rec("b")()
		if now := c.Now(); !now.Equal(time.Unix(2, 0)) {
			t.Errorf("Now inside the timer = %v, want its deadline", now)
		}
	})
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once")
	}
	c.Advance(2500 * time.Millisecond)
	mu.Lock()
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("after 2.5 s fired %v, want [a b]", got)
	}
	mu.Unlock()
	c.Advance(time.Second)
	if len(got) != 3 || got[2] != "c" || !c.Now().Equal(time.Unix(3, 5e8)) {
		t.Fatalf("fired %v at %v", got, c.Now())
	}
}

func TestFakeDueTimerFiresAtOnce(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	done := make(chan struct{})
	tm := c.AfterFunc(-time.Second, func() { close(done) })
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("a timer that is already due did not fire without an Advance")
	}
	if tm.Stop() {
		t.Fatal("Stop after firing reported true")
	}
}

// A deadline read before an Advance still fires at that deadline: the
// caller's stale reading of the clock does not make the timer late.
func TestFakeAfterFuncAtIsAbsolute(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	deadline := c.Now().Add(5 * time.Second)
	c.Advance(3 * time.Second) // the clock moves before the timer is armed
	fired := make(chan struct{})
	AfterFuncAt(c, deadline, func() { close(fired) })
	c.Advance(2 * time.Second)
	select {
	case <-fired:
	default:
		t.Fatal("timer at an absolute deadline did not fire when the clock reached it")
	}
	if got := AfterFuncAt(Real{}, time.Now().Add(time.Hour), func() {}); !got.Stop() {
		t.Fatal("real clock: AfterFuncAt did not schedule")
	}
}
