package loadgen

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// stats is what the clients of one process record, lock-free on the hot
// path. Gauges go up and down; counters only up.
type stats struct {
	conns, waiting, chatting atomic.Int64 // gauges
	peakConns                atomic.Int64

	connects      atomic.Uint64 // connections that got their welcome
	matched       atomic.Uint64 // matched frames received (two per match)
	relayedSignal atomic.Uint64 // signal frames received from a partner
	relayedChat   atomic.Uint64
	relayedTyping atomic.Uint64
	sent          atomic.Uint64 // frames sent
	peerLeft      atomic.Uint64
	churned       atomic.Uint64 // sessions closed by --churn
	errors        atomic.Uint64 // error frames + error kinds

	timeToMatch, signalLatency, chatLatency, connectLatency *Histogram
	powSolve                                                *Histogram   // wall time of one proof-of-work solve
	powCPU                                                  atomic.Int64 // CPU ns spent solving

	mu      sync.Mutex
	codes   map[string]uint64 // error frames by code
	kinds   map[string]uint64 // client-side failures by kind
	reason  map[string]uint64 // peer_left by reason
	crossed map[string]uint64 // refusals of frames that crossed the partner's leaving
	events  map[string]uint64 // notable client-side events that are not errors
}

func newStats() *stats {
	return &stats{
		timeToMatch: NewHistogram(), signalLatency: NewHistogram(),
		chatLatency: NewHistogram(), connectLatency: NewHistogram(), powSolve: NewHistogram(),
		codes: map[string]uint64{}, kinds: map[string]uint64{}, reason: map[string]uint64{}, crossed: map[string]uint64{}, events: map[string]uint64{},
	}
}

func (s *stats) addConn(d int64) {
	n := s.conns.Add(d)
	for {
		p := s.peakConns.Load()
		if n <= p || s.peakConns.CompareAndSwap(p, n) {
			return
		}
	}
}

// errorCode counts an `error` frame from the server; crossed ones (see
// client.handle) are counted apart and are not errors.
func (s *stats) errorCode(code []byte, crossed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if crossed {
		s.crossed[string(code)]++
		return
	}
	s.errors.Add(1)
	s.codes[string(code)]++
}

// errorKind counts a client-side failure (dial, unexpected close, ...).
func (s *stats) errorKind(kind string) {
	s.errors.Add(1)
	s.mu.Lock()
	s.kinds[kind]++
	s.mu.Unlock()
}

// event counts something worth knowing that is not an error.
func (s *stats) event(name string) {
	s.mu.Lock()
	s.events[name]++
	s.mu.Unlock()
}

func (s *stats) peerLeftReason(r []byte) {
	s.peerLeft.Add(1)
	s.mu.Lock()
	s.reason[string(r)]++
	s.mu.Unlock()
}

// Progress is a one-second snapshot: gauges now, counters since the start.
type Progress struct {
	Elapsed  float64 `json:"elapsed_s"`
	Conns    int64   `json:"conns"`
	Waiting  int64   `json:"waiting"`
	Chatting int64   `json:"chatting"`
	Matched  uint64  `json:"matched"`
	Relayed  uint64  `json:"relayed"`
	Errors   uint64  `json:"errors"`
}

func (s *stats) progress(elapsed time.Duration) Progress {
	return Progress{
		Elapsed: elapsed.Seconds(),
		Conns:   s.conns.Load(), Waiting: s.waiting.Load(), Chatting: s.chatting.Load(),
		Matched: s.matched.Load(),
		Relayed: s.relayedSignal.Load() + s.relayedChat.Load() + s.relayedTyping.Load(),
		Errors:  s.errors.Load(),
	}
}

// Add sums two progress snapshots of different processes.
func (p Progress) Add(o Progress) Progress {
	return Progress{
		Elapsed: max(p.Elapsed, o.Elapsed),
		Conns:   p.Conns + o.Conns, Waiting: p.Waiting + o.Waiting, Chatting: p.Chatting + o.Chatting,
		Matched: p.Matched + o.Matched, Relayed: p.Relayed + o.Relayed, Errors: p.Errors + o.Errors,
	}
}

