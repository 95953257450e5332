package loadgen

import (
	"context"
	"encoding/json"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strangerchat/stranger/internal/pow"
)

// solvePow solves the proof-of-work challenge raw (the JSON value of a
// frame's pow) as a browser would, one hash after another, and records
// the solve's wall time and CPU time. The payload is "" if raw is not a
// challenge or has no solution; the server then answers pow_required.
func (r *runner) solvePow(raw []byte) string {
	var ch pow.Challenge
	if err := json.Unmarshal(raw, &ch); err != nil {
		r.stats.errorKind("bad_pow_challenge")
		return ""
	}
	// The solve runs on one OS thread, so that thread's CPU clock is the
	// solve's CPU time.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	start := time.Now()
	payload, _, err := pow.Solve(context.Background(), ch)
	r.stats.powSolve.Record(time.Since(start))
	r.stats.powCPU.Add(int64(threadCPU() - cpu0))
	if err != nil {
		r.stats.errorKind("pow_unsolvable")
		return ""
	}
	return payload
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// appendPow adds the session's proof of work to a join or next being built,
// once: the server asks for it only before the first.
func (c *client) appendPow(b []byte) []byte {
	if c.pow == "" {
		return b
	}
	b = append(b, `,"pow":"`...)
	b = append(b, c.pow...)
	c.pow = ""
	return append(b, '"')
}
