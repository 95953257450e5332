package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sync"
	"time"
)

// fdReserve is the open files a load process keeps for itself (stdio,
// epoll, /proc reads) below its limit.
const fdReserve = 64

// Main runs stranger-load with the command line args (without the program
// name) and returns the exit status: 0 for a run without errors, 1 for a
// run with errors or a failure, 2 for a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := Parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "stranger-load: %v\n", err)
		return 2
	}
	fdLimit, err := raiseFDLimit()
	if err != nil {
		fmt.Fprintf(stderr, "stranger-load: %v\n", err)
		return 1
	}
	if cfg.Child {
		return runChild(ctx, cfg, fdLimit, stdout)
	}
	perProc := int(fdLimit) - fdReserve
	procs := cfg.Procs
	if procs == 0 {
		procs = max(1, (cfg.Clients+perProc-1)/perProc)
	}
	if cfg.Clients/procs > perProc {
		fmt.Fprintf(stderr, "stranger-load: warning: %d clients per process exceed the open-file limit %d; use --procs %d\n",
			cfg.Clients/procs, fdLimit, (cfg.Clients+perProc-1)/perProc)
	}

	m, err := newMonitor(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "stranger-load: %v\n", err)
		return 1
	}
	var res *Result
	if cfg.CPUProfile != "" {
		if procs != 1 {
			fmt.Fprintf(stderr, "stranger-load: --cpuprofile needs --procs 1\n")
			return 2
		}
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			fmt.Fprintf(stderr, "stranger-load: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "stranger-load: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if procs == 1 {
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		m.stop = func() { cancel(errMaxErrors) }
		r := newRunner(cfg)
		res = r.run(ctx, time.Now(), hooks{progress: m.tick, rampEnd: m.rampEnd, beforeClose: m.end})
		res.FDLimit = fdLimit
	} else {
		res, err = runProcs(ctx, cfg, procs, m)
		if err != nil {
			fmt.Fprintf(stderr, "stranger-load: %v\n", err)
			return 1
		}
	}
	m.finish(res)

	if cfg.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "stranger-load: %v\n", err)
			return 1
		}
	} else {
		writeReport(stdout, res)
	}
	if res.Total.Errors > 0 {
		return 1
	}
	return 0
}

// runChild runs this process's share and reports to the parent as JSON
// lines on stdout: {"progress":...} every second, then {"result":...}.
func runChild(ctx context.Context, cfg Config, fdLimit uint64, stdout io.Writer) int {
	var mu sync.Mutex
	enc := json.NewEncoder(stdout)
	emit := func(v any) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(v) // the parent notices a broken pipe by our exit
	}
	startAt := time.Now()
	if cfg.StartAt != 0 {
		startAt = time.Unix(0, cfg.StartAt)
	}
	r := newRunner(cfg)
	res := r.run(ctx, startAt, hooks{progress: func(p Progress) { emit(childLine{Progress: &p}) }})
	res.FDLimit = fdLimit
	emit(childLine{Result: res})
	return 0
}

// childLine is one line a child writes.
type childLine struct {
	Progress *Progress `json:"progress,omitempty"`
	Result   *Result   `json:"result,omitempty"`
}

// monitor prints the progress line, samples the server from /proc and
// enforces --max-errors.
type monitor struct {
	cfg  Config
	out  io.Writer
	stop func() // ends the run early (max-errors)

	mu         sync.Mutex
	last       Progress
	peakConns  int64
	base       procSample // before connecting
	rampSample procSample
	endSample  procSample
	peakRSS    uint64
	sampled    bool
	mach0      [2]float64 // machine busy, total at start
	mach       [2]float64 // during the run, set by end
	stopped    bool
	ended      bool
	sampleErr  error
}

