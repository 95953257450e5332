package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// childStartDelay gives the children time to start before the common
// start instant, so they all ramp together.
const childStartDelay = 500 * time.Millisecond

type childProc struct {
	cmd  *exec.Cmd
	last Progress
	res  *Result
	err  error
}

// runProcs runs the clients in n child processes (this binary with --child)
// and merges what they report. The parent samples the server and prints
// the summed progress.
func runProcs(ctx context.Context, cfg Config, n int, m *monitor) (*Result, error) {
	exe, err := exePath()
	if err != nil {
		return nil, err
	}
	startAt := time.Now().Add(childStartDelay)
	deadline := startAt.Add(cfg.Duration)
	var mu sync.Mutex
	children := make([]*childProc, n)
	var readers sync.WaitGroup
	signalAll := func() {
		for _, c := range children {
			if c != nil && c.cmd.Process != nil {
				c.cmd.Process.Signal(syscall.SIGINT) // an exited child just refuses it
			}
		}
	}
	for i := range n {
		cmd := exec.Command(exe, cfg.childArgs(i, n, startAt)...)
		cmd.Stderr = m.out
		out, err := cmd.StdoutPipe()
		if err != nil {
			signalAll()
			return nil, fmt.Errorf("child %d: %w", i, err)
		}
		if err := cmd.Start(); err != nil {
			signalAll()
			return nil, fmt.Errorf("start child %d: %w", i, err)
		}
		c := &childProc{cmd: cmd}
		children[i] = c
		readers.Go(func() {
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 16<<20)
			for sc.Scan() {
				var l childLine
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					mu.Lock()
					c.err = fmt.Errorf("child %d: bad output line: %w", i, err)
					mu.Unlock()
					continue
				}
				mu.Lock()
				if l.Progress != nil {
					c.last = *l.Progress
				}
				if l.Result != nil {
					c.res = l.Result
				}
				mu.Unlock()
			}
		})
	}
	m.stop = func() {
		m.endLocked()
		signalAll()
	}

	done := make(chan struct{})
	go func() {
		readers.Wait()
		for _, c := range children {
			if err := c.cmd.Wait(); err != nil && c.err == nil {
				mu.Lock()
				c.err = fmt.Errorf("child %d: %w", c.cmd.Process.Pid, err)
				mu.Unlock()
			}
		}
		close(done)
	}()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	rampTimer := time.NewTimer(time.Until(startAt.Add(cfg.rampDuration())))
	defer rampTimer.Stop()
	// Sample just before the children close their connections.
	endTimer := time.NewTimer(time.Until(deadline.Add(-20 * time.Millisecond)))
	defer endTimer.Stop()
	killTimer := time.NewTimer(time.Until(deadline.Add(30 * time.Second)))
	defer killTimer.Stop()
	ctxDone := ctx.Done()
wait:
	for {
		select {
		case <-tick.C:
			var p Progress
			mu.Lock()
			for _, c := range children {
				p = p.Add(c.last)
			}
			mu.Unlock()
			p.Elapsed = time.Since(startAt).Seconds()
			m.tick(p)
		case <-rampTimer.C:
			m.rampEnd()
		case <-endTimer.C:
			m.end()
		case <-ctxDone:
			ctxDone = nil
			m.end()
			signalAll()
		case <-killTimer.C:
			for _, c := range children {
				c.cmd.Process.Kill()
			}
		case <-done:
			break wait
		}
	}

	var res *Result
	for i, c := range children {
		if c.res == nil {
			err := c.err
			if err == nil {
				err = fmt.Errorf("child %d exited without a result", i)
			}
			return nil, err
		}
		if res == nil {
			res = c.res
		} else {
			res.Merge(c.res)
		}
	}
	return res, nil
}