// Counts are the counters of a time window.
type Counts struct {
	Connects      uint64 `json:"connects"`
	Matched       uint64 `json:"matched_frames"` // two per match
	RelayedSignal uint64 `json:"relayed_signal"`
	RelayedChat   uint64 `json:"relayed_chat"`
	RelayedTyping uint64 `json:"relayed_typing"`
	Sent          uint64 `json:"sent"`
	PeerLeft      uint64 `json:"peer_left"`
	Churned       uint64 `json:"churned"`
	Errors        uint64 `json:"errors"`
}

func (s *stats) counts() Counts {
	return Counts{
		Connects: s.connects.Load(), Matched: s.matched.Load(),
		RelayedSignal: s.relayedSignal.Load(), RelayedChat: s.relayedChat.Load(), RelayedTyping: s.relayedTyping.Load(),
		Sent: s.sent.Load(), PeerLeft: s.peerLeft.Load(), Churned: s.churned.Load(), Errors: s.errors.Load(),
	}
}

// Relayed is every frame that went from one client through the server to
// its partner.
func (c Counts) Relayed() uint64 { return c.RelayedSignal + c.RelayedChat + c.RelayedTyping }

// Matches is the number of chats started.
func (c Counts) Matches() float64 { return float64(c.Matched) / 2 }

func (c Counts) add(o Counts) Counts {
	return Counts{
		Connects: c.Connects + o.Connects, Matched: c.Matched + o.Matched,
		RelayedSignal: c.RelayedSignal + o.RelayedSignal, RelayedChat: c.RelayedChat + o.RelayedChat,
		RelayedTyping: c.RelayedTyping + o.RelayedTyping, Sent: c.Sent + o.Sent,
		PeerLeft: c.PeerLeft + o.PeerLeft, Churned: c.Churned + o.Churned, Errors: c.Errors + o.Errors,
	}
}

func (c Counts) sub(o Counts) Counts {
	return Counts{
		Connects: c.Connects - o.Connects, Matched: c.Matched - o.Matched,
		RelayedSignal: c.RelayedSignal - o.RelayedSignal, RelayedChat: c.RelayedChat - o.RelayedChat,
		RelayedTyping: c.RelayedTyping - o.RelayedTyping, Sent: c.Sent - o.Sent,
		PeerLeft: c.PeerLeft - o.PeerLeft, Churned: c.Churned - o.Churned, Errors: c.Errors - o.Errors,
	}
}

// Result is the outcome of a run: of one process, or merged over all of
// them. Children send it to the parent as JSON.
type Result struct {
	Clients   int     `json:"clients"`
	Procs     int     `json:"procs"`
	Idle      bool    `json:"idle"`
	Elapsed   float64 `json:"elapsed_s"`   // start of connecting to stop
	RampS     float64 `json:"ramp_s"`      // initial connect phase
	SteadyS   float64 `json:"steady_s"`    // after the ramp until stop
	StoppedBy string  `json:"stopped_by"`  // duration, max-errors, signal
	PeakConns int64   `json:"peak_conns"`  // most connections held at once
	EndConns  int64   `json:"end_conns"`   // held at stop, before closing
	Total     Counts  `json:"total"`       // whole run
	Steady    Counts  `json:"steady"`      // after the ramp
	FDLimit   uint64  `json:"fd_limit"`    // open-file limit of a load process
	Sources   int     `json:"src_addrs"`   // source addresses used
	Payload   int     `json:"offer_bytes"` // size of the SDP offer frame
	LoadCPU   float64 `json:"load_cpu_s"`  // CPU seconds of the load processes
	// Whole machine during the run (parent only): busy CPU seconds over all
	// CPUs, and the CPUs' total time. Busy minus server minus load is
	// what other processes took.
	MachineBusy  float64 `json:"machine_busy_s,omitempty"`
	MachineTotal float64 `json:"machine_total_s,omitempty"`

	TimeToMatch    HistSnapshot `json:"time_to_match"`
	SignalLatency  HistSnapshot `json:"signal_latency"`
	ChatLatency    HistSnapshot `json:"chat_latency"`
	ConnectLatency HistSnapshot `json:"connect_latency"`
	// Proof of work the server asked for: each solve's time, and the CPU
	// time all solves took (compare with LoadCPU).
	PowSolve HistSnapshot `json:"pow_solve"`
	PowCPU   float64      `json:"pow_cpu_s"`

	ErrorCodes map[string]uint64 `json:"error_codes"`
	ErrorKinds map[string]uint64 `json:"error_kinds"`
	PeerLeft   map[string]uint64 `json:"peer_left"`
	Crossed    map[string]uint64 `json:"crossed_refusals"` // not errors: frames that crossed the partner's leaving
	Events     map[string]uint64 `json:"events,omitempty"` // not errors, e.g. a churn close that could not send its close frame

	Server *ServerStats `json:"server,omitempty"`
}

