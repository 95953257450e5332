package loadgen

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// hooks let the caller watch a run: progress every second, the end of the
// ramp, and the moment before connections close (for /proc samples that
// must see the connections still held).
type hooks struct {
	progress    func(Progress)
	rampEnd     func()
	beforeClose func()
}

// Stop causes, reported as Result.StoppedBy.
var (
	errMaxErrors   = errors.New("max-errors")
	errInterrupted = errors.New("interrupted")
)

type runner struct {
	cfg     Config
	dialer  *websocket.Dialer
	src     *srcDialer
	header  http.Header
	stats   *stats
	payload *payloads
	slots   []slot
	started atomic.Int64 // slots launched

	stuckAfter time.Duration // see defaultStuckAfter
}

type slot struct{ cur atomic.Pointer[client] }

// Client-side socket buffers. The read buffer only holds frame headers and
// small frames (larger payloads are read straight into a pooled frame
// buffer); the write buffer comes from a pool and is held only while a
// frame is written, so an idle client costs no write buffer at all. 8 KiB
// fits the largest frame (the SDP) in one write.
const (
	readBufferSize  = 1024
	writeBufferSize = 8 << 10
)

func newRunner(cfg Config) *runner {
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	src := newSrcDialer(cfg.Src, cfg.URLs)
	r := &runner{
		cfg: cfg,
		src: src,
		dialer: &websocket.Dialer{
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := src.DialContext(ctx, network, addr)
				if err != nil || !cfg.Batch {
					return c, err
				}
				return &corkConn{Conn: c}, nil
			},
			HandshakeTimeout: dialTimeout,
			ReadBufferSize:   readBufferSize,
			WriteBufferSize:  writeBufferSize,
			WriteBufferPool:  &sync.Pool{},
		},
		stats:   newStats(),
		payload: newPayloads(rand.New(rand.NewPCG(seed, 0))),
		slots:   make([]slot, cfg.Clients),

		stuckAfter: defaultStuckAfter,
	}
	r.cfg.Seed = seed
	if cfg.Origin != "" {
		r.header = http.Header{"Origin": {cfg.Origin}}
	}
	return r
}

// run connects the clients from startAt on, keeps them going until
// startAt+Duration or until ctx ends, and returns what they saw.
func (r *runner) run(ctx context.Context, startAt time.Time, h hooks) *Result {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	cfg := r.cfg
	deadline := startAt.Add(cfg.Duration)
	ramp := cfg.rampDuration()

	select {
	case <-time.After(time.Until(startAt)):
	case <-ctx.Done():
	}
	cpu0 := selfCPU()

	var wg sync.WaitGroup
	wg.Go(func() { r.launch(runCtx, startAt, ramp, &wg) })
	if cfg.Churn > 0 {
		wg.Go(func() { r.churn(runCtx) })
	}

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	rampTimer := time.NewTimer(time.Until(startAt.Add(ramp)))
	defer rampTimer.Stop()
	end := time.NewTimer(time.Until(deadline))
	defer end.Stop()
	var steadyBase Counts
	var steadyAt time.Time // zero until the ramp ends
	stoppedBy := "duration"
loop:
	for {
		select {
		case <-tick.C:
			if h.progress != nil {
				h.progress(r.stats.progress(time.Since(startAt)))
			}
		case <-rampTimer.C:
			steadyBase, steadyAt = r.stats.counts(), time.Now()
			if h.rampEnd != nil {
				h.rampEnd()
			}
		case <-end.C:
			break loop
		case <-ctx.Done():
			stoppedBy = errInterrupted.Error()
			if errors.Is(context.Cause(ctx), errMaxErrors) {
				stoppedBy = errMaxErrors.Error()
			}
			break loop
		}
	}
	stopAt := time.Now()
	loadCPU := selfCPU() - cpu0
	res := r.stats.result()
	res.EndConns = r.stats.conns.Load()
	if h.beforeClose != nil {
		h.beforeClose()
	}
	cancel() // every client closes with 1000
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}

	res.Clients = cfg.Clients
	res.Procs = 1
	res.Idle = cfg.Idle
	res.Elapsed = stopAt.Sub(startAt).Seconds()
	res.RampS = min(ramp, stopAt.Sub(startAt)).Seconds()
	if !steadyAt.IsZero() {
		res.SteadyS = stopAt.Sub(steadyAt).Seconds()
		res.Steady = res.Total.sub(steadyBase)
	}
	res.StoppedBy = stoppedBy
	res.Sources = r.src.sourcesUsed()
	res.Payload = len(r.payload.offerSDP)
	res.LoadCPU = loadCPU
	return res
}

// launch starts client i at startAt + ramp*i/clients, checking every few
// milliseconds so a fast ramp does not mean one timer per client.
func (r *runner) launch(ctx context.Context, startAt time.Time, ramp time.Duration, wg *sync.WaitGroup) {
	n := r.cfg.Clients
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	i := 0
	for {
		el := time.Since(startAt)
		due := n
		if ramp > 0 && el < ramp {
			due = int(float64(n) * float64(el) / float64(ramp))
		}
		for ; i < due; i++ {
			slot := i // i is shared by the closures
			wg.Go(func() { r.slotLoop(ctx, slot) })
		}
		r.started.Store(int64(i))
		if i >= n {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// slotLoop keeps one client slot connected: a new session after churn or
// after a failure (with a short backoff, so a dead server is not hammered).
func (r *runner) slotLoop(ctx context.Context, i int) {
	rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(i)+1))
	url := r.cfg.URLs[i%len(r.cfg.URLs)]
	s := &r.slots[i]
	for ctx.Err() == nil {
		c := newClient(r, rng)
		s.cur.Store(c)
		err := c.session(ctx, url)
		s.cur.Store(nil)
		if err != nil {
			backoff := 250*time.Millisecond + rand.N(750*time.Millisecond)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
		}
	}
}

// churn closes random connected clients at --churn per second; their slots
// reconnect as fresh sessions.
func (r *runner) churn(ctx context.Context) {
	const step = 10 * time.Millisecond
	tick := time.NewTicker(step)
	defer tick.Stop()
	rng := rand.New(rand.NewPCG(r.cfg.Seed, 0))
	var owed float64
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		owed += r.cfg.Churn * step.Seconds()
		for ; owed >= 1; owed-- {
			n := int(r.started.Load())
			if n == 0 {
				break
			}
			for range 10 { // a few tries to find a connected one
				if c := r.slots[rng.IntN(n)].cur.Load(); c != nil && c.connected() {
					r.stats.churned.Add(1)
					go c.closeNormal()
					break
				}
			}
		}
	}
}

func (c *client) connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil && !c.closing && c.state >= 0
}
