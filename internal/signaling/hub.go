// Package signaling is the WebSocket endpoint of protocol v1: it holds the
// client sessions of a node, checks every client frame, relays messages
// between the two sessions of a chat, keeps frames for a resume and runs the
// grace period of dropped connections. Chat state and matching live behind
// the Engine seam, so this code is the same for one node or many.
package signaling

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/netpoll"
	"github.com/strangerchat/stranger/internal/protocol"
	"github.com/strangerchat/stranger/internal/websocket"
)

// Options configure a Hub. Zero durations take the defaults of protocol.md.
type Options struct {
	Engine  Engine
	Clock   clock.Clock
	Log     *slog.Logger
	Metrics *Metrics
	// Moderation keeps reports and bans; nil: none are kept.
	Moderation Moderator
	// Identify names the person behind a client IP (moderation.md,
	// Identities): the keyed hash of its /32 or /64. Nil, or "" for an
	// address it cannot parse: the session has no identity, and no report
	// about it or by it is recorded.
	Identify func(ip string) identity.Hash
	// ICEServers returns a chat's ICE servers for a session, TURN entries
	// with credentials minted at now: sent in matched and in the chat of a
	// resumed welcome. welcome.iceServers carries only its entries without
	// credentials. Nil: none.
	ICEServers func(session ids.SessionID, now time.Time) []protocol.ICEServer

	ResumeGrace    time.Duration // default 15 s
	PingInterval   time.Duration // default 10 s
	PongTimeout    time.Duration // default 30 s
	AllowedOrigins []string
	MaxConnsPerIP  int // sessions per identity, grace included (quota.go; named when it counted connections); 0: unlimited
	MaxSessions    int // 0: unlimited
	MsgRate        float64
	MsgBurst       int
	// Quotas (quota.go); 0 turns each off.
	ConnRate        float64 // connection attempts per identity per second
	ConnBurst       int
	MaxWaitingPerIP int     // waiting sessions per identity
	NextRate        float64 // join/next per session per second
	NextBurst       int
	// Cluster connects this node to the others of a deployment; nil on a
	// single node.
	Cluster Cluster
	// Poller drives reads, so idle connections hold no goroutine; nil: one
	// reading goroutine per connection.
	Poller *netpoll.Poller

	// ClientIP is the address a request counts against (per-IP cap,
	// bans); nil: the TCP peer's.
	ClientIP func(*http.Request) string
	// Pow asks every new session for a proof of work before its first join
	// or next (pow.go); nil: off.
	Pow ProofOfWork
}

// Hub holds the sessions of this node.
type Hub struct {
	opts       Options
	engine     Engine
	clock      clock.Clock
	log        *slog.Logger
	metrics    *Metrics
	moderation Moderator
	cluster    Cluster
	upgrader   websocket.Upgrader

	// mu guards the registry (registry.go). Lock order: a session's
	// frameMu, engineMu, mu, then this; nothing else is locked under it.
	mu       sync.RWMutex
	sessions map[ids.SessionID]*session
	tokens   map[string]*session
	// Quotas (quota.go): what each identity holds, admitted connections
	// whose session is not registered yet, connection-attempt buckets.
	use           map[identity.Identity]*identityUse
	reserved      int
	attempts      map[identity.Identity]*bucket
	attemptsSwept time.Time

	online         atomic.Int64
	watchers       atomic.Int64 // sessions with watchCounts set
	retriesPending atomic.Int64 // engine calls retried in the background
	draining       atomic.Bool
	stop           chan struct{}
}

var _ match.Notifier = (*Hub)(nil)