func newMonitor(cfg Config, out io.Writer) (*monitor, error) {
	m := &monitor{cfg: cfg, out: out}
	if b, t, err := machineCPU("/proc"); err == nil {
		m.mach0 = [2]float64{b, t}
	}
	if len(cfg.PIDs) > 0 {
		s, err := readProcs("/proc", cfg.PIDs)
		if err != nil {
			return nil, fmt.Errorf("--pid: %w", err)
		}
		if len(cfg.URLs) > len(cfg.PIDs) {
			fmt.Fprintf(out, "stranger-load: warning: %d URLs but %d --pid: per-message and per-connection server figures assume the sampled processes serve every client\n", len(cfg.URLs), len(cfg.PIDs))
		}
		m.base, m.rampSample, m.peakRSS, m.sampled = s, s, s.RSSKiB, true
	}
	return m, nil
}

func (m *monitor) sample() (procSample, bool) {
	if !m.sampled {
		return procSample{}, false
	}
	s, err := readProcs("/proc", m.cfg.PIDs)
	if err != nil {
		m.sampleErr = err
		return procSample{}, false
	}
	m.peakRSS = max(m.peakRSS, s.RSSKiB)
	return s, true
}

// tick is called once a second with the cumulative progress.
func (m *monitor) tick(p Progress) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dt := p.Elapsed - m.last.Elapsed
	if dt <= 0 {
		dt = 1
	}
	m.peakConns = max(m.peakConns, p.Conns)
	line := fmt.Sprintf("[%5.0fs] conns %d  waiting %d  chatting %d  matches/s %.0f  msgs/s %.0f  errors %d",
		p.Elapsed, p.Conns, p.Waiting, p.Chatting,
		float64(p.Matched-m.last.Matched)/2/dt, float64(p.Relayed-m.last.Relayed)/dt, p.Errors)
	if s, ok := m.sample(); ok {
		line += fmt.Sprintf("  server rss %.1f MiB", float64(s.RSSKiB)/1024)
	}
	fmt.Fprintln(m.out, line)
	m.last = p
	if m.cfg.MaxErrors > 0 && p.Errors >= uint64(m.cfg.MaxErrors) && !m.stopped && m.stop != nil {
		m.stopped = true
		fmt.Fprintf(m.out, "stranger-load: %d errors (--max-errors %d): stopping\n", p.Errors, m.cfg.MaxErrors)
		m.stop()
	}
}

func (m *monitor) rampEnd() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sample(); ok {
		m.rampSample = s
	}
}

func (m *monitor) end() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.endLocked()
}

// endLocked takes the end sample once: the first call is the one before the
// connections close.
func (m *monitor) endLocked() {
	if m.ended {
		return
	}
	m.ended = true
	if b, t, err := machineCPU("/proc"); err == nil && m.mach0[1] > 0 {
		m.mach = [2]float64{b - m.mach0[0], t - m.mach0[1]}
	}
	if s, ok := m.sample(); ok {
		m.endSample = s
	} else {
		m.endSample = m.base
	}
}

// finish adds the server figures to the result.
func (m *monitor) finish(res *Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.peakConns > 0 && res.Procs > 1 {
		res.PeakConns = m.peakConns // summed per second: not the sum of peaks
	}
	if m.stopped {
		res.StoppedBy = errMaxErrors.Error()
	}
	res.MachineBusy, res.MachineTotal = m.mach[0], m.mach[1]
	if !m.sampled {
		return
	}
	if m.sampleErr != nil {
		fmt.Fprintf(m.out, "stranger-load: sampling the server: %v\n", m.sampleErr)
	}
	res.Server = &ServerStats{
		PIDs:           m.cfg.PIDs,
		RSSBaselineKiB: m.base.RSSKiB,
		RSSPeakKiB:     m.peakRSS,
		RSSEndKiB:      m.endSample.RSSKiB,
		CPUSeconds:     m.endSample.CPU - m.base.CPU,
		SteadyCPU:      m.endSample.CPU - m.rampSample.CPU,
	}
}

// exePath is the binary children are started from.
func exePath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own executable for --procs: %w", err)
	}
	return p, nil
}