// ServerStats is what /proc says about the server process.
type ServerStats struct {
	PIDs           []int   `json:"pids"`
	RSSBaselineKiB uint64  `json:"rss_baseline_kib"` // before connecting
	RSSPeakKiB     uint64  `json:"rss_peak_kib"`     // sampled every second
	RSSEndKiB      uint64  `json:"rss_end_kib"`      // at stop, connections still held
	CPUSeconds     float64 `json:"cpu_s"`            // utime+stime, whole run
	SteadyCPU      float64 `json:"steady_cpu_s"`     // after the ramp
}

func (s *stats) result() *Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Result{
		PeakConns:      s.peakConns.Load(),
		Total:          s.counts(),
		TimeToMatch:    s.timeToMatch.Snapshot(),
		SignalLatency:  s.signalLatency.Snapshot(),
		ChatLatency:    s.chatLatency.Snapshot(),
		ConnectLatency: s.connectLatency.Snapshot(),
		PowSolve:       s.powSolve.Snapshot(),
		PowCPU:         float64(s.powCPU.Load()) / 1e9,
		ErrorCodes:     maps.Clone(s.codes),
		ErrorKinds:     maps.Clone(s.kinds),
		PeerLeft:       maps.Clone(s.reason),
		Crossed:        maps.Clone(s.crossed),
		Events:         maps.Clone(s.events),
	}
}

// Merge folds the result of another process into r. Peak connections add
// up as an upper bound; the parent replaces it with the peak of the summed
// per-second progress, which is closer.
func (r *Result) Merge(o *Result) {
	r.Clients += o.Clients
	r.Procs += o.Procs
	r.Idle = r.Idle || o.Idle
	r.Elapsed = max(r.Elapsed, o.Elapsed)
	r.RampS = max(r.RampS, o.RampS)
	r.SteadyS = max(r.SteadyS, o.SteadyS)
	if r.StoppedBy == "" {
		r.StoppedBy = o.StoppedBy
	}
	r.PeakConns += o.PeakConns
	r.EndConns += o.EndConns
	r.Total = r.Total.add(o.Total)
	r.Steady = r.Steady.add(o.Steady)
	r.FDLimit = max(r.FDLimit, o.FDLimit)
	r.Sources = max(r.Sources, o.Sources)
	r.Payload = max(r.Payload, o.Payload)
	r.LoadCPU += o.LoadCPU
	r.TimeToMatch = r.TimeToMatch.Merge(o.TimeToMatch)
	r.SignalLatency = r.SignalLatency.Merge(o.SignalLatency)
	r.ChatLatency = r.ChatLatency.Merge(o.ChatLatency)
	r.ConnectLatency = r.ConnectLatency.Merge(o.ConnectLatency)
	r.PowSolve = r.PowSolve.Merge(o.PowSolve)
	r.PowCPU += o.PowCPU
	r.ErrorCodes = mergeMaps(r.ErrorCodes, o.ErrorCodes)
	r.ErrorKinds = mergeMaps(r.ErrorKinds, o.ErrorKinds)
	r.PeerLeft = mergeMaps(r.PeerLeft, o.PeerLeft)
	r.Crossed = mergeMaps(r.Crossed, o.Crossed)
	r.Events = mergeMaps(r.Events, o.Events)
}

func mergeMaps(a, b map[string]uint64) map[string]uint64 {
	if a == nil {
		a = map[string]uint64{}
	}
	for k, v := range b {
		a[k] += v
	}
	return a
}