// New builds a hub; call Run to start its pinger and Shutdown to drain it.
func New(o Options) *Hub {
	if o.ResumeGrace == 0 {
		o.ResumeGrace = 15 * time.Second
	}
	if o.PingInterval == 0 {
		o.PingInterval = 10 * time.Second
	}
	if o.PongTimeout == 0 {
		o.PongTimeout = 30 * time.Second
	}
	if o.MsgRate == 0 {
		o.MsgRate = 20
	}
	if o.MsgBurst == 0 {
		o.MsgBurst = 60
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	o.fillQuotas()
	if o.Metrics == nil {
		o.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		opts:       o,
		engine:     o.Engine,
		clock:      o.Clock,
		log:        o.Log,
		metrics:    o.Metrics,
		moderation: o.Moderation,
		cluster:    o.Cluster,
		sessions:   map[ids.SessionID]*session{},
		tokens:     map[string]*session{},
		use:        map[identity.Identity]*identityUse{},
		attempts:   map[identity.Identity]*bucket{},
		stop:       make(chan struct{}),
	}
	h.upgrader = websocket.Upgrader{Poller: o.Poller, MaxMessage: protocol.MaxFrameBytes, Log: o.Log, MessageTimeouts: o.Metrics.MessageTimeouts}
	return h
}

// Online is the number of sessions with a live connection on this node.
func (h *Hub) Online() int { return int(h.online.Load()) }

// countsTick is how often the pushed counts may change (counts.go): a
// throttle, so a busy node sends each watcher at most one counts a second.
const countsTick = time.Second

// Run pings connections and drops dead ones, and pushes the counts to their
// watchers, until ctx ends or Shutdown.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(h.opts.PingInterval)
	defer t.Stop()
	ct := time.NewTicker(countsTick)
	defer ct.Stop()
	var last counts
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.stop:
			return
		case <-t.C:
			h.pingAll()
		case <-ct.C:
			h.pushCounts(&last)
		}
	}
}

func (h *Hub) pingAll() {
	now := h.clock.Now()
	for _, s := range h.snapshot() {
		s.mu.Lock()
		s.lines.forgetLocked(s.state, s.lastChat, now)
		if c := s.conn; c != nil {
			if now.Sub(c.lastPong) > h.opts.PongTimeout {
				c.failLocked(errPongLost)
			} else {
				c.pingDue = true
				c.kickLocked()
			}
		}
		s.mu.Unlock()
	}
}

// Notify delivers an engine event to a session of this node.
func (h *Hub) Notify(id ids.SessionID, ev match.Event) {
	s := h.lookup(id)
	if ev.Kind == match.EventMatched {
		h.metrics.MatchWait.Observe(ev.Waited.Seconds())
		if ev.Initiator {
			h.metrics.Matches.Inc()
		}
	}
	if s != nil {
		s.onEvent(ev)
	}
}

// ServeHTTP is the /ws endpoint.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		http.Error(w, "node is shutting down; reconnect", http.StatusServiceUnavailable)
		return
	}
	if !originAllowed(r, h.opts.AllowedOrigins) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	ip := clientIP(r, h.opts.ClientIP)
	c, cl, ok := h.admit(w, r, ip)
	if !ok {
		return
	}
	ws, err := h.upgrader.Upgrade(w, r, c, c) // the origin was checked above
	if err != nil {
		if !cl.resumes() {
			h.unreserve(c.id)
		}
		h.unclaim(cl)
		return // Upgrade wrote the HTTP error
	}
	c.ws = ws
	h.metrics.Connections.Inc()
	q := r.URL.Query()
	if !h.attach(c, cl, q.Get("last"), q.Has("last")) {
		c.closeWith(closeTryAgain, "node is full or too many sessions from your address; try again later")
		return
	}
	c.ws.Start()
	// Drain closes the connections its snapshot finds. One upgraded before
	// Drain began but attached after the snapshot (a resume waiting for a
	// frame in flight, or just a slow goroutine) is closed here: draining
	// was set before the snapshot, so it is seen after the attach.
	if h.draining.Load() {
		c.closeWith(closeServiceRest, drainMessage)
	}
}

// drainMessage is the reason of the 1012 close a drain sends.
const drainMessage = "node restarting; resume on another node"

// Drain stops accepting connections and closes every open one with 1012
// (service restart): their sessions keep their grace period, so clients
// resume on another node.
func (h *Hub) Drain() {
	if !h.draining.CompareAndSwap(false, true) {
		return
	}
	close(h.stop)
	var conns []*conn
	for _, s := range h.snapshot() {
		s.mu.Lock()
		if s.conn != nil {
			conns = append(conns, s.conn)
		}
		s.mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.closeWith(closeServiceRest, drainMessage)
		}()
	}
	wg.Wait()
}

// Draining reports whether Drain was called.
func (h *Hub) Draining() bool { return h.draining.Load() }

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// randomID is 80 random bits, base32: unguessable session, room and token ids.
func randomID() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.New("crypto/rand failed: " + err.Error()))
	}
	return idEncoding.EncodeToString(b[:])
}

// UseEngine sets the engine. The engine is built with the hub as its
// Notifier, so it comes after New; call UseEngine before serving.
func (h *Hub) UseEngine(e Engine) { h.engine = e }
